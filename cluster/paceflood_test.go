package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterPaceFloodBounded: a flood of pacing questions (subject .p)
// to a node whose group worker is held (a node behind: every question
// waits for its mark) runs at most cluster.PaceWaitersBound goroutines
// there; each question past them is answered at once with 503 and
// counted, the others once the worker goes on. Held again, the waiters
// that run when the node closes end with it: Close returns with none
// left. Before the bound every question started a goroutine of its own,
// which Close did not wait for.
func TestClusterPaceFloodBounded(t *testing.T) {
	parallel(t)
	// Three nodes: the node closes alone while the other two keep the
	// registry's quorum (its entry is released at once).
	cfgs := embeddedConfigs(t, 3)
	for i := range cfgs {
		// A waiter waits for the held worker requestTimeoutMillis at
		// most: longer than the test holds it, on any machine.
		cfgs[i].RequestTimeoutMillis = 60_000
	}
	hubs := startHubs(t, cfgs)
	pub, node := hubs[0], hubs[1]
	ctx := context.Background()
	member := hubtest.NewConn(hub.NewID(node.Self()), false)
	if err := node.Register(member); err != nil {
		t.Fatal(err)
	}
	if err := node.Join(ctx, "g", member.ID()); err != nil {
		t.Fatal(err)
	}
	// The join is confirmed at the node's server; the publisher's learns
	// of the interest over a route a moment later.
	testenv.Eventually(t, 30*time.Second, func() error {
		if !pub.HasInterest("wsg." + cfgs[0].Name + ".g.g") {
			return errors.New("the publisher's server does not know the node's interest in g yet")
		}
		return nil
	})

	var mu sync.Mutex
	held, release := make(chan struct{}), make(chan struct{})
	node.SetGroupHook(func(group string) {
		mu.Lock()
		h, r := held, release
		mu.Unlock()
		close(h)
		<-r
	})
	letGo := func() {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-release:
		default:
			close(release)
		}
	}
	t.Cleanup(letGo)
	// hold publishes a message through pub and waits until node's worker
	// holds it: every pacing question after it waits behind it.
	hold := func() {
		t.Helper()
		mu.Lock()
		h := held
		mu.Unlock()
		if _, err := pub.Publish(ctx, "g", hub.NewMessage([]byte("x"))); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h:
		case <-time.After(30 * time.Second):
			t.Fatal("the group message did not reach the node's worker")
		}
	}
	rearm := func() {
		mu.Lock()
		defer mu.Unlock()
		held, release = make(chan struct{}), make(chan struct{})
	}

	nc, err := nats.Connect(node.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	inbox := nats.NewInbox()
	answers := make(chan *nats.Msg, 4*cluster.PaceWaitersBound)
	sub, err := nc.ChanSubscribe(inbox+".*", answers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ask := func(n int) {
		t.Helper()
		for i := range n {
			m := nats.NewMsg(node.PaceSubject())
			m.Reply = inbox + "." + strconv.Itoa(i)
			m.Header.Set("Wsg-Group", "g")
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// take takes n answers, and reports how many were refusals.
	take := func(n int, within time.Duration) (refused int) {
		t.Helper()
		deadline := time.After(within)
		for range n {
			select {
			case m := <-answers:
				if m.Header.Get("Wsg-Status") == "503" {
					refused++
				}
			case <-deadline:
				t.Fatalf("fewer than %d answers within %v", n, within)
			}
		}
		return refused
	}
	waiters := func(want int) func() error {
		return func() error {
			if running, _ := node.PaceWaiters(); running != want {
				return fmt.Errorf("%d pacing goroutines run, want %d", running, want)
			}
			return nil
		}
	}

	// A flood past the bound while the worker is held.
	const extra = 36
	bound := cluster.PaceWaitersBound
	hold()
	ask(bound + extra)
	if got := take(extra, 30*time.Second); got != extra {
		t.Fatalf("%d of the first %d answers are refusals, want all (the others wait for the worker)", got, extra)
	}
	testenv.Eventually(t, 30*time.Second, waiters(bound))
	if _, peak := node.PaceWaiters(); peak != bound {
		t.Fatalf("at most %d pacing goroutines ran at once, want %d", peak, bound)
	}
	if r := node.PaceStats().Refused; r != extra {
		t.Fatalf("%d refusals counted, want %d", r, extra)
	}
	select {
	case m := <-answers:
		t.Fatalf("a question waiting for the held worker was answered (%v)", m.Header)
	default:
	}
	// The worker goes on: every waiting question is answered, paced.
	letGo()
	if got := take(bound, 30*time.Second); got != 0 {
		t.Fatalf("%d of the waiting questions were refused", got)
	}
	testenv.Eventually(t, 30*time.Second, waiters(0))

	// Held again, some wait when the node closes: they end with it.
	rearm()
	hold()
	ask(10)
	testenv.Eventually(t, 30*time.Second, waiters(10))
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = node.Close()
	}()
	// They end on the hub's context, the worker still held.
	testenv.Eventually(t, 60*time.Second, waiters(0))
	letGo()
	select {
	case <-closed:
	case <-time.After(60 * time.Second):
		t.Fatal("the node did not close")
	}
	if running, peak := node.PaceWaiters(); running != 0 || peak > bound {
		t.Fatalf("after Close: %d pacing goroutines run (at most %d ran), want none", running, peak)
	}
}
