package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// shortLease is cfg with a registry lease of 5 s (renewed every second):
// a stalled node's entry expires within a test's patience.
func shortLease(cfg cluster.Config) cluster.Config {
	cfg.LeaseSeconds, cfg.IsolationSeconds = 5, 4
	return cfg
}

// stallHooks holds a node's registry renewals and its registry watcher
// (each at its next step once armed: the goroutine's later work waits
// behind it) and reports the messages on its byte it leaves unanswered.
type stallHooks struct {
	renewal, watcher *gate
	silent           chan struct{} // one per message left unanswered, while there is room
}

func stall(t *testing.T, h *cluster.Hub) *stallHooks {
	s := &stallHooks{renewal: newGate(t), watcher: newGate(t), silent: make(chan struct{}, 64)}
	h.SetStepHook(func(step string) {
		switch step {
		case "renew-send":
			s.renewal.pass()
		case "apply":
			s.watcher.pass()
		case "not-owner":
			select {
			case s.silent <- struct{}{}:
			default:
			}
		}
	})
	return s
}

// answerAfter makes owner answer each batch of calls only once a node
// stalled on the same byte has had it and left it unanswered (silent),
// or once the test ends: an answer of the stalled node's would come
// first. owner.SetConnHook(func(string) {}) ends it.
func answerAfter(t *testing.T, owner *cluster.Hub, silent <-chan struct{}) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	owner.SetConnHook(func(string) {
		select {
		case <-silent:
		case <-stop:
		}
	})
}

// TestClusterStalledUpNodeAnswersNoCall: an up node S stalls (its
// registry renewals and its registry watcher held: a process that does
// not run) past its entry's time to live; the entry expires, another
// node N takes the byte and registers a client. S is still subscribed to
// the byte's subjects, its view of the registry still naming itself (its
// watcher has delivered nothing): a call on N's id reaches both, and S
// must leave it unanswered (an answer would be 410, racing N's). N's
// answer is held until S has had the call and left it, so an answer of
// S's would come first. Woken, S finds its entry taken and fences (its
// client gets 1012); the calls on N's id are answered by N throughout.
func TestClusterStalledUpNodeAnswersNoCall(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	hubs := startHubs(t, []cluster.Config{shortLease(externalConfig(url, "u1")), shortLease(externalConfig(url, "u2"))})
	b, s := hubs[0], hubs[1]
	self := s.Self()
	ctx := context.Background()
	old := hubtest.NewConn(hub.NewID(self), false)
	if err := s.Register(old); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, old.ID(), hub.NewMessage([]byte("before"))); err != nil {
		t.Fatal(err)
	}
	ew := watchEntry(t, url, self)
	hooks := stall(t, s)
	hooks.renewal.armed.Store(true)
	hooks.watcher.armed.Store(true)
	hooks.renewal.hold(t, "S's renewal")
	hooks.watcher.hold(t, "S's registry watcher")

	testenv.Eventually(t, 30*time.Second, func() error {
		if _, vacant := ew.seen(""); vacant == 0 {
			return errors.New("S's entry has not expired")
		}
		return nil
	})
	n := startOne(t, withByte(shortLease(externalConfig(url, "u3")), self))
	fresh := hubtest.NewConn(hub.NewID(self), false)
	if err := n.Register(fresh); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if st := stateOf(b, self); st != "up" {
			return fmt.Errorf("B sees the new owner %q, want up", st)
		}
		return nil
	})
	answerAfter(t, n, hooks.silent)
	for i := range 5 {
		if err := b.Send(ctx, fresh.ID(), hub.NewMessage(fmt.Appendf(nil, "%d", i))); err != nil {
			t.Fatalf("send %d to N's connection, the stalled S subscribed too: %v", i, err)
		}
	}
	n.SetConnHook(func(string) {})

	// S wakes: it finds its entry taken and fences.
	hooks.watcher.open()
	hooks.renewal.open()
	testenv.Eventually(t, 30*time.Second, func() error {
		if r, ok := old.Closed(); !ok || r != hub.CloseFenced {
			return fmt.Errorf("S's connection: closed %v %v, want 1012 fenced", ok, r)
		}
		return nil
	})
	if f := s.Fenced(); f != 1 {
		t.Fatalf("S fenced %d times, want 1", f)
	}
	for i := range 5 {
		if err := b.Send(ctx, fresh.ID(), hub.NewMessage(fmt.Appendf(nil, "after %d", i))); err != nil {
			t.Fatalf("send %d to N's connection after S woke: %v", i, err)
		}
	}
	if f := n.Fenced(); f != 0 {
		t.Fatalf("N fenced %d times", f)
	}
	// S cannot take its byte back while N holds it: /readyz says so,
	// naming the holder and what brings S back.
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "is now held by") || !strings.Contains(err.Error(), "restart this process") {
			return fmt.Errorf("S's readiness: %v", err)
		}
		return nil
	})
}

