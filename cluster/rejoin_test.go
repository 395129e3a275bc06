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
	opts := cluster.WithStepHook(cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()}, func(step string) {
		if step == "claimed" {
			claimOnce.Do(func() { close(claimed); <-release })
		}
	})
	type started struct {
		h   *cluster.Hub
		err error
	}
	restarted := make(chan started, 1)
	go func() {
		h, err := cluster.Start(cfgs[2], opts)
		restarted <- started{h, err}
	}()
	var c2 *cluster.Hub
	t.Cleanup(func() {
		letGo()
		if c2 == nil {
			if s := <-restarted; s.h != nil {
				_ = s.h.Close()
			}
			return
		}
		_ = c2.Close()
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
	s := <-restarted
	if s.err != nil {
		t.Fatalf("C's restart: %v", s.err)
	}
	c2 = s.h
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
