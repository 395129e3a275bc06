package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// runNATS runs an external NATS server on port with JetStream in dir;
// port 0 draws one with freePorts (natsPort reads it back), and draws
// again when another process took it first. A test that restarts NATS
// on the same port lets the port go meanwhile: another process could
// take it then, which no harness can prevent. A port below the
// ephemeral range (freePorts) makes that rare: one in that range (port
// 0) is also handed out to every process's port-0 listeners and, as
// their source port, outgoing connections (benchmarks beside the suite
// make thousands), and one of those holds it while NATS is down.
func runNATS(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	for attempt := 0; ; attempt++ {
		p := port
		if p == 0 {
			p = freePorts(t, 1)[0]
		}
		ns, err := launchNATS(p, dir)
		if err == nil {
			return ns
		}
		if port != 0 || !portTaken(err) || attempt == 3 {
			t.Fatalf("NATS on port %d: %v", p, err)
		}
	}
}

// launchNATS runs a NATS server on port; a listener that cannot bind
// fails it at once (NATS reports it through its logger's Fatalf and
// would go on without it).
func launchNATS(port int, dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		return nil, err
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(fatalLogger(fatal), false, false, false)
	go ns.Start()
	ready := make(chan bool, 1)
	go func() { ready <- ns.ReadyForConnections(60 * time.Second) }() // JetStream's start, on a loaded machine
	select {
	case ok := <-ready:
		if !ok {
			ns.Shutdown()
			return nil, errors.New("NATS not ready within 60 s")
		}
		return ns, nil
	case msg := <-fatal:
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New(msg)
	}
}

// fatalLogger drops a NATS server's logs but its fatal errors, which it
// sends when there is room.
type fatalLogger chan<- string

func (f fatalLogger) Fatalf(format string, a ...any) {
	select {
	case f <- fmt.Sprintf(format, a...):
	default:
	}
}
func (fatalLogger) Noticef(string, ...any) {}
func (fatalLogger) Warnf(string, ...any)   {}
func (fatalLogger) Errorf(string, ...any)  {}
func (fatalLogger) Debugf(string, ...any)  {}
func (fatalLogger) Tracef(string, ...any)  {}

// natsPort is the client port ns took.
func natsPort(ns *server.Server) int { return ns.Addr().(*net.TCPAddr).Port }

