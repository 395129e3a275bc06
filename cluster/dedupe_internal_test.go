package cluster

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
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
	d.init(0)
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

// TestDedupeRetryWindow: a key is kept for the retry window whatever
// dedupeSeconds says: a rotation asked for with a shorter keep (0, as
// dedupeSeconds 0 asks) starts no generation before the window passed; a
// forwarded call with longer to its deadline widens the window (never
// past dedupeHoldMax), a shorter one does not narrow it. A full
// generation younger than the window remembers no more keys; once older
// it gives way to a new one (the full one's keys still remembered, as
// after a rotation). Repeats answered from the table are counted.
func TestDedupeRetryWindow(t *testing.T) {
	t.Parallel()
	var d dedupe
	d.init(time.Hour)
	runs := 0
	f := func() error { runs++; return nil }
	_ = d.do("a", f)
	for range 3 {
		d.rotate(0)
		if err := d.do("a", f); err != nil || runs != 1 {
			t.Fatalf("a after rotations asked within the window: %v, %d runs; want remembered", err, runs)
		}
	}
	if d.gen != 2 || d.repeats.Load() != 3 {
		t.Fatalf("generation %d, %d repeats; want 2 (no rotation), 3", d.gen, d.repeats.Load())
	}

	d.retryWithin(2 * time.Hour)
	d.retryWithin(time.Minute)
	if got := time.Duration(d.hold.Load()); got != dedupeHoldMax {
		t.Fatalf("the window is %v after calls of 2 h and 1 min to their deadlines, want %v", got, dedupeHoldMax)
	}
	d.hold.Store(int64(time.Second))
	d.retryWithin(1500 * time.Millisecond)
	if got := time.Duration(d.hold.Load()); got != 1500*time.Millisecond {
		t.Fatalf("the window is %v after a call of 1.5 s to its deadline, want 1.5 s", got)
	}

	// A generation of at most 4 keys, younger than the window: the 5th
	// key is not remembered.
	var full dedupe
	full.init(time.Hour)
	full.max = 4
	runs = 0
	for _, k := range []string{"k1", "k2", "k3", "k4", "k5", "k5"} {
		_ = full.do(k, f)
	}
	if runs != 6 {
		t.Fatalf("%d runs of 4 keys and a 5th twice in a full generation within the window, want 6", runs)
	}
	// Older than the window: a new generation takes the new key; the
	// full one's keys are still remembered.
	full.hold.Store(0)
	runs = 0
	for _, k := range []string{"k6", "k6", "k1", "k4"} {
		_ = full.do(k, f)
	}
	if runs != 1 || full.gen != 3 {
		t.Fatalf("%d runs of a new key twice and two old ones past the window, generation %d; want 1 run, generation 3", runs, full.gen)
	}
}

// TestDedupeTable: the table against a plain map of what it must
// remember, over random calls, answers and rotations, through the
// table's growth, its rebuilds and its shrinking after a burst: a key
// runs when it was not answered in the current or the previous
// generation, and otherwise gets its last answer without running; a
// key in parts (doKey) is the key of its concatenation.
func TestDedupeTable(t *testing.T) {
	t.Parallel()
	var d dedupe
	d.init(0)
	type memo struct {
		err error
		gen int
	}
	model := map[string]memo{}
	gen := 0
	other := errors.New("other")
	answers := []error{nil, hub.ErrGone, hub.ErrQueueFull, other}
	rng := rand.New(rand.NewPCG(1, 2))
	grew, shrank := false, false
	for step := range 300000 {
		// Bursts of many keys (growth), then few (reuse and shrinking).
		universe := 50
		if step/50000%2 == 0 {
			universe = 20000
		}
		switch r := rng.IntN(1000); {
		case r < 2:
			d.rotate(0)
			gen++
			if len(d.tab) == dedupeMinSlots && grew {
				shrank = true
			}
		default:
			n := rng.IntN(universe)
			key := fmt.Sprintf("sdk:AKID:%d", n)
			answer := answers[rng.IntN(len(answers))]
			ran := false
			f := func() error { ran = true; return answer }
			var got error
			if rng.IntN(2) == 0 {
				got = d.do(key, f)
			} else {
				got = d.doKey(&hub.CallKey{"sdk:", "AKID", ":", fmt.Sprint(n)}, f)
			}
			m, ok := model[key]
			remembered := ok && gen-m.gen <= 1
			switch {
			case remembered && (ran || got != m.err):
				t.Fatalf("step %d: %s answered %v (ran %v), want its answer %v without a run", step, key, got, ran, m.err)
			case !remembered && (!ran || got != answer):
				t.Fatalf("step %d: %s answered %v (ran %v), want a run answering %v", step, key, got, ran, answer)
			case !remembered:
				model[key] = memo{answer, gen}
			}
		}
		if len(d.tab) > dedupeMinSlots {
			grew = true
		}
	}
	if !grew || !shrank {
		t.Fatalf("the table grew %v, shrank %v: the test did not reach its rebuilds", grew, shrank)
	}
	if live := d.n[0] + d.n[1]; d.used < live || d.used > len(d.tab)/4*3 {
		t.Fatalf("used %d slots of %d with %d live", d.used, len(d.tab), live)
	}
}

// BenchmarkDedupe: one keyed call through the dedupe check, a new key
// each time as every SDK call is. Two sets of keys take turns, the table
// rotated after each set as dedupeSeconds would at a steady rate: a
// set's keys are forgotten when it comes again. A set of 2^16 keys is
// 6,500 POSTs a second for 10 s; of 2^18, 26,000.
func BenchmarkDedupe(b *testing.B) {
	for _, size := range []int{1 << 16, 1 << 18} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			var d dedupe
			d.init(0)
			var keys [2][]string
			for s := range keys {
				for i := range size {
					keys[s] = append(keys[s], fmt.Sprintf("sdk:AKID:3b3a4c7e-5d4f-4a8e-%04x-%012x", s, i))
				}
			}
			f := func() error { return nil }
			// A first round, so each set meets a table of the steady size.
			for s := range keys {
				for _, k := range keys[s] {
					_ = d.do(k, f)
				}
				d.rotate(0)
			}
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
		})
	}
}

// BenchmarkDedupeHash: a key's hash, as a string (a forwarded call's)
// and in parts (hub.CallKey, a local SDK call's).
func BenchmarkDedupeHash(b *testing.B) {
	seed := maphash.MakeSeed()
	key := hub.CallKey{"sdk:", "AKIAIOSFODNN7EXAMPLE", ":", "3b3a4c7e-5d4f-4a8e-9a3e-1f2b3c4d5e6f"}
	str := key.String()
	b.Run("string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = maphash.String(seed, str)
		}
	})
	b.Run("parts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var buf [128]byte
			k := buf[:0]
			for _, p := range key {
				k = append(k, p...)
			}
			_ = maphash.Bytes(seed, k)
		}
	})
	b.Run("hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var h maphash.Hash
			h.SetSeed(seed)
			for _, p := range key {
				h.WriteString(p)
			}
			_ = h.Sum64()
		}
	})
}
