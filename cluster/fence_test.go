package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterFence: a node that finds itself declared gone (as the
// majority side does to a cut-off node) closes every client connection
// with 1012 and registers a new incarnation under the same byte; its old
// ids stay 410 elsewhere, new ones work.
func TestClusterFence(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	hubs := startHubs(t, []cluster.Config{externalConfig(url, "f1"), externalConfig(url, "f2"), externalConfig(url, "f3")})
	victim := hubs[2]
	old := hubtest.NewConn(hub.NewID(victim.Self()), false)
	if err := victim.Register(old); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := hubs[0].Send(ctx, old.ID(), hub.NewMessage([]byte("before"))); err != nil {
		t.Fatal(err)
	}

	// Declare the victim gone in the registry, as another node would.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, "WSGATE_ext_NODES")
	if err != nil {
		t.Fatal(err)
	}
	key := "node." + hub.NodeHex(victim.Self())
	cur, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	_ = json.Unmarshal(cur.Value(), &e)
	oldInc := e["inc"]
	e["state"], e["by"], e["reason"] = "gone", "test", "partition"
	val, _ := json.Marshal(e)
	if _, err := kv.Update(ctx, key, val, cur.Revision()); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 15*time.Second, func() error {
		if r, ok := old.Closed(); !ok || r != hub.CloseFenced {
			return fmt.Errorf("victim's connection: closed %v %v, want 1012 fenced", ok, r)
		}
		cur, err := kv.Get(ctx, key)
		if err != nil {
			return err
		}
		var now map[string]any
		_ = json.Unmarshal(cur.Value(), &now)
		if now["state"] != "up" || now["inc"] == oldInc || now["name"] != "f3" {
			return fmt.Errorf("registry entry %v, want f3 up with a new incarnation", now)
		}
		return nil
	})
	if victim.Fenced() != 1 {
		t.Fatalf("fenced %d times, want 1", victim.Fenced())
	}
	victim.Unregister(old.ID()) // the gateway does this when the socket is gone
	if err := hubs[0].Send(ctx, old.ID(), hub.NewMessage([]byte("after"))); !errors.Is(err, hub.ErrGone) {
		t.Fatalf("old id after the fence: %v, want ErrGone", err)
	}
	fresh := hubtest.NewConn(hub.NewID(victim.Self()), false)
	if err := victim.Register(fresh); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		return hubs[1].Send(ctx, fresh.ID(), hub.NewMessage([]byte("hello")))
	})
}

// gate holds, once armed, the first goroutine that passes it until the
// test releases it: how these tests put the registry work's goroutines
// in the order the scheduler of a loaded machine once did.
type gate struct {
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open) // never leave a node's goroutine held at its Close
	return g
}

// pass is the hook's part: the first caller after arm waits there.
func (g *gate) pass() {
	if g.armed.CompareAndSwap(true, false) {
		close(g.held)
		<-g.release
	}
}

// hold waits until a goroutine is held at g.
func (g *gate) hold(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.held:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: nothing reached the gate in 30 s", what)
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// registryEntry reads node b's registry entry from the external NATS at url.
func registryEntry(t *testing.T, url string, b byte) (jetstream.KeyValue, jetstream.KeyValueEntry, map[string]any) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, "WSGATE_ext_NODES")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := kv.Get(ctx, "node."+hub.NodeHex(b))
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	if err := json.Unmarshal(cur.Value(), &e); err != nil {
		t.Fatal(err)
	}
	return kv, cur, e
}

// reclaimNode is one node on an external NATS, renewing every 2 s (a
// lease of 10 s: a test's holds stay well inside it).
func reclaimNode(t *testing.T) (*cluster.Hub, string) {
	url := startNATS(t)
	c := externalConfig(url, "r1")
	c.LeaseSeconds, c.IsolationSeconds = 10, 9
	return startHubs(t, []cluster.Config{c})[0], url
}

// settled waits until h has fenced exactly once, is ready again, holds
// its registry entry under its current incarnation, and a renewal of that
// claim has succeeded since: the fence is over and the node keeps its byte.
func settled(t *testing.T, h *cluster.Hub, url string, renewed *atomic.Int64, fences int64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := h.Ready(); err != nil {
			return err
		}
		_, _, e := registryEntry(t, url, h.Self())
		if e["inc"] != h.Incarnation() || e["state"] != "up" {
			return fmt.Errorf("registry entry %v, want incarnation %s up", e, h.Incarnation())
		}
		return nil
	})
	n := renewed.Load()
	testenv.Eventually(t, 30*time.Second, func() error {
		if renewed.Load() == n {
			return errors.New("no renewal of the new claim has succeeded yet")
		}
		return nil
	})
	if f := h.Fenced(); f != fences {
		t.Fatalf("fenced %d times, want %d", f, fences)
	}
}

