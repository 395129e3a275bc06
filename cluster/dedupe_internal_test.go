package cluster

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
)

// TestDedupeOnce: a key runs once; its repeats get the first answer,
// success, hub.ErrGone, hub.ErrQueueFull or another error, from the current generation and after one rotation;
// two rotations forget it; a repeat that comes while the first runs
// waits for it; another key, an empty key and an uninitialized dedupe
// run every time; a key given as a string or as bytes is one key.
func TestDedupeOnce(t *testing.T) {
	t.Parallel()
	var d dedupe
	d.init()
	var runs atomic.Int64
	fail := errors.New("gone")
	run := func(err error) func() error { return func() error { runs.Add(1); return err } }
	if err := d.do("a", run(nil)); err != nil || runs.Load() != 1 {
		t.Fatalf("first a: %v, %d runs", err, runs.Load())
	}
	if err := d.do("a", run(fail)); err != nil || runs.Load() != 1 {
		t.Fatalf("repeat of a: %v, %d runs; want the first answer, no run", err, runs.Load())
	}
	if err := d.doBytes([]byte("a"), run(fail)); err != nil || runs.Load() != 1 {
		t.Fatalf("a as bytes: %v, %d runs; want the first answer, no run", err, runs.Load())
	}
	if err := d.do("b", run(fail)); err != fail || runs.Load() != 2 {
		t.Fatalf("first b: %v, %d runs", err, runs.Load())
	}
	if err := d.do("b", run(nil)); err != fail || runs.Load() != 2 {
		t.Fatalf("repeat of b: %v, %d runs; want b's error, no run", err, runs.Load())
	}
	for _, sentinel := range []error{hub.ErrGone, hub.ErrQueueFull} {
		key := sentinel.Error()
		if err := d.do(key, run(sentinel)); err != sentinel {
			t.Fatalf("first %s: %v", key, err)
		}
		if err := d.do(key, run(nil)); err != sentinel {
			t.Fatalf("repeat of %s: %v, want the first answer", key, err)
		}
	}
	runs.Add(-2)
	for range 2 {
		if err := d.do("", run(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if runs.Load() != 4 {
		t.Fatalf("empty keys: %d runs, want every call run", runs.Load())
	}
	d.rotate(0)
	if err := d.do("b", run(nil)); err != fail || runs.Load() != 4 {
		t.Fatalf("b after one rotation: %v, %d runs; want remembered", err, runs.Load())
	}
	d.rotate(0)
	if err := d.do("b", run(nil)); err != nil || runs.Load() != 5 {
		t.Fatalf("b after two rotations: %v, %d runs; want forgotten, run", err, runs.Load())
	}

	// A repeat while the first runs waits for the first's answer.
	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = d.do("slow", func() error { close(started); <-release; return fail })
	})
	<-started
	answers := make(chan error, 4)
	for range 4 {
		wg.Go(func() { answers <- d.do("slow", run(nil)) })
	}
	// Not a timing assertion: the repeats are released in any case; one
	// that did not wait would have run f (counted below).
	for waiting := 0; waiting < 4; {
		d.mu.Lock()
		waiting = d.waiting
		d.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(answers)
	for err := range answers {
		if err != fail {
			t.Fatalf("a repeat while the first ran: %v, want the first's answer", err)
		}
	}
	if runs.Load() != 5 {
		t.Fatalf("%d runs; a repeat while the first ran ran again", runs.Load())
	}

	var off dedupe
	for range 2 {
		_ = off.do("a", run(nil))
		_ = off.doBytes([]byte("a"), run(nil))
	}
	if runs.Load() != 9 {
		t.Fatalf("dedupe off: %d runs, want every call run", runs.Load())
	}
}

// BenchmarkDedupe: one keyed call through the dedupe check, a new key
// each time as every SDK call is. Two sets of 2^16 keys take turns, the
// table rotated after each set as dedupeSeconds would at a steady rate:
// a set's keys are forgotten when it comes again, and each generation is
// made at the last one's size (no growing).
func BenchmarkDedupe(b *testing.B) {
	var d dedupe
	d.init()
	var keys [2][]string
	for s := range keys {
		for i := range 1 << 16 {
			keys[s] = append(keys[s], fmt.Sprintf("sdk:AKID:3b3a4c7e-5d4f-4a8e-%04x-%012x", s, i))
		}
	}
	f := func() error { return nil }
	b.ReportAllocs()
	s, i := 0, 0
	for b.Loop() {
		if i == len(keys[s]) {
			s, i = 1-s, 0
			d.rotate(0)
		}
		_ = d.do(keys[s][i], f)
		i++
	}
}
