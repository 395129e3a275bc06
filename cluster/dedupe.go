package cluster

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/hub"
)

// dedupeMax bounds one generation; past it keys are not remembered.
const dedupeMax = 1 << 20

// dedupe remembers answered POSTs and DELETEs for dedupeSeconds (between
// that and twice that), by a 64-bit hash of the key (a
// new key meets an old one's hash about once in 2^64/n calls, n keys
// remembered): a retry of the same call, by the origin after an attempt
// timed out or by an AWS SDK through any node, gets the first answer
// instead of a second delivery. Never initialized (dedupeSeconds 0), it
// runs every call.
//
// A call costs no allocation and a table slot of 16 bytes: its entry is a
// state byte (running, or which answer: the two a send gives most, or
// another error, kept in a side table), so a repeat that finds it
// running waits on done, which end wakes only when someone waits.
type dedupe struct {
	on        atomic.Bool // set by init, after seed
	seed      maphash.Seed
	mu        sync.Mutex
	cur, prev map[uint64]callState // by a 64-bit hash of the key
	// curErr and prevErr hold the answers of cur's and prev's entries in
	// state answeredErr.
	curErr, prevErr map[uint64]error
	waiting         int       // repeats waiting on done
	done            sync.Cond // L is &mu; broadcast when a call ends and waiting > 0
	rotated         time.Time
}

// callState is a dedupe entry: a call running, or its answer.
type callState uint8

const (
	running      callState = iota + 1
	answeredNil            // answered nil
	answeredGone           // answered hub.ErrGone
	answeredFull           // answered hub.ErrQueueFull
	answeredErr            // answered another error, kept in curErr or prevErr
)

func (d *dedupe) init() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seed = maphash.MakeSeed()
	d.cur, d.prev, d.rotated = make(map[uint64]callState), make(map[uint64]callState), time.Now()
	d.curErr, d.prevErr = make(map[uint64]error), make(map[uint64]error)
	d.done.L = &d.mu
	d.on.Store(true)
}

func (d *dedupe) rotate(every time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur != nil && time.Since(d.rotated) >= every {
		// Sized as the last generation: no growing under a steady load.
		d.prev, d.cur, d.rotated = d.cur, make(map[uint64]callState, len(d.cur)), time.Now()
		d.prevErr, d.curErr = d.curErr, make(map[uint64]error)
	}
}

// do runs f once per key; a repeat waits for and returns the first run's
// result. An empty key, or d off (never initialized), always runs f.
func (d *dedupe) do(key string, f func() error) error {
	if key == "" || !d.on.Load() {
		return f()
	}
	return d.run(maphash.String(d.seed, key), f)
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
		st, ok := d.cur[k]
		errs := d.curErr
		if !ok {
			st, ok = d.prev[k]
			errs = d.prevErr
		}
		switch {
		case !ok:
			if len(d.cur) < dedupeMax {
				d.cur[k] = running
			}
			return true, nil
		case st != running:
			switch st {
			case answeredNil:
				return false, nil
			case answeredGone:
				return false, hub.ErrGone
			case answeredFull:
				return false, hub.ErrQueueFull
			}
			return false, errs[k]
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
	if _, ok := d.cur[k]; ok || len(d.cur) < dedupeMax {
		switch err {
		case nil:
			d.cur[k] = answeredNil
		case hub.ErrGone:
			d.cur[k] = answeredGone
		case hub.ErrQueueFull:
			d.cur[k] = answeredFull
		default:
			d.cur[k], d.curErr[k] = answeredErr, err
		}
	}
	if d.waiting > 0 {
		d.done.Broadcast()
	}
}

func dedupeKey(ctx context.Context) string { return hub.DedupeKey(ctx) }
