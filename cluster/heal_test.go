package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterPartialHealJudgesNobody cuts node C off until it hears
// nobody, then heals only its routes to B and holds its routes to A back
// well past nodeTimeoutMillis. C then hears a strict majority (itself and
// B) for nodeTimeoutMillis while A, alive all along and heard by B, has
// been silent to C since the cut, and A's subjects have no responders on
// C's server once C's route to A is dropped. Neither is evidence against
// A: B has heard A since. Nobody may take A for gone (C's judgement of A
// on either evidence, its silence check and its calls), A never fences,
// and A's client keeps working from every node, C included once healed.
func TestClusterPartialHealJudgesNobody(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].RequestTimeoutMillis = 1000
	}
	srvs := startServers(t, cfgs)
	a, c := srvs[0], srvs[2]
	ctx := context.Background()
	ws, idA := dial(t, a)
	got := make(chan string, 16) // the posts after the heal; the backends' are read and dropped
	go func() {
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			if string(m) != "backend" {
				got <- string(m)
			}
		}
	}()
	for _, s := range srvs {
		waitHeardMajority(t, s.Cluster())
	}

	// Backends on B and C post to A's client, one call at a time: never
	// a 410 (B: always 200; C: 500 while it cannot reach A).
	var mu sync.Mutex
	logs := make([]statusLog, 2) // B, C
	count := make([]int, 2)
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for n, s := range srvs[1:] {
		api := oneShot(s)
		wg.Go(func() {
			for pctx.Err() == nil {
				st := postStatus(pctx, api, idA, []byte("backend"))
				if pctx.Err() != nil {
					return
				}
				mu.Lock()
				logs[n].add(st, time.Now())
				count[n]++
				mu.Unlock()
				time.Sleep(50 * time.Millisecond) // the backend's pace
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	answers := func(n int) int {
		mu.Lock()
		defer mu.Unlock()
		return count[n]
	}

	cC := c.Cluster()
	aByte := a.Cluster().Self()
	nw.cut(2)
	testenv.Eventually(t, 60*time.Second, func() error {
		if cC.HeardMajority() {
			return errors.New("C still hears a majority")
		}
		return nil
	})
	// C alone: it has not heard A (nor B) for nodeTimeoutMillis.
	nw.between(1, 2, (*proxy).heal)
	healed := time.Now()
	testenv.Eventually(t, 60*time.Second, func() error {
		if !cC.HeardMajority() {
			return errors.New("C does not hear a majority (itself and B) yet")
		}
		return nil
	})
	t.Logf("C heard a majority for nodeTimeoutMillis %v after its routes to B healed", time.Since(healed))
	for _, reason := range []string{"silent", "no responders"} {
		if cC.JudgeGone(aByte, reason) {
			t.Errorf("C, back with B but not yet with A, took A for gone on %q", reason)
		}
	}
	// Until C's server has dropped its route to A (its pings unanswered:
	// A's subjects then have no responders there), C's own silence check
	// and its calls to A's client run on.
	subject := "wsg." + cfgs[0].Name + ".n." + hub.NodeHex(aByte) + ".c"
	testenv.Eventually(t, 90*time.Second, func() error {
		if c.Cluster().HasInterest(subject) {
			return errors.New("C's server still has A's interest (its route to A not dropped yet)")
		}
		return nil
	})
	mark := answers(1)
	testenv.Eventually(t, 60*time.Second, func() error {
		if answers(1) < mark+3 {
			return errors.New("C's backend has not been answered since")
		}
		return nil
	})
	for _, reason := range []string{"silent", "no responders"} {
		if cC.JudgeGone(aByte, reason) {
			t.Errorf("C, back with B, its route to A dropped, took A for gone on %q", reason)
		}
	}
	held := time.Since(healed)

	nw.mend(2)
	for i, s := range srvs {
		testenv.Eventually(t, 60*time.Second, func() error {
			if st := postStatus(ctx, oneShot(s), idA, fmt.Appendf(nil, "via %d", i)); st != 200 {
				return fmt.Errorf("A's client, post via node %d after the heal: %d", i, st)
			}
			return nil
		})
	}
	stop()
	wg.Wait()
	t.Logf("routes to A held back %v after those to B healed", held)
	for n := range logs {
		if !logs[n].first410.IsZero() {
			t.Errorf("node %d answered 410 for A's live client (statuses %v)", n+1, logs[n].seen)
		}
	}
	if n := a.Cluster().Fenced(); n != 0 {
		t.Errorf("A fenced %d times (taken for gone)", n)
	}
	want := map[string]bool{"via 0": true, "via 1": true, "via 2": true}
	for len(want) > 0 {
		select {
		case m, ok := <-got:
			if !ok {
				t.Fatalf("A's client was closed; still waiting for %v", want)
			}
			delete(want, m)
		case <-time.After(30 * time.Second):
			t.Fatalf("A's client did not get %v", want)
		}
	}
}
