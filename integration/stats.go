package integration

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// DurationBuckets are the upper bounds, in seconds, of the duration
// histograms in FunctionStats: 1 ms to 15 minutes (Lambda's longest
// timeout).
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}

// Histogram is a snapshot of a duration histogram: Counts[i] is how many
// observations were at most DurationBuckets[i] seconds (cumulative, as
// Prometheus has them); Count and Sum cover all of them.
type Histogram struct {
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// histogram is a fixed-bucket duration histogram updated with atomics.
type histogram struct {
	buckets [18]atomic.Uint64 // one per bound, and one past the last
	count   atomic.Uint64
	sum     atomic.Int64 // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i, _ := slices.BinarySearch(DurationBuckets, s)
	h.buckets[min(i, len(DurationBuckets))].Add(1)
	h.count.Add(1)
	if d > 0 && h.sum.Load() < math.MaxInt64-int64(d) {
		h.sum.Add(int64(d))
	}
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Counts: make([]uint64, len(DurationBuckets)), Count: h.count.Load(), Sum: time.Duration(h.sum.Load())}
	var cum uint64
	for i := range DurationBuckets {
		cum += h.buckets[i].Load()
		out.Counts[i] = cum
	}
	return out
}

// FunctionStats are one local function's figures since start.
type FunctionStats struct {
	Name string
	// ColdStarts counts processes started.
	ColdStarts uint64
	// Processes is how many processes are alive now.
	Processes int
	// Invocations counts events handed to a process; Errors those that
	// ended in a function error, a crash or a timeout.
	Invocations, Errors uint64
	// Init is the wait of an invocation that started a process for the
	// process to take it (the cold start's init phase).
	Init Histogram
	// Duration is the invoke phase: from the process taking the event to
	// its answer.
	Duration Histogram
}

// poolStats are a process pool's counters.
type poolStats struct {
	coldStarts, invocations, errors atomic.Uint64
	init, duration                  histogram
}

// Stats reports each function's figures, sorted by name.
func (f *Functions) Stats() []FunctionStats {
	out := make([]FunctionStats, 0, len(f.Names()))
	for _, name := range f.Names() {
		c := f.fns[name].pool
		c.mu.Lock()
		live := len(c.all)
		c.mu.Unlock()
		out = append(out, FunctionStats{
			Name: name, ColdStarts: c.stats.coldStarts.Load(), Processes: live,
			Invocations: c.stats.invocations.Load(), Errors: c.stats.errors.Load(),
			Init: c.stats.init.snapshot(), Duration: c.stats.duration.snapshot(),
		})
	}
	return out
}
