package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/mono"
)

// The connections' clocks. A connection's time of connection and its
// last activity are stamps: nanoseconds since mono.Start on the
// monotonic clock (8 bytes each, where a time.Time is 24), so the idle
// timeout and the maximum duration run on the monotonic clock and a step
// of the wall clock (NTP stepping it, a VM resumed) moves neither: a
// step forward does not end every connection at once, nor a step back
// keep them past their time.
//
// GET @connections and the events report a stamp as the wall-clock time
// it was taken at: the stamp plus the wall clock's offset from the
// monotonic one in force then (an epoch). The offset changes only when
// the wall clock steps (NTP slews both clocks alike; a suspended VM's
// monotonic clock stops); every wall-clock reading the gateway takes for
// a handshake or a sweep (wallNow) compares it with the current epoch's
// and opens a new epoch when it moved by more than stepTolerance. So a
// connection's connectedAt stays what it first was (a later step does
// not move it), and a stamp taken between a step and the next reading
// (within a sweep's second) is reported with the offset before the step.

// stamp is the monotonic clock now, in nanoseconds since mono.Start:
// one read of the runtime's monotonic clock (time.Since takes only that
// for a time with a monotonic reading), no wall-clock read.
func stamp() int64 { return int64(mono.Since()) }

// stepTolerance is how far the wall clock's offset from the monotonic
// clock may move before it counts as a step: the two are read one after
// the other, and a thread preempted between the reads sees them apart.
const stepTolerance = time.Millisecond

// maxEpochs bounds the epochs kept: past it the oldest goes (a stamp
// older than the oldest kept is reported with that one's offset).
const maxEpochs = 32

// epoch is the wall clock's offset from the stamps from one stamp on.
type epoch struct {
	from int64 // the first stamp it covers
	off  int64 // Unix nanoseconds minus stamp
}

var clocks struct {
	epochs atomic.Pointer[[]epoch] // ascending by from; never empty once set
	mu     sync.Mutex              // orders the epochs' writers
	// step is a test's wall-clock step (StepWall in export_test.go),
	// added to every wall-clock reading the gateway takes; 0 otherwise.
	step atomic.Int64
}

func init() {
	es := []epoch{{from: -1 << 63, off: mono.Start.UnixNano()}}
	clocks.epochs.Store(&es)
}

// wallNow reads the wall clock and the stamp of the same moment, and
// opens a new epoch if the wall clock stepped.
func wallNow() (time.Time, int64) {
	t := time.Now()
	st := int64(t.Sub(mono.Start)) // both have monotonic readings
	if d := clocks.step.Load(); d != 0 {
		t = t.Add(time.Duration(d)) // a test's step (its monotonic reading moves too; only its wall time is used)
	}
	off := t.UnixNano() - st
	es := *clocks.epochs.Load()
	if d := off - es[len(es)-1].off; d > int64(stepTolerance) || d < -int64(stepTolerance) {
		newEpoch(st, off)
	}
	// The time as wallAt will report the stamp (within stepTolerance of
	// the reading): a $connect's requestTimeEpoch and connectedAt agree.
	return t.Add(time.Duration(wallAt(st).UnixNano() - t.UnixNano())), st
}

// newEpoch opens an epoch from the stamp st with the offset off.
func newEpoch(st, off int64) {
	clocks.mu.Lock()
	defer clocks.mu.Unlock()
	old := *clocks.epochs.Load()
	last := old[len(old)-1]
	if d := off - last.off; d <= int64(stepTolerance) && d >= -int64(stepTolerance) || st <= last.from {
		return // another reading opened it first
	}
	if len(old) >= maxEpochs {
		old = old[len(old)-maxEpochs+1:]
	}
	es := append(append(make([]epoch, 0, len(old)+1), old...), epoch{from: st, off: off})
	es[0].from = -1 << 63 // a copy: readers may hold old
	clocks.epochs.Store(&es)
}

// wallAt is the wall-clock time of the stamp mono.
func wallAt(st int64) time.Time {
	es := *clocks.epochs.Load()
	i := len(es) - 1
	for i > 0 && es[i].from > st {
		i--
	}
	return time.Unix(0, st+es[i].off)
}
