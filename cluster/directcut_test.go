package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterDirectLinkCut: the partition harness cuts the direct query
// links with the routes (proxiedConfigs). Listings from A go over the
// links to B and C; C is cut off: no query reaches C over its link, and a
// listing from A fails with ErrUnavailable (C does not answer) until A
// finds C gone, then leaves C's members out, as over NATS. Healed, C
// registers again and A's listings use C's link again and hold its new
// members.
func TestClusterDirectLinkCut(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].RequestTimeoutMillis = 1000
		cfgs[i].IsolationSeconds = 4
	}
	hubs := startHubs(t, cfgs)
	a, c := hubs[0], hubs[2]
	ctx := context.Background()
	join := func(h *cluster.Hub, n int) []string { t.Helper(); return registerMembers(t, h, "g", n) }
	var ab []string // A's and B's members
	for _, h := range hubs[:2] {
		ab = append(ab, join(h, 5)...)
	}
	cids := join(c, 5)
	list := func() ([]string, error) {
		var got []string
		after := ""
		for {
			ids, next, err := a.Members(ctx, "g", hub.Page{After: after, Limit: 100})
			if err != nil {
				return nil, err
			}
			got = append(got, ids...)
			if next == "" {
				slices.Sort(got)
				return got, nil
			}
			after = next
		}
	}
	sorted := func(s ...[]string) []string { return slices.Sorted(slices.Values(slices.Concat(s...))) }
	// The links are up once A's listings were answered over them (the
	// addresses come with the heartbeats): through the proxies.
	viaLinks := func(want []string) {
		t.Helper()
		b0, c0 := hubs[1].DirectServed(), c.DirectServed()
		testenv.Eventually(t, 60*time.Second, func() error {
			got, err := list()
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("listing: %d ids, want %d", len(got), len(want))
			}
			if hubs[1].DirectServed() == b0 || c.DirectServed() == c0 {
				return errors.New("B or C answered no listing over its link yet")
			}
			return nil
		})
	}
	viaLinks(sorted(ab, cids))
	waitHeardMajority(t, a)

	nw.cut(2)
	served := c.DirectServed()
	unavailable := 0
	testenv.Eventually(t, 60*time.Second, func() error {
		got, err := list()
		if errors.Is(err, hub.ErrUnavailable) {
			unavailable++
			return err
		}
		if err != nil {
			t.Fatalf("listing from A with C cut off: %v, want ErrUnavailable or A's and B's members", err)
		}
		if !slices.Equal(got, sorted(ab)) {
			t.Fatalf("listing from A with C cut off: %d ids, want A's and B's %d (C's left out once gone)", len(got), len(ab))
		}
		return nil
	})
	if n := c.DirectServed(); n != served {
		t.Fatalf("C, cut off, answered %d queries over its direct link", n-served)
	}
	t.Logf("A left C out after %d listings answered ErrUnavailable", unavailable)

	// C, alone, fences after isolationSeconds.
	testenv.Eventually(t, 60*time.Second, func() error {
		if c.Fenced() == 0 {
			return errors.New("C, cut off, has not fenced")
		}
		return nil
	})
	nw.mend(2)
	testenv.Eventually(t, 120*time.Second, c.Ready)
	// Its fence closed its clients; their server unregisters them (here
	// the test, for the test's connections). New members on C.
	for _, id := range cids {
		c.Unregister(id)
	}
	viaLinks(sorted(ab, join(c, 5)))
}