// TestClusterStalledUpNodeCarriesOn: an up node S whose renewals stall
// falls silent on its byte at its last renewal's send time + leaseSeconds
// − 1 s, the entry still its own; its next renewal, before the entry
// expired, makes it answer again: no fence, its client kept, the same
// incarnation (docs/cluster.md: rule 3 fences only a node that could not
// renew for leaseSeconds). For the stall to end before the expiry whatever
// the machine's load, the registry's bucket was made by B with a TTL of
// an hour while S counts its own lease, 8 s: S's answers stop 7 s after
// its last renewal, its entry lives on.
func TestClusterStalledUpNodeCarriesOn(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	bc := externalConfig(url, "c1")
	bc.LeaseSeconds = 3600
	b := startHubs(t, []cluster.Config{bc})[0]
	sc := externalConfig(url, "c2")
	sc.LeaseSeconds, sc.IsolationSeconds = 8, 7
	s := startOne(t, sc)
	testenv.Eventually(t, 20*time.Second, func() error {
		if st := stateOf(b, s.Self()); st != "up" {
			return fmt.Errorf("B sees S %q, want up", st)
		}
		return nil
	})
	ctx := context.Background()
	conn := hubtest.NewConn(hub.NewID(s.Self()), false)
	if err := s.Register(conn); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, conn.ID(), hub.NewMessage([]byte("before"))); err != nil {
		t.Fatal(err)
	}
	inc := s.Incarnation()
	hooks := stall(t, s)
	var renewed atomic.Int64
	s.SetRenewHook(func(err error) {
		if err == nil {
			renewed.Add(1)
		}
	})
	hooks.renewal.armed.Store(true)
	hooks.renewal.hold(t, "S's renewal")
	// Calls on S's connection until S leaves one unanswered.
	testenv.Eventually(t, 60*time.Second, func() error {
		select {
		case <-hooks.silent:
			return nil
		default:
		}
		_ = b.Send(ctx, conn.ID(), hub.NewMessage([]byte("during")))
		return errors.New("S still answers")
	})
	ok := renewed.Load()
	hooks.renewal.open()
	testenv.Eventually(t, 30*time.Second, func() error {
		if renewed.Load() == ok {
			return errors.New("no renewal has succeeded since the stall")
		}
		return nil
	})
	if err := b.Send(ctx, conn.ID(), hub.NewMessage([]byte("after"))); err != nil {
		t.Fatalf("a call on S's connection after its renewal: %v", err)
	}
	if _, closed := conn.Closed(); closed || s.Fenced() != 0 || s.Incarnation() != inc {
		t.Fatalf("S: connection closed %v, fenced %d times, incarnation %s (was %s); want it carrying on", closed, s.Fenced(), s.Incarnation(), inc)
	}
	if _, _, e := registryEntry(t, url, s.Self()); e["inc"] != inc || e["state"] != "up" {
		t.Fatalf("S's registry entry %v, want incarnation %s up", e, inc)
	}
}
