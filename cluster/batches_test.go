package cluster_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// A second batch goes out beside one small batch, never beside a larger
// one, and never a third.
func TestLinkMayGo(t *testing.T) {
	parallel(t)
	for _, c := range []struct {
		inflight, outCalls int
		want               bool
	}{
		{0, 0, true}, {1, 1, true}, {1, 2, true}, {1, 3, false}, {1, 16, false}, {2, 2, false},
	} {
		if got := cluster.MayGo(c.inflight, c.outCalls); got != c.want {
			t.Errorf("%d batches of %d calls out: may go %v, want %v", c.inflight, c.outCalls, got, c.want)
		}
	}
}

// While a batch of one call is out (its owner holds it), the next call
// goes at once in a second batch; calls made while two are out queue and
// go together when the first answers. Every call is answered and run once,
// in the order of its batch, and the link ends with nothing out.
func TestClusterCallsSecondBatch(t *testing.T) {
	parallel(t)
	cfgs := patient(embeddedConfigs(t, 2))
	for i := range cfgs {
		cfgs[i].AttemptTimeoutMillis = 10_000 // the owner holds batches longer than 250 ms
	}
	hubs := startHubs(t, cfgs)
	origin, owner := hubs[0], hubs[1]
	c := hubtest.NewConn(hub.NewID(owner.Self()), false)
	if err := owner.Register(c); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	owner.SetConnHook(func(op string) {
		if op == "post" {
			<-gate
		}
	})
	ctx := context.Background()
	errs := make(chan error, 5)
	send := func(i int) { errs <- origin.Send(ctx, c.ID(), hub.NewMessage([]byte(strconv.Itoa(i)))) }
	state := func(queued, inflight, outCalls, out int) func() error {
		return func() error {
			q, f, oc, o := origin.LinkState(owner.Self())
			if q != queued || f != inflight || oc != outCalls || o != out {
				return fmt.Errorf("link: %d queued, %d batches of %d calls out (%d seqs); want %d, %d of %d (%d)", q, f, oc, o, queued, inflight, outCalls, out)
			}
			return nil
		}
	}
	go send(1)
	testenv.Eventually(t, 10*time.Second, state(0, 1, 1, 1))
	go send(2) // beside a batch of one: goes
	testenv.Eventually(t, 10*time.Second, state(0, 2, 2, 2))
	for i := 3; i <= 5; i++ {
		go send(i) // two out: queue
	}
	testenv.Eventually(t, 10*time.Second, state(3, 2, 2, 2))
	close(gate)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := c.Got()
	if len(got) != 5 || got[0] != "1" || got[1] != "2" {
		t.Fatalf("the connection got %q, want 1 and 2 first, then 3, 4 and 5 once each", got)
	}
	testenv.Eventually(t, 10*time.Second, state(0, 0, 0, 0))
	if calls, batches := origin.CallsOut(); calls != 5 || batches != 3 {
		t.Fatalf("%d calls in %d batches, want 5 in 3", calls, batches)
	}
}

// Many callers at once, some batches beside others: every call arrives
// once, each caller's in its order, and nothing stays out.
func TestClusterCallsNoneLost(t *testing.T) {
	parallel(t)
	hubs := startHubs(t, patient(embeddedConfigs(t, 2)))
	origin, owner := hubs[0], hubs[1]
	c := hubtest.NewConn(hub.NewID(owner.Self()), false)
	if err := owner.Register(c); err != nil {
		t.Fatal(err)
	}
	const callers, each = 12, 150
	ctx := context.Background()
	var wg sync.WaitGroup
	for k := range callers {
		wg.Go(func() {
			for i := range each {
				if err := origin.Send(ctx, c.ID(), hub.NewMessage(fmt.Appendf(nil, "%d:%d", k, i))); err != nil {
					t.Errorf("caller %d, send %d: %v", k, i, err)
					return
				}
				if i%10 == 0 {
					time.Sleep(time.Millisecond) // light moments: batches of one
				}
			}
		})
	}
	wg.Wait()
	next := make([]int, callers)
	got := c.Got()
	for _, m := range got {
		ks, is, _ := strings.Cut(m, ":")
		k, _ := strconv.Atoi(ks)
		i, _ := strconv.Atoi(is)
		if i != next[k] {
			t.Fatalf("caller %d's send %d arrived when %d was next", k, i, next[k])
		}
		next[k]++
	}
	if len(got) != callers*each {
		t.Fatalf("%d of %d sends arrived", len(got), callers*each)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if q, f, oc, o := origin.LinkState(owner.Self()); q+f+oc+o != 0 {
			return fmt.Errorf("link: %d queued, %d batches of %d calls out (%d seqs)", q, f, oc, o)
		}
		return nil
	})
	calls, batches := origin.CallsOut()
	t.Logf("%d calls in %d batches", calls, batches)
}
