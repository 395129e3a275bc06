package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
)

// lagProxy is a TCP proxy between NATS clients and their server that holds
// the server's messages to one subject (once set) for lag before passing
// them on; everything else flows at once. Held messages reach the client
// late, none is lost: a round trip slower than an attempt.
type lagProxy struct {
	ln      net.Listener
	subject atomic.Pointer[[]byte]
	lag     time.Duration
	held    atomic.Int64
}

func newLagProxy(t *testing.T, target string, lag time.Duration) *lagProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lagProxy{ln: ln, lag: lag}
	servePairs(t, ln, target, func(c, d net.Conn) {
		go func() {
			defer d.Close()
			_, _ = io.Copy(d, c)
		}()
		go p.down(d, c)
	})
	return p
}

func (p *lagProxy) url() string { return "nats://" + p.ln.Addr().String() }

// hold makes the proxy hold the server's messages to subject.
func (p *lagProxy) hold(subject string) {
	s := []byte(subject)
	p.subject.Store(&s)
}

// down copies the server's bytes to the client frame by frame; a message
// to the held subject is written lag later, the rest at once (one frame
// at a time on c).
func (p *lagProxy) down(d, c net.Conn) {
	defer c.Close()
	var mu sync.Mutex
	write := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = c.Write(b)
	}
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := d.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			end := frameEnd(buf, "MSG ", "HMSG ")
			if end < 0 {
				break
			}
			frame := bytes.Clone(buf[:end])
			buf = buf[end:]
			if p.isHeld(frame) {
				p.held.Add(1)
				time.AfterFunc(p.lag, func() { write(frame) })
				continue
			}
			write(frame)
		}
		if err != nil {
			return
		}
	}
}

// isHeld reports whether frame is a message to the held subject.
func (p *lagProxy) isHeld(frame []byte) bool {
	s := p.subject.Load()
	if s == nil {
		return false
	}
	line, _, _ := bytes.Cut(frame, []byte("\r\n"))
	f := bytes.Fields(line)
	return len(f) >= 3 && (string(f[0]) == "MSG" || string(f[0]) == "HMSG") && bytes.Equal(f[1], *s)
}

// TestClusterCallLateAnswers: every round trip of a call from A to B's
// connection takes longer than an attempt (B's replies to A's batches are
// held 150 ms on the way, attemptTimeoutMillis is 30): a call takes the
// answer to an earlier attempt that comes after its attempt timed out,
// while its deadline lasts. Every POST is answered 200 and delivered
// once (its retries carry its dedupe key: B answers them with the first
// answer). Before, a late answer was dropped and the retry started over,
// so every call failed with 500 after requestTimeoutMillis.
func TestClusterCallLateAnswers(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	px := newLagProxy(t, url[len("nats://"):], 150*time.Millisecond)
	cfgs := patient([]cluster.Config{externalConfig(px.url(), "late-a"), externalConfig(url, "late-b")})
	for i := range cfgs {
		cfgs[i].AttemptTimeoutMillis = 30
		cfgs[i].RequestTimeoutMillis = 5000
	}
	hubs := startHubs(t, cfgs)
	a, b := hubs[0], hubs[1]
	conns := []*hubtest.Conn{hubtest.NewConn(hub.NewID(b.Self()), false), hubtest.NewConn(hub.NewID(b.Self()), false)}
	for _, c := range conns {
		if err := b.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	px.hold(a.CallReply(b.Self()))
	ctx := context.Background()
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for g := range 4 { // 4 callers: calls alone and in batches
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				errs[i] = a.Send(ctx, conns[i%2].ID(), hub.NewMessage(fmt.Appendf(nil, "m%d", i)))
			}
		})
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Errorf("send %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d sends failed with every round trip slower than an attempt", failed, n)
	}
	got := map[string]int{}
	for _, c := range conns {
		for _, m := range c.Got() {
			got[m]++
		}
	}
	for i := range n {
		if k := got[fmt.Sprintf("m%d", i)]; k != 1 {
			t.Errorf("m%d delivered %d times, want once", i, k)
		}
	}
	late, answers := a.LateAnswers()
	if px.held.Load() == 0 || late == 0 || answers == 0 {
		t.Fatalf("%d replies held, %d batches late, %d late answers taken: the round trips were not slower than an attempt", px.held.Load(), late, answers)
	}
}
