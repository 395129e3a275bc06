package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterGroupInterest: while members join and leave groups through
// every node at once, no node's data connection ever holds two
// subscriptions to one group (as its NATS server counts them); a group
// keeps its subscription groupLingerSeconds after its last member left,
// then loses it; in the end each node is subscribed to exactly the groups
// it has members of. A publish right after a join's 204, through the node
// the join entered, reaches the new member on another node.
func TestClusterGroupInterest(t *testing.T) {
	heavy(t)
	const linger = 2
	cfgs := embeddedConfigs(t, 3)
	for i := range cfgs {
		v := linger
		cfgs[i].GroupLingerSeconds = &v
	}
	hubs := startHubs(t, cfgs)
	ctx := context.Background()
	conns := make([][]*hubtest.Conn, len(hubs))
	for i, h := range hubs {
		for range 8 {
			c := hubtest.NewConn(hub.NewID(h.Self()), false)
			if err := h.Register(c); err != nil {
				t.Fatal(err)
			}
			conns[i] = append(conns[i], c)
		}
	}
	groups := []string{"flap.0", "flap.1", "flap.2", "flap.3"}

	// Flapping: joins and leaves of random members through random nodes,
	// while a watcher counts each node's subscriptions per group.
	var mu sync.Mutex
	var problems []string
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			for i, h := range hubs {
				for g, n := range h.GroupSubs() {
					if n > 1 {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("node %d holds %d subscriptions to %s", i, n, g))
						mu.Unlock()
					}
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond): // the watcher's pace
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 150 {
				node := r.IntN(len(hubs))
				c := conns[node][r.IntN(len(conns[node]))]
				entry := hubs[r.IntN(len(hubs))]
				g := groups[r.IntN(len(groups))]
				op := entry.Join
				if r.IntN(2) == 0 {
					op = entry.Leave
				}
				if err := op(ctx, g, c.ID()); err != nil {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("join or leave %s of %s: %v", g, c.ID(), err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()

	// The end state: flap.1 has a member on node 0 only, flap.2 one on
	// every node, the other groups none.
	for i, h := range hubs {
		for _, c := range conns[i] {
			for _, g := range groups {
				if err := h.Leave(ctx, g, c.ID()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := hubs[2].Join(ctx, "flap.1", conns[0][0].ID()); err != nil {
		t.Fatal(err)
	}
	for i := range hubs {
		if err := hubs[(i+1)%len(hubs)].Join(ctx, "flap.2", conns[i][0].ID()); err != nil {
			t.Fatal(err)
		}
	}
	want := func(i int) map[string]int {
		if i == 0 {
			return map[string]int{"flap.1": 1, "flap.2": 1}
		}
		return map[string]int{"flap.2": 1}
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		for i, h := range hubs {
			if got := h.GroupSubs(); !maps.Equal(got, want(i)) {
				return fmt.Errorf("node %d subscribed to %v, want %v", i, got, want(i))
			}
		}
		return nil
	})
	close(stop)
	<-watched
	for _, p := range problems {
		t.Error(p)
	}

	// Linger: the last member leaves (through another node); the
	// subscription stays groupLingerSeconds, then goes.
	if err := hubs[2].Join(ctx, "linger", conns[1][0].ID()); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	if err := hubs[0].Leave(ctx, "linger", conns[1][0].ID()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if hubs[1].GroupSubs()["linger"] != 0 {
			return errors.New("node 1 still subscribed to linger")
		}
		return nil
	})
	if gone := time.Since(left); gone < linger*time.Second {
		t.Fatalf("the subscription went %v after the last leave, before groupLingerSeconds (%d s)", gone, linger)
	}

	// Join through node 0 a member of node 1, publish through node 0 at
	// once: the member has it. Each group is new, so each join subscribes.
	member := conns[1][1]
	for k := range 50 {
		g := fmt.Sprintf("fresh.%d", k)
		if err := hubs[0].Join(ctx, g, member.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := hubs[0].Publish(ctx, g, hub.NewMessage([]byte(g))); err != nil {
			t.Fatal(err)
		}

	}
	testenv.Eventually(t, 10*time.Second, func() error {
		got := member.Got()
		for k := range 50 {
			if g := fmt.Sprintf("fresh.%d", k); !slices.Contains(got, g) {
				return fmt.Errorf("the member did not get the publish to %s (got %d of 50)", g, len(got))
			}
		}
		return nil
	})
}
