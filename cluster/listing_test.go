package cluster_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
)

// TestClusterMembersListing: pages of a group spread over 3 nodes, with
// limits 1, 7, 100 and 1000, return exactly the sorted union (brute force),
// and tokens stay valid while other members join and leave meanwhile: every
// member present throughout is listed once, in order.
func TestClusterMembersListing(t *testing.T) {
	hubs := startHubs(t, embeddedConfigs(t, 3))
	ctx := context.Background()
	const perNode = 400
	var stable []string
	for _, h := range hubs {
		for range perNode {
			c := hubtest.NewConn(hub.NewID(h.Self()), false)
			if err := h.Register(c); err != nil {
				t.Fatal(err)
			}
			if err := hubs[rand.IntN(len(hubs))].Join(ctx, "big", c.ID()); err != nil {
				t.Fatal(err)
			}
			stable = append(stable, c.ID())
		}
	}
	slices.Sort(stable)

	// Churn: connections joining and leaving on every node while we page.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, h := range hubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				c := hubtest.NewConn(hub.NewID(h.Self()), false)
				_ = h.Register(c)
				_ = h.Join(ctx, "big", c.ID())
				h.Unregister(c.ID())
				time.Sleep(time.Millisecond) // pacing, so the churn leaves the 2 cores some room
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	for _, limit := range []int{1, 7, 100, 1000} {
		for from, h := range hubs {
			if limit == 1 && from > 0 {
				continue // 1,200 pages once is enough
			}
			var got []string
			after := ""
			for {
				ids, next, err := h.Members(ctx, "big", hub.Page{After: after, Limit: limit})
				if err != nil {
					t.Fatalf("limit %d via node %d: %v", limit, from, err)
				}
				if len(ids) > limit || !slices.IsSorted(ids) || (len(ids) > 0 && ids[0] <= after) {
					t.Fatalf("limit %d: bad page %v after %q", limit, ids, after)
				}
				got = append(got, ids...)
				if next == "" {
					break
				}
				after = next
			}
			got = slices.DeleteFunc(got, func(id string) bool { _, ok := slices.BinarySearch(stable, id); return !ok })
			if !slices.Equal(got, stable) {
				t.Fatalf("limit %d via node %d: %d of %d stable members, or not in order", limit, from, len(got), len(stable))
			}
		}
	}
	n, err := hubs[1].Count(ctx, "big")
	if err != nil || n < len(stable) || n > len(stable)+len(hubs) {
		t.Fatalf("count = %d %v, want %d (+ at most one churning member per node)", n, err, len(stable))
	}
}
