package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterRestartBeforeSubscribed: a restarting node is held between
// claiming its byte and subscribing its subjects (a slow start: GC, a
// loaded host, a JetStream election), while a peer sends to a connection
// the node had before its restart. The peer must answer 410 for that
// connection without taking the restarting node for gone; once the node
// is through its start it serves its new connections from every node and
// never fenced. Before, the node's entry was "up" from the claim: the
// peer's call found no responders on its subject, the peer declared it
// gone and the new node fenced (found with 1.5 s injected there).
func TestClusterRestartBeforeSubscribed(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 3)
	hubs := startHubs(t, cfgs)
	a, b, c := hubs[0], hubs[1], hubs[2]
	ctx := context.Background()
	self := c.Self()

	old := hubtest.NewConn(hub.NewID(self), false)
	if err := c.Register(old); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		return a.Send(ctx, old.ID(), hub.NewMessage([]byte("before")))
	})
	if err := c.Close(); err != nil { // graceful: the entry is deleted
		t.Fatal(err)
	}

	claimed, release := make(chan struct{}), make(chan struct{})
	var claimOnce, releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	restarted := startAgain(t, cfgs[2], letGo, func(step string) {
		if step == "claimed" {
			claimOnce.Do(func() { close(claimed); <-release })
		}
	})
	<-claimed // the new C holds its byte in the registry; nothing subscribed yet

	state := func(h *cluster.Hub) string {
		nodes, _ := h.Nodes(ctx)
		for _, n := range nodes {
			if n.ID == hub.NodeHex(self) {
				return n.State
			}
		}
		return ""
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if s := state(a); s == "" {
			return errors.New("A does not see the new C's entry yet")
		}
		return nil
	})
	err := a.Send(ctx, old.ID(), hub.NewMessage([]byte("during")))
	if !errors.Is(err, hub.ErrGone) {
		t.Errorf("A's send to C's connection from before the restart, C not yet subscribed: %v, want ErrGone", err)
	}
	if s := state(a); s == "gone" {
		t.Fatalf("A took the restarting C for gone (its entry in A's view: %q)", s)
	}
	letGo()
	c2, err := restarted.wait()
	if err != nil {
		t.Fatalf("C's restart: %v", err)
	}
	if c2.Self() != self {
		t.Fatalf("C restarted with byte %d, had %d", c2.Self(), self)
	}

	fresh := hubtest.NewConn(hub.NewID(self), false)
	if err := c2.Register(fresh); err != nil {
		t.Fatal(err)
	}
	for i, h := range []*cluster.Hub{a, b} {
		testenv.Eventually(t, 20*time.Second, func() error {
			if s := state(h); s != "up" {
				return fmt.Errorf("node %d sees C %q", i+1, s)
			}
			return h.Send(ctx, fresh.ID(), hub.NewMessage(fmt.Appendf(nil, "after %d", i)))
		})
	}
	if err := a.Send(ctx, old.ID(), hub.NewMessage([]byte("after"))); !errors.Is(err, hub.ErrGone) {
		t.Errorf("A's send to C's connection from before the restart, C up: %v, want ErrGone", err)
	}
	if n := c2.Fenced(); n != 0 {
		t.Fatalf("the restarted C fenced %d times", n)
	}
}

// TestClusterRestartWaitsForRoutes: a restarting C's entry may go up only
// once a peer's NATS server, not only C's own, has C's subscriptions. The
// route links between C and A are paused (bytes held, in order, not lost)
// from the moment C claims its byte, so C's subscriptions reach A's server
// only when they are resumed. C must not come out of Start before A's
// server has them: C's ping to A is held behind them on the route, and
// once it is seen there the links are resumed; when Start returns, A's
// server has C's .c, .q and .d. Before, Start returned as soon as C had
// flushed to its own server, while A's server knew nothing of C's
// subjects: a call from A to a new connection of C found no responders.
func TestClusterRestartWaitsForRoutes(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 3)
	cfgs = patient(cfgs) // C waits for A's answer up to requestTimeoutMillis: far beyond this test's polls
	hubs := startHubs(t, cfgs)
	a, c := hubs[0], hubs[2]
	self := c.Self()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	var pauseOnce, resumeOnce sync.Once
	resume := func() { resumeOnce.Do(func() { nw.between(0, 2, (*proxy).resume) }) }
	t.Cleanup(resume)
	restarted := startAgain(t, cfgs[2], resume, func(step string) {
		if step == "claimed" {
			pauseOnce.Do(func() { nw.between(0, 2, (*proxy).pause) })
		}
	})
	subject := func(b byte, kind string) string { return "wsg." + cfgs[0].Name + ".n." + hub.NodeHex(b) + "." + kind }
	ping := subject(a.Self(), "c") // C's ping to A, as it crosses the route
	testenv.Eventually(t, 60*time.Second, func() error {
		if restarted.returned() {
			return nil
		}
		held := false
		nw.between(0, 2, func(p *proxy) { held = held || p.holds(ping) })
		if held {
			return nil
		}
		return errors.New("C's start has neither returned nor pinged A")
	})
	resume() // if Start returned first, C's subscriptions have not reached A's server
	c2, err := restarted.wait()
	if err != nil {
		t.Fatalf("C's restart: %v", err)
	}
	if c2.Self() != self {
		t.Fatalf("C restarted with byte %d, had %d", c2.Self(), self)
	}
	for _, kind := range []string{"c", "q", "d"} {
		if !a.HasInterest(subject(self, kind)) {
			t.Errorf("C's start returned while A's NATS server had no interest in C's .%s", kind)
		}
	}
}

// restart is a node's Start run again in the background.
type restart struct {
	done chan struct{}
	h    *cluster.Hub
	err  error
}

// startAgain starts cfg's node in the background with hook as its step
// hook from the start of Start. At cleanup it calls unblock (what lets a
// held hook go on), waits for Start and closes the node.
func startAgain(t *testing.T, cfg cluster.Config, unblock func(), hook func(step string)) *restart {
	r := &restart{done: make(chan struct{})}
	opts := cluster.WithStepHook(cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()}, hook)
	go func() {
		defer close(r.done)
		r.h, r.err = cluster.Start(cfg, opts)
	}()
	t.Cleanup(func() {
		unblock()
		if h, _ := r.wait(); h != nil {
			_ = h.Close()
		}
	})
	return r
}

// wait returns Start's outcome once it returned.
func (r *restart) wait() (*cluster.Hub, error) {
	<-r.done
	return r.h, r.err
}

// returned reports whether Start has returned.
func (r *restart) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}
