package gopool

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

func TestPoolRunsEveryJob(t *testing.T) {
	p := New()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := make(map[int]bool)
	for i := range 1000 {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			mu.Lock()
			seen[i] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != 1000 {
		t.Fatalf("%d of 1000 jobs ran", len(seen))
	}
}

func TestPoolReusesAnIdleGoroutine(t *testing.T) {
	p := New()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	// The first goroutine is now idle (or about to be): a job it takes
	// from the channel, which only a waiting goroutine receives, proves
	// reuse.
	testenv.Eventually(t, 10*time.Second, func() error {
		ran := make(chan struct{})
		select {
		case p.jobs <- func() { close(ran) }:
			<-ran
			return nil
		default:
			return errors.New("no idle goroutine took the job")
		}
	})
}

// BenchmarkPoolGo: one job handed to a pool goroutine and waited for, as a
// front hands it a connection and the gateway a read turn.
func BenchmarkPoolGo(b *testing.B) {
	p := New()
	done := make(chan struct{})
	job := func() { done <- struct{}{} }
	b.ReportAllocs()
	for b.Loop() {
		p.Go(job)
		<-done
	}
}

// TestPoolRetiresIdleGoroutines: goroutines that stayed idle through a
// reaper's period exit, the reaper with the last of them, and the pool
// starts both again for the next job.
func TestPoolRetiresIdleGoroutines(t *testing.T) {
	p := &Pool{jobs: make(chan func()), every: 5 * time.Millisecond}
	for round := range 2 {
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			p.Go(func() { defer wg.Done(); <-release }) // three at once: three goroutines
		}
		if n := p.live.Load(); n < 3 {
			t.Fatalf("round %d: %d goroutines for 3 jobs in flight", round, n)
		}
		close(release)
		wg.Wait()
		testenv.Eventually(t, 10*time.Second, func() error {
			if n := p.live.Load(); n != 0 || p.reaping.Load() {
				return fmt.Errorf("round %d: %d goroutines, reaper running %v", round, n, p.reaping.Load())
			}
			return nil
		})
	}
}

// TestPoolMaxIdle: of the goroutines a burst of jobs started, those that
// find MaxIdle others idle when their job ends exit at once; MaxIdle stay
// (the reaper, here not due for an hour, retires them later).
func TestPoolMaxIdle(t *testing.T) {
	const maxIdle = 2
	p := NewMaxIdle(maxIdle)
	p.every = time.Hour
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-release }) // ten at once: ten goroutines
	}
	if n := p.live.Load(); n != 10 {
		t.Fatalf("%d goroutines for 10 jobs in flight", n)
	}
	close(release)
	wg.Wait()
	testenv.Eventually(t, 10*time.Second, func() error {
		if n, idle := p.Live(), p.Waiting(); n != maxIdle || idle != maxIdle {
			return fmt.Errorf("%d goroutines, %d idle; want %d of each", n, idle, maxIdle)
		}
		return nil
	})
	if m := p.MaxIdle(); m != maxIdle {
		t.Fatalf("MaxIdle %d, want %d", m, maxIdle)
	}
	if m := New().MaxIdle(); m != 0 {
		t.Fatalf("New's MaxIdle %d, want 0 (no bound)", m)
	}
}
