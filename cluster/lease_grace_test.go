package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// TestLeaseRenewedWhileRunWindsDown: a leader that leaves gracefully while
// its run still finishes a call (the stream's delivery grace) keeps
// renewing its key until the run returns, also past a whole lease, so no
// other node runs meanwhile; its run's context ends without
// streams.ErrLeaseLost. Then the key is released and the other node runs.
func TestLeaseRenewedWhileRunWindsDown(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	// A 6 s lease, not the 2 s of the other lease tests: a renewal then
	// has 4.2 s to commit before the leader fences itself, not 1.4 s. A
	// starved machine (the whole suite under -race on 2 cores) missed
	// 1.4 s 3 times in 50, and the self-fence handing the key over is
	// what it should do then, not what this test is about.
	cfgs := leaseConfigs(url, 2)
	for i := range cfgs {
		cfgs[i].StreamLeaseSeconds = 6
	}
	hubs := startHubs(t, cfgs)
	const key = "stream.windsdown"
	var active, most atomic.Int32
	release := make(chan struct{})
	var releaseOnce sync.Once
	var cause atomic.Value
	slow := &runner{name: "slow", active: &active, most: &most}
	other := &runner{name: "other", active: &active, most: &most}
	lctx, leave := context.WithCancel(context.Background())
	octx, ocancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		releaseOnce.Do(func() { close(release) })
		leave()
		ocancel()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = hubs[0].Lease(lctx, key, func(ctx context.Context) error {
			err := slow.run(ctx) // returns once ctx ended; counted inactive
			cause.Store(fmt.Sprint(context.Cause(ctx)))
			if errors.Is(context.Cause(ctx), streams.ErrLeaseLost) {
				return err
			}
			slow.active.Add(1) // still winding down: still running
			<-release
			slow.active.Add(-1)
			return err
		})
	}()
	testenv.Eventually(t, 15*time.Second, func() error {
		if s, _ := slow.terms(); len(s) == 0 {
			return errors.New("the first node does not lead yet")
		}
		return nil
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = hubs[1].Lease(octx, key, other.run)
	}()

	kv := leasesBucket(t, url)
	revision := func() uint64 {
		e, err := kv.Get(context.Background(), key)
		if err != nil {
			return 0
		}
		return e.Revision()
	}
	leave()
	// Renewals come every lease/5: six of them span more than the 6 s
	// lease, which expires unless they are made.
	from := revision()
	testenv.Eventually(t, 15*time.Second, func() error {
		if s, _ := other.terms(); len(s) > 0 {
			t.Fatalf("the other node runs while the leaving one winds down (cause %v)", cause.Load())
		}
		if cause.Load() == nil {
			return errors.New("the leaving run's context has not ended yet")
		}
		if r := revision(); r < from+6 {
			return fmt.Errorf("key at revision %d, want %d", r, from+6)
		}
		return nil
	})
	if c := cause.Load(); c != fmt.Sprint(context.Canceled) {
		t.Fatalf("run's context ended with cause %v, want a graceful stop", c)
	}
	releaseOnce.Do(func() { close(release) })
	testenv.Eventually(t, 15*time.Second, func() error {
		if s, _ := other.terms(); len(s) == 0 {
			return errors.New("the other node does not run yet")
		}
		return nil
	})
	if m := most.Load(); m != 1 {
		t.Fatalf("%d runs at once", m)
	}
}
