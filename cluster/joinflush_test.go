package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// dataHold is a TCP proxy in front of a NATS server that, armed, holds
// everything the server sends on the connections whose CONNECT names
// role (a node's "data" connection) until the test ends: a flush there
// gets no PONG, as from a server that stalled on that connection.
type dataHold struct {
	ln     net.Listener
	target string
	role   string

	mu    sync.Mutex
	armed bool
	conns []net.Conn
}

func newDataHold(t *testing.T, target, role string) *dataHold {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dataHold{ln: ln, target: target, role: role}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	return p
}

func (p *dataHold) url() string { return "nats://" + p.ln.Addr().String() }

func (p *dataHold) arm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = true
}

func (p *dataHold) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, d)
		p.mu.Unlock()
		var mu sync.Mutex
		var isRole bool
		go func() { // client to server, watching for the CONNECT's name
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if bytes.Contains(buf[:n], []byte(`"name":"wsgate `)) && bytes.Contains(buf[:n], []byte(" "+p.role+`"`)) {
						mu.Lock()
						isRole = true
						mu.Unlock()
					}
					if _, werr := d.Write(buf[:n]); werr != nil {
						err = werr
					}
				}
				if err != nil {
					_ = c.Close()
					_ = d.Close()
					return
				}
			}
		}()
		go func() { // server to client, held while armed on role's connections
			buf := make([]byte, 32<<10)
			for {
				n, err := d.Read(buf)
				mu.Lock()
				held := isRole
				mu.Unlock()
				p.mu.Lock()
				held = held && p.armed
				p.mu.Unlock()
				if n > 0 && !held {
					if _, werr := c.Write(buf[:n]); werr != nil {
						err = werr
					}
				}
				if err != nil {
					_ = c.Close()
					_ = d.Close()
					return
				}
			}
		}()
	}
}

// TestClusterJoinFlushBounded: a node S whose data connection stalls (the
// server's answers on it held: a flush gets no PONG) is asked by B to
// join one of its connections to a new group: S subscribes and flushes
// on the data connection, on the goroutine that serves every call on its
// byte. The flush waits S's requestTimeoutMillis (1 s) at most, so a call
// B makes next on another of S's connections, queued behind the join
// there, is answered within B's requestTimeoutMillis (5 s) while the data
// connection is still held; before, the flush waited nats.go's 10 s,
// every call to S with it, and B's call failed with 500.
func TestClusterJoinFlushBounded(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	b := startHubs(t, []cluster.Config{externalConfig(url, "f1")})[0]
	px := newDataHold(t, url[len("nats://"):], "data")
	sc := externalConfig(px.url(), "f2")
	sc.RequestTimeoutMillis = 1000
	s := startOne(t, sc)
	testenv.Eventually(t, 20*time.Second, func() error {
		if st := stateOf(b, s.Self()); st != "up" {
			return fmt.Errorf("B sees S %q, want up", st)
		}
		return nil
	})
	joiner, other := hubtest.NewConn(hub.NewID(s.Self()), false), hubtest.NewConn(hub.NewID(s.Self()), false)
	for _, c := range []*hubtest.Conn{joiner, other} {
		if err := s.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := b.Send(ctx, other.ID(), hub.NewMessage([]byte("before"))); err != nil {
		t.Fatal(err)
	}
	joining := make(chan struct{}, 1)
	s.SetConnHook(func(op string) {
		if op == "join" {
			select {
			case joining <- struct{}{}:
			default:
			}
		}
	})
	px.arm()
	joined := make(chan error, 1)
	go func() { joined <- b.Join(ctx, "room.flush", joiner.ID()) }()
	// S's handler has the join: B's next call waits behind it there.
	select {
	case <-joining:
	case <-time.After(30 * time.Second):
		t.Fatal("S never ran the join")
	}
	if err := b.Send(ctx, other.ID(), hub.NewMessage([]byte("during"))); err != nil {
		t.Fatalf("a call on S's other connection while S's data connection is held: %v", err)
	}
	if err := <-joined; err != nil {
		t.Fatalf("the join: %v", err)
	}
}
