package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// runner is a Lease's run function that records its terms.
type runner struct {
	name   string
	active *atomic.Int32 // runs of this key active now, on every node
	most   *atomic.Int32 // the most ever active at once
	mu     sync.Mutex
	starts []time.Time
	ends   []time.Time
	causes []error // context.Cause of each term's end
}

func (r *runner) run(ctx context.Context) error {
	n := r.active.Add(1)
	for m := r.most.Load(); n > m && !r.most.CompareAndSwap(m, n); m = r.most.Load() {
	}
	r.mu.Lock()
	r.starts = append(r.starts, time.Now())
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.ends = append(r.ends, time.Now())
	r.causes = append(r.causes, context.Cause(ctx))
	r.mu.Unlock()
	r.active.Add(-1) // before run returns: the next leader may start after it
	return nil
}

func (r *runner) terms() (starts, ends []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.starts...), append([]time.Time(nil), r.ends...)
}

// leaders returns the runners running now.
func leaders(rs []*runner) []*runner {
	var out []*runner
	for _, r := range rs {
		s, e := r.terms()
		if len(s) > len(e) {
			out = append(out, r)
		}
	}
	return out
}

func leaseConfigs(url string, n int) []cluster.Config {
	var cfgs []cluster.Config
	for i := range n {
		c := externalConfig(url, fmt.Sprintf("l%d", i+1))
		c.StreamLeaseSeconds = 2
		cfgs = append(cfgs, c)
	}
	return cfgs
}

// TestLeaseOneRunner: six campaigners on three nodes race for one key;
// one runs at a time, always. Cancelling the leader's context hands over
// gracefully: its run returns, it deletes the key and another campaigner
// runs within moments (the gap is logged).
func TestLeaseOneRunner(t *testing.T) {
	parallel(t)
	hubs := startHubs(t, leaseConfigs(startNATS(t), 3))
	var active, most atomic.Int32
	var runners []*runner
	cancels := map[*runner]context.CancelFunc{}
	var wg sync.WaitGroup
	for i := range 6 {
		r := &runner{name: fmt.Sprintf("c%d", i), active: &active, most: &most}
		ctx, cancel := context.WithCancel(context.Background())
		runners = append(runners, r)
		cancels[r] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hubs[i%3].Lease(ctx, "stream.onerunner", r.run); err != nil {
				t.Errorf("%s: Lease: %v", r.name, err)
			}
		}()
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}()
	var gaps []time.Duration
	for round := range 3 {
		var leader *runner
		testenv.Eventually(t, 15*time.Second, func() error {
			if l := leaders(runners); len(l) != 1 {
				return fmt.Errorf("round %d: %d runners running", round, len(l))
			}
			leader = leaders(runners)[0]
			return nil
		})
		cancels[leader]() // graceful: the leader leaves
		delete(cancels, leader)
		var next *runner
		testenv.Eventually(t, 15*time.Second, func() error {
			for _, r := range leaders(runners) {
				if r != leader {
					next = r
					return nil
				}
			}
			return fmt.Errorf("round %d: no new leader yet", round)
		})
		_, ends := leader.terms()
		starts, _ := next.terms()
		leader.mu.Lock()
		if c := leader.causes[len(leader.causes)-1]; errors.Is(c, streams.ErrLeaseLost) {
			t.Errorf("round %d: a graceful leave ended the run with %v", round, c)
		}
		leader.mu.Unlock()
		gap := starts[len(starts)-1].Sub(ends[len(ends)-1])
		if gap < 0 {
			t.Fatalf("round %d: %s started %v before %s's run returned", round, next.name, -gap, leader.name)
		}
		gaps = append(gaps, gap)
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("%d runs at once", m)
	}
	t.Logf("graceful handover gaps (run returned → next run started): %v", gaps)
}

// TestLeaseSelfFence: a leader whose renewals fail (its NATS connections
// are gone) cancels its run before its key can expire; another node runs
// only after that, once the key expired.
func TestLeaseSelfFence(t *testing.T) {
	parallel(t)
	hubs := startHubs(t, leaseConfigs(startNATS(t), 3))
	var active, most atomic.Int32
	var runners []*runner
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, h := range hubs {
		r := &runner{name: fmt.Sprintf("n%d", i+1), active: &active, most: &most}
		runners = append(runners, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = h.Lease(ctx, "stream.selffence", r.run)
		}()
	}
	var leader *runner
	testenv.Eventually(t, 15*time.Second, func() error {
		if l := leaders(runners); len(l) != 1 {
			return fmt.Errorf("%d runners running", len(l))
		}
		leader = leaders(runners)[0]
		return nil
	})
	li := 0
	for i, r := range runners {
		if r == leader {
			li = i
		}
	}
	crashed := time.Now()
	cluster.Crash(hubs[li])
	var next *runner
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, r := range leaders(runners) {
			if r != leader {
				next = r
				return nil
			}
		}
		return fmt.Errorf("no new leader yet")
	})
	_, ends := leader.terms()
	if len(ends) == 0 {
		t.Fatal("the cut-off leader still runs while another node runs")
	}
	starts, _ := next.terms()
	fenced, took := ends[len(ends)-1], starts[len(starts)-1]
	if !fenced.Before(took) {
		t.Fatalf("the cut-off leader stopped at %v, after the new one started at %v", fenced, took)
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("%d runs at once", m)
	}
	leader.mu.Lock()
	cause := leader.causes[len(leader.causes)-1]
	leader.mu.Unlock()
	if !errors.Is(cause, streams.ErrLeaseLost) {
		t.Errorf("the cut-off leader's run ended with cause %v, want streams.ErrLeaseLost (no delivery grace)", cause)
	}
	t.Logf("lease 2 s: cut-off leader stopped %v after the cut, %v before the new leader started; failover %v",
		fenced.Sub(crashed).Round(time.Millisecond), took.Sub(fenced).Round(time.Millisecond), took.Sub(crashed).Round(time.Millisecond))
}
