// Package gcfloor gives the process's garbage collector a heap floor: the
// heap may grow to the floor before a collection, whatever GOGC's
// proportion of the live heap says, and above it GOGC rules as before.
//
// Go collects when the heap reaches the live heap times 1+GOGC/100 (4 MB
// at least). A server whose live heap is small (a few MB) then collects
// every second or so under a steady load, and in a burst of new
// connections more often still: each cycle's mark phase takes a quarter
// of the CPU for tens of ms on a small machine and makes the goroutines
// that allocate meanwhile mark too. With a floor, the percent is raised
// after each cycle so that the next goal is about the floor: the same
// load makes a cycle only when the floor's worth of garbage has been
// made. The cost is memory: a process whose live heap is under half the
// floor keeps up to about the floor in heap (its RSS that much higher);
// one whose live heap is larger is not affected.
//
// GOGC set in the environment is left alone (Set does nothing), and
// GOMEMLIMIT still applies: a limit under the floor wins (the runtime
// collects at the limit whatever the percent).
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// heapMinimum is the runtime's smallest heap goal at GOGC 100, scaled by
// the percent: at percent p the goal is never under heapMinimum·p/100,
// whatever the live heap (so before the first collection it is that).
const heapMinimum = 4 << 20

var (
	mu      sync.Mutex
	floor   uint64 // bytes; 0: none
	base    = 100  // GOGC's default: the percent at and above the floor
	percent = 100  // the percent last set
	armed   bool
	samples = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	tuned   atomic.Int64 // tunings after a collection, for tests
)

// Set makes bytes the process's heap floor (0: none, GOGC's default
// again); the last call wins. It reports false, and does nothing, when
// GOGC is set in the environment.
func Set(bytes uint64) bool {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return false
	}
	mu.Lock()
	floor = bytes
	start := bytes > 0 && !armed
	armed = armed || start
	mu.Unlock()
	tune()
	if start {
		arm()
	}
	return true
}

// Percent is the GOGC percent the floor set last (100 without a floor).
func Percent() int {
	mu.Lock()
	defer mu.Unlock()
	return percent
}

// sentinel is the object whose cleanup runs after each collection
// (not the tiny allocator's: it holds a pointer).
type sentinel struct{ _ *byte }

// arm allocates a sentinel that the next collection finds unreachable:
// its cleanup tunes the percent to the live heap that collection marked
// and arms the next one, for as long as a floor is set.
func arm() {
	runtime.AddCleanup(&sentinel{}, func(struct{}) {
		tune()
		tuned.Add(1)
		mu.Lock()
		again := floor > 0
		armed = again
		mu.Unlock()
		if again {
			arm()
		}
	}, struct{}{})
}

// tune sets the percent that puts the next goal at about the floor, at
// least base: the goal is the live heap times 1+percent/100, and at
// least heapMinimum·percent/100, so the percent is also kept at or under
// floor·100/heapMinimum (the floor of a tiny live heap, and the goal
// before the first collection, when there is no live heap yet).
func tune() {
	metrics.Read(samples)
	live := samples[0].Value.Uint64()
	mu.Lock()
	defer mu.Unlock()
	want := base
	if floor > live {
		p := floor * 100 / heapMinimum
		if live > 0 {
			p = min(p, (floor-live)*100/live)
		}
		want = max(int(p), base)
	}
	if want != percent {
		percent = want
		debug.SetGCPercent(want)
	}
}