// TestClusterRenewalDuringFence drives the interleaving behind the fence
// that never ended (b58e6a0, found under load): a registry renewal is
// written while a fence is under way, between the fence taking its new
// incarnation and claiming the byte back. The renewal must write the
// incarnation of the claim it renews, and a claim must take an entry that
// already holds its own incarnation: a renewal that wrote the new
// incarnation left an entry the fence neither took (not the previous
// incarnation, not gone) nor adopted, and it retried forever (the node
// refused every client with 503 until it was restarted).
func TestClusterRenewalDuringFence(t *testing.T) {
	parallel(t)
	for _, order := range []string{"renewal read before the new incarnation", "renewal read after the new incarnation"} {
		t.Run(order, func(t *testing.T) {
			h, url := reclaimNode(t)
			renewal, fence := newGate(t), newGate(t)
			var written atomic.Value // the held renewal's answer
			var renewed, after atomic.Int64
			h.SetRenewHook(func(err error) {
				if err == nil {
					renewed.Add(1)
				}
				if after.Load() == 1 && after.CompareAndSwap(1, 2) {
					written.Store(fmt.Sprint(err))
				}
			})
			h.SetStepHook(func(step string) {
				switch step {
				case "renew-send":
					renewal.pass()
				case "fence-claim":
					fence.pass()
				}
			})
			_, _, before := registryEntry(t, url, h.Self())
			if order == "renewal read before the new incarnation" {
				renewal.armed.Store(true)
				renewal.hold(t, "a renewal")
				fence.armed.Store(true)
				h.FenceNow("test: a fence under way")
				fence.hold(t, "the fence")
			} else {
				fence.armed.Store(true)
				h.FenceNow("test: a fence under way")
				fence.hold(t, "the fence")
				renewal.armed.Store(true)
				renewal.hold(t, "a renewal during the fence")
			}
			if h.Incarnation() == before["inc"] {
				t.Fatal("the fence has not taken a new incarnation")
			}
			after.Store(1)
			renewal.open()
			testenv.Eventually(t, 30*time.Second, func() error {
				if written.Load() == nil {
					return errors.New("the held renewal has not been answered")
				}
				return nil
			})
			if w := written.Load(); w != "<nil>" {
				t.Fatalf("the held renewal was refused (%v): the interleaving was not the one under test", w)
			}
			_, _, mid := registryEntry(t, url, h.Self())
			t.Logf("the renewal wrote incarnation %v (previous %v, new %s)", mid["inc"], before["inc"], h.Incarnation())
			fence.open()
			settled(t, h, url, &renewed, 1)
		})
	}
}

// TestClusterRefusedRenewalAcrossReclaim: a renewal refused for its
// revision (the entry was rewritten under it, same claim) adopts the
// entry's revision and the next one succeeds, without a fence. Judged
// only once a fence has begun, or finished, claiming the byte again, the
// judgement (read the entry, adopt its revision if it still holds the
// claim renewed) must neither fence the node a second time nor leave its
// new claim renewing against a revision that is not its own.
func TestClusterRefusedRenewalAcrossReclaim(t *testing.T) {
	parallel(t)
	for _, when := range []string{"no fence", "fence under way", "fence over"} {
		t.Run(when, func(t *testing.T) {
			h, url := reclaimNode(t)
			refused, fence, next := newGate(t), newGate(t), newGate(t)
			var renewed atomic.Int64
			var refusal atomic.Bool
			h.SetRenewHook(func(err error) {
				if err == nil {
					renewed.Add(1)
				}
				if err != nil && refusal.CompareAndSwap(false, true) {
					refused.armed.Store(true)
				}
				refused.pass()
			})
			h.SetStepHook(func(step string) {
				switch step {
				case "fence-claim":
					fence.pass()
				case "renew-done":
					next.pass()
				}
			})
			// Rewrite the entry as it is: a new revision, same claim (a
			// renewal of this node's whose answer timed out would leave it
			// so). The next renewal is refused for its revision.
			kv, cur, _ := registryEntry(t, url, h.Self())
			if _, err := kv.Update(context.Background(), cur.Key(), cur.Value(), cur.Revision()); err != nil {
				t.Fatal(err)
			}
			refused.hold(t, "a renewal refused for its revision")
			next.armed.Store(true) // the held renewal's end
			fence.armed.Store(when == "fence under way")
			fences := int64(1)
			switch when {
			case "no fence":
				fences = 0
			case "fence under way":
				h.FenceNow("test: a fence across a refused renewal")
				fence.hold(t, "the fence") // new incarnation, byte not claimed yet
			case "fence over":
				h.FenceNow("test: a fence across a refused renewal")
				testenv.Eventually(t, 30*time.Second, h.Ready) // claimed again
			}
			refused.open()
			next.hold(t, "the refused renewal's end")
			next.open()
			fence.open()
			settled(t, h, url, &renewed, fences)
		})
	}
}
