package cluster

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/hub"
)

// dedupeMax bounds one generation: when it is full, a generation older
// than the retry window (hold) gives way to a new one; a younger one
// remembers no more keys.
const dedupeMax = 1 << 20

// dedupeHoldMax bounds hold, the retry window: the longest
// requestTimeoutMillis (60 s), and a second for clocks apart (the
// requirement is 100 ms; a forwarded call's deadline is the origin's).
const dedupeHoldMax = 61 * time.Second

// dedupeMinSlots is the table's smallest size.
const dedupeMinSlots = 1 << 10

// dedupe remembers answered POSTs and DELETEs by a 64-bit hash of the key
// (a new key meets an old one's hash about once in 2^64/n calls, n keys
// remembered): a retry of the same call, by the origin after an attempt
// timed out or its direct connection failed, or by an AWS SDK through any
// node, gets the first answer instead of a second delivery. A key is
// remembered from its call's start for at least the longer of
// dedupeSeconds (a client's own repeat) and the retry window, hold (the
// cluster's own retries, whatever dedupeSeconds says: with 0 as with 10),
// and at most twice that. hold is requestTimeoutMillis, or the longest
// time to its deadline a forwarded call had when it came (retryWithin):
// the owner runs no attempt of a call past its deadline (runBatch), so a
// retry that comes once its key is forgotten is dropped unrun. Never
// initialized (tests), it runs every call.
//
// A call costs no allocation and one probe of one table: an entry is a
// 16-byte slot (the key's hash, its generation, a state byte: running, or
// which answer: the two a send gives most, or another error, kept in a
// side map) in an open-addressed table (linear probing), where a new
// key's probe both finds it absent and finds its slot, and its answer
// (end) comes back to the slot the probe left in cache. A rotation only
// starts a generation: entries of the current and the previous one are
// live, older ones are dead slots that a probe steps over and an insert
// reuses, and that a rebuild (when the used slots pass 3/4 of the table,
// or a rotation finds it mostly dead) leaves behind. A repeat that finds
// its key running waits on done, which end wakes only when someone waits.
//
// Memory is bounded: a generation holds at most max keys (dedupeMax),
// and when it is full and older than hold a new one starts early (a
// client's repeat is then remembered for less than dedupeSeconds, the
// cluster's retries still for hold); so at most 2 × dedupeMax keys live,
// in a table of at most 4 × dedupeMax slots (16 bytes each: 64 MiB).
// Only past dedupeMax keyed calls within hold are keys not remembered.
type dedupe struct {
	on      atomic.Bool  // set by init, after seed
	hold    atomic.Int64 // ns: the retry window, the least a key is kept
	repeats atomic.Int64 // calls answered with an earlier run's answer
	seed    maphash.Seed
	mu      sync.Mutex
	tab     []dedupeSlot // a power of two long, never full: a probe ends at an empty slot
	used    int          // slots not empty (live or dead)
	gen     uint32       // the current generation; gen and gen-1 are live
	n       [2]int       // live entries of generation g at n[g&1]
	errs    map[uint64]dedupeErr
	waiting int       // repeats waiting on done
	done    sync.Cond // L is &mu; broadcast when a call ends and waiting > 0
	rotated time.Time
	max     int // keys in one generation: dedupeMax (less in tests)
}

// dedupeSlot is one entry of the table: st 0 is an empty slot.
type dedupeSlot struct {
	k   uint64 // the key's hash
	gen uint32
	st  callState
}

// dedupeErr is the answer of an entry in state answeredErr.
type dedupeErr struct {
	err error
	gen uint32
}

// callState is a dedupe entry: a call running, or its answer.
type callState uint8

const (
	running      callState = iota + 1
	answeredNil            // answered nil
	answeredGone           // answered hub.ErrGone
	answeredFull           // answered hub.ErrQueueFull
	answeredErr            // answered another error, kept in errs
)

// init turns d on with the retry window hold (requestTimeoutMillis).
func (d *dedupe) init(hold time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seed = maphash.MakeSeed()
	d.tab, d.gen, d.rotated = make([]dedupeSlot, dedupeMinSlots), 2, time.Now()
	d.errs = make(map[uint64]dedupeErr)
	d.done.L = &d.mu
	d.max = dedupeMax
	d.hold.Store(int64(min(hold, dedupeHoldMax)))
	d.on.Store(true)
}

// retryWithin widens the retry window to left, a forwarded POST's or
// DELETE's time to its deadline as it came (at most dedupeHoldMax): a
// node whose requestTimeoutMillis is longer than this one's (a
// configuration being rolled out) still has its retries remembered. One
// atomic load when the window is wide enough already.
func (d *dedupe) retryWithin(left time.Duration) {
	for {
		cur := d.hold.Load()
		if int64(left) <= cur {
			return
		}
		if d.hold.CompareAndSwap(cur, int64(min(left, dedupeHoldMax))) {
			return
		}
	}
}

// rotate starts a new generation when the current one is keep
// (dedupeSeconds) old, and the retry window (hold) old: the previous one's
// entries die (their slots are reused or dropped by a rebuild, which this
// does when the table is mostly dead).
func (d *dedupe) rotate(keep time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tab == nil || time.Since(d.rotated) < max(keep, time.Duration(d.hold.Load())) {
		return
	}
	d.roll()
	if len(d.tab) > dedupeMinSlots && d.n[0]+d.n[1] < len(d.tab)/8 {
		d.rebuild()
	}
}