// TestClusterNATSRestart: while the external NATS is down, calls on this
// node's own connections work and calls on other nodes' answer 500 at once
// (not sent); nobody closes a client or fences. After NATS restarts on the
// same port and store, cross-node calls and publishes work again with the
// same node bytes.
func TestClusterNATSRestart(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	ns := runNATS(t, 0, dir)
	port := natsPort(ns)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	hubs := startHubs(t, []cluster.Config{externalConfig(url, "r1"), externalConfig(url, "r2"), externalConfig(url, "r3")})
	ctx := context.Background()
	var conns []*hubtest.Conn
	var bytes []byte
	for _, h := range hubs {
		c := hubtest.NewConn(hub.NewID(h.Self()), false)
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
		if err := h.Join(ctx, "g", c.ID()); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		bytes = append(bytes, h.Self())
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	if err := hubs[0].Send(ctx, conns[0].ID(), hub.NewMessage([]byte("local"))); err != nil {
		t.Fatalf("local send while NATS is down: %v", err)
	}
	// Until a node's connections notice the shutdown, a call may still be
	// taken (answered 200, then lost: at most once). Each attempt carries
	// its own text; those answered 500 must never arrive.
	var refused []string
	attempt := 0
	testenv.Eventually(t, 10*time.Second, func() error {
		attempt++
		text := fmt.Sprintf("lost %d", attempt)
		err := hubs[0].Send(ctx, conns[1].ID(), hub.NewMessage([]byte(text)))
		if !errors.Is(err, hub.ErrUnavailable) {
			return fmt.Errorf("remote send while NATS is down: %v, want ErrUnavailable", err)
		}
		refused = append(refused, text)
		text += " (publish)"
		if _, err := hubs[0].Publish(ctx, "g", hub.NewMessage([]byte(text))); !errors.Is(err, hub.ErrUnavailable) {
			return fmt.Errorf("publish while NATS is down: %v, want ErrUnavailable", err)
		}
		refused = append(refused, text)
		return nil
	})

	ns = runNATS(t, port, dir)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	testenv.Eventually(t, 20*time.Second, func() error {
		for i, h := range hubs {
			for j, c := range conns {
				if err := h.Send(ctx, c.ID(), hub.NewMessage(fmt.Appendf(nil, "%d", i))); err != nil {
					return fmt.Errorf("node %d to node %d after the restart: %v", i, j, err)
				}
			}
		}
		return nil
	})
	// Subscriptions come back with each node's data connection, which
	// reconnects on its own schedule: a publish before that misses the
	// node (at most once), so publish until every member has one.
	for n := 0; ; n++ {
		// Until the publisher's own data connection is back, a publish may
		// be refused (ErrUnavailable: not delivered, a 500): go on.
		if _, err := hubs[2].Publish(ctx, "g", hub.NewMessage(fmt.Appendf(nil, "back %d", n))); err != nil && !errors.Is(err, hub.ErrUnavailable) {
			t.Fatal(err)
		}
		all := true
		for _, c := range conns {
			all = all && slices.ContainsFunc(c.Got(), func(s string) bool { return strings.HasPrefix(s, "back ") })
		}
		if all {
			break
		}
		if n > 400 {
			t.Fatal("a member got no publish after the restart")
		}
		time.Sleep(50 * time.Millisecond) // the publisher's pace
	}
	for i, c := range conns {
		for _, text := range refused {
			if got := c.Got(); slices.Contains(got, text) {
				t.Fatalf("member on node %d got %q, answered 500: %q", i, text, got)
			}
		}
		if _, closed := c.Closed(); closed {
			t.Fatalf("node %d closed a client", i)
		}
		if hubs[i].Fenced() != 0 || hubs[i].Self() != bytes[i] {
			t.Fatalf("node %d fenced %d times, byte %d (was %d)", i, hubs[i].Fenced(), hubs[i].Self(), bytes[i])
		}
	}
	for _, h := range hubs {
		_ = h.Close() // before NATS stops
	}
}

// TestClusterNATSOutageBeyondLease: NATS stays down longer than
// leaseSeconds, after which another node could own any byte: every node
// fences (its clients get 1012), registers again once NATS is back (the
// same byte: nobody took it) and serves new connections from every node.
func TestClusterNATSOutageBeyondLease(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	ns := runNATS(t, 0, dir)
	port := natsPort(ns)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var cfgs []cluster.Config
	for i := range 3 {
		c := externalConfig(url, fmt.Sprintf("o%d", i+1))
		c.LeaseSeconds, c.IsolationSeconds = 5, 4
		cfgs = append(cfgs, c)
	}
	hubs := startHubs(t, cfgs)
	ctx := context.Background()
	var old []*hubtest.Conn
	var bytes []byte
	for _, h := range hubs {
		c := hubtest.NewConn(hub.NewID(h.Self()), false)
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
		if err := h.Join(ctx, "g", c.ID()); err != nil {
			t.Fatal(err)
		}
		old, bytes = append(old, c), append(bytes, h.Self())
	}

	down := time.Now()
	ns.Shutdown()
	ns.WaitForShutdown()
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, c := range old {
			if r, ok := c.Closed(); !ok || r != hub.CloseFenced {
				return fmt.Errorf("node %d's client: closed %v %v, want 1012 fenced", i, ok, r)
			}
		}
		return nil
	})
	t.Logf("every node fenced %v into the outage (leaseSeconds 5)", time.Since(down))
	for i, h := range hubs {
		h.Unregister(old[i].ID()) // the gateway does this once the socket is gone
		if h.Ready() == nil {
			t.Fatalf("node %d ready while NATS is down", i)
		}
	}

	ns = runNATS(t, port, dir)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	for i, h := range hubs {
		testenv.Eventually(t, 30*time.Second, h.Ready)
		if h.Self() != bytes[i] || h.Fenced() != 1 {
			t.Fatalf("node %d: byte %d (was %d), fenced %d times, want once", i, h.Self(), bytes[i], h.Fenced())
		}
	}
	var fresh []*hubtest.Conn
	for _, h := range hubs {
		c := hubtest.NewConn(hub.NewID(h.Self()), false)
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, c)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for i, h := range hubs {
			for j, c := range fresh {
				if err := h.Send(ctx, c.ID(), hub.NewMessage([]byte("back"))); err != nil {
					return fmt.Errorf("node %d to node %d's new client: %v", i, j, err)
				}
			}
			for j, c := range old {
				if err := h.Send(ctx, c.ID(), hub.NewMessage([]byte("stale"))); !errors.Is(err, hub.ErrGone) {
					return fmt.Errorf("node %d to node %d's fenced client: %v, want ErrGone", i, j, err)
				}
			}
		}
		return nil
	})
	for _, h := range hubs {
		_ = h.Close() // before NATS stops
	}
}