// roll starts a new generation (d.mu held): the previous one's entries
// and answers die.
func (d *dedupe) roll() {
	d.gen++
	d.n[d.gen&1] = 0
	d.rotated = time.Now()
	for k, e := range d.errs {
		if !d.live(e.gen) {
			delete(d.errs, k)
		}
	}
}

// do runs f once per key; a repeat waits for and returns the first run's
// result. An empty key, or d never initialized, always runs f.
func (d *dedupe) do(key string, f func() error) error {
	if key == "" || !d.on.Load() {
		return f()
	}
	return d.run(maphash.String(d.seed, key), f)
}

// doKey is do with the key in parts (hub.CallKey), joined on the stack
// (a key past 128 bytes on the heap): the same key as its String's.
func (d *dedupe) doKey(key *hub.CallKey, f func() error) error {
	if key.Empty() || !d.on.Load() {
		return f()
	}
	var buf [128]byte
	b := buf[:0]
	for _, p := range key {
		b = append(b, p...)
	}
	return d.run(maphash.Bytes(d.seed, b), f)
}

// doBytes is do with the key as bytes (a slice of a batch): a key as a
// string or as bytes is one key (maphash hashes both alike).
func (d *dedupe) doBytes(key []byte, f func() error) error {
	if len(key) == 0 || !d.on.Load() {
		return f()
	}
	return d.run(maphash.Bytes(d.seed, key), f)
}

// run is do for the key hash k on an initialized d.
func (d *dedupe) run(k uint64, f func() error) error {
	first, err := d.begin(k)
	if !first {
		return err
	}
	err = f()
	d.end(k, err)
	return err
}

// begin starts the call of key hash k on an initialized d. first: the
// caller runs it and then calls end(k, its answer); otherwise err is the
// answer of the call that ran first (waited for while it runs).
func (d *dedupe) begin(k uint64) (first bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		s, free := d.find(k)
		switch {
		case s == nil:
			d.insert(free, k, running)
			return true, nil
		case s.st != running:
			d.repeats.Add(1)
			switch s.st {
			case answeredNil:
				return false, nil
			case answeredGone:
				return false, hub.ErrGone
			case answeredFull:
				return false, hub.ErrQueueFull
			}
			return false, d.errs[k].err
		}
		d.waiting++
		d.done.Wait()
		d.waiting--
	}
}

// end records the answer of the call begin let run; repeats of it get
// err from now on. The answer goes to the current generation even when a
// rotation moved the call's entry to the previous one, so it is
// remembered from the answer on.
func (d *dedupe) end(k uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := answeredErr
	switch err {
	case nil:
		st = answeredNil
	case hub.ErrGone:
		st = answeredGone
	case hub.ErrQueueFull:
		st = answeredFull
	}
	if s, free := d.find(k); s == nil {
		d.insert(free, k, st)
	} else {
		d.n[s.gen&1]--
		d.n[d.gen&1]++
		s.gen, s.st = d.gen, st
	}
	if st == answeredErr {
		d.errs[k] = dedupeErr{err, d.gen}
	}
	if d.waiting > 0 {
		d.done.Broadcast()
	}
}

// live reports whether an entry of generation gen is remembered.
func (d *dedupe) live(gen uint32) bool { return d.gen-gen <= 1 }

// find probes for key hash k: its live slot, or nil and the slot an
// insert of k takes (the first dead or empty one on the way).
func (d *dedupe) find(k uint64) (s *dedupeSlot, free int) {
	mask := len(d.tab) - 1
	free = -1
	for i := int(k) & mask; ; i = (i + 1) & mask {
		s := &d.tab[i]
		switch {
		case s.st == 0:
			if free < 0 {
				free = i
			}
			return nil, free
		case !d.live(s.gen):
			if free < 0 {
				free = i
			}
		case s.k == k:
			return s, -1
		}
	}
}

// insert puts key hash k in state st into slot i (find's free slot) in
// the current generation, and rebuilds the table when its used slots pass
// 3/4. A full generation (max keys) gives way to a new one when it is
// older than the retry window; else k is not remembered. (Slot i stays
// free across the roll: empty, or dead before it.)
func (d *dedupe) insert(i int, k uint64, st callState) {
	if d.n[d.gen&1] >= d.max {
		if time.Since(d.rotated) < time.Duration(d.hold.Load()) {
			return
		}
		d.roll()
	}
	s := &d.tab[i]
	if s.st == 0 {
		d.used++
	}
	*s = dedupeSlot{k: k, gen: d.gen, st: st}
	d.n[d.gen&1]++
	if d.used > len(d.tab)/4*3 {
		d.rebuild()
	}
}

// rebuild moves the live entries into a new table at most half full
// (at least dedupeMinSlots), dropping the dead ones.
func (d *dedupe) rebuild() {
	live := d.n[0] + d.n[1]
	size := dedupeMinSlots
	for size < 2*live {
		size *= 2
	}
	old := d.tab
	d.tab, d.used = make([]dedupeSlot, size), live
	mask := size - 1
	for _, s := range old {
		if s.st == 0 || !d.live(s.gen) {
			continue
		}
		i := int(s.k) & mask
		for d.tab[i].st != 0 {
			i = (i + 1) & mask
		}
		d.tab[i] = s
	}
}

func dedupeKey(ctx context.Context) string { return hub.DedupeKey(ctx) }