// TestClusterStartWaitsForNATS: a node started before its external NATS
// listens keeps trying within startupTimeoutSeconds and comes up once NATS
// does; with no NATS at all, start fails when that timeout ends, naming
// the address.
func TestClusterStartWaitsForNATS(t *testing.T) {
	parallel(t)
	port := freePorts(t, 1)[0]
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	type result struct {
		h   *cluster.Hub
		err error
	}
	done := make(chan result, 1)
	go func() {
		h, err := cluster.Start(externalConfig(url, "early"), cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()})
		done <- result{h, err}
	}()
	// The node is already trying (NATS refuses it) when NATS starts.
	ns := runNATS(t, port, t.TempDir())
	defer ns.Shutdown()
	r := <-done
	if r.err != nil {
		t.Fatalf("start before NATS listened: %v", r.err)
	}
	defer r.h.Close()

	gone := externalConfig(fmt.Sprintf("nats://127.0.0.1:%d", freePorts(t, 1)[0]), "alone")
	gone.StartupTimeoutSeconds = 1
	_, err := cluster.Start(gone, cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()})
	if err == nil || !strings.Contains(err.Error(), "connecting to NATS at nats://127.0.0.1:") {
		t.Fatalf("start with no NATS: %v", err)
	}
}

// TestClusterRenewalAcrossReclaim: a registry renewal refused while NATS
// was down, for the claim that fenced, is judged only after the fence has
// registered again (the renewing goroutine was preempted, as on a loaded
// machine). Its "could not be renewed for a lease" is about the previous
// incarnation: the node must not fence a second time for one outage.
func TestClusterRenewalAcrossReclaim(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	ns := runNATS(t, 0, dir)
	port := natsPort(ns)
	c := externalConfig(fmt.Sprintf("nats://127.0.0.1:%d", port), "a1")
	c.HeartbeatMillis, c.NodeTimeoutMillis, c.IsolationSeconds, c.LeaseSeconds = 200, 600, 1, 2
	h := startHubs(t, []cluster.Config{c})[0]
	var armed atomic.Bool
	var renewals atomic.Int64
	reached, release := make(chan struct{}), make(chan struct{})
	h.SetRenewHook(func(err error) {
		renewals.Add(1)
		if err != nil && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
	})

	ns.Shutdown()
	ns.WaitForShutdown()
	testenv.Eventually(t, 30*time.Second, func() error {
		if h.Fenced() != 1 {
			return fmt.Errorf("fenced %d times, want 1", h.Fenced())
		}
		return nil
	})
	armed.Store(true)
	select {
	case <-reached: // a refused renewal of the fenced claim, held
	case <-time.After(30 * time.Second):
		t.Fatal("no renewal was refused after the fence")
	}
	ns = runNATS(t, port, dir)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	testenv.Eventually(t, 30*time.Second, h.Ready) // registered again
	n := renewals.Load()
	close(release)
	testenv.Eventually(t, 30*time.Second, func() error {
		if renewals.Load() == n {
			return errors.New("the held renewal has not finished")
		}
		return h.Ready() // a second fence, had it started, is over
	})
	if h.Fenced() != 1 {
		t.Fatalf("fenced %d times for one outage, want once", h.Fenced())
	}
	_ = h.Close() // before NATS stops
}
