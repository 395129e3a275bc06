package cluster

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/wsgate/wsgate/hub"
)

// dedupeMax bounds one generation; past it keys are not remembered.
const dedupeMax = 1 << 20

// dedupe remembers answered POSTs and DELETEs for dedupeSeconds (between
// that and twice that), by a 64-bit hash of the key (a new key meets an
// old one's hash about once in 2^64/n calls, n keys remembered): a retry
// of the same call, by the origin after an attempt timed out or by an AWS
// SDK through any node, gets the first answer instead of a second
// delivery. Never initialized (dedupeSeconds 0),
// it runs every call.
type dedupe struct {
	mu        sync.Mutex
	seed      maphash.Seed
	cur, prev map[uint64]*outcome // by a 64-bit hash of the key
	rotated   time.Time
}

type outcome struct {
	done sync.WaitGroup // Done once err is set
	err  error
}

func (d *dedupe) init() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seed = maphash.MakeSeed()
	d.cur, d.prev, d.rotated = make(map[uint64]*outcome), make(map[uint64]*outcome), time.Now()
}

func (d *dedupe) rotate(every time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur != nil && time.Since(d.rotated) >= every {
		// Sized as the last generation: no growing under a steady load.
		d.prev, d.cur, d.rotated = d.cur, make(map[uint64]*outcome, len(d.cur)), time.Now()
	}
}

// do runs f once per key; a repeat waits for and returns the first run's
// result. An empty key always runs f.
func (d *dedupe) do(key string, f func() error) error {
	if key == "" {
		return f()
	}
	d.mu.Lock()
	if d.cur == nil {
		d.mu.Unlock()
		return f()
	}
	return d.doLocked(maphash.String(d.seed, key), f)
}

// doBytes is do with the key as bytes (a slice of a batch): a key as a
// string or as bytes is one key (maphash hashes both alike).
func (d *dedupe) doBytes(key []byte, f func() error) error {
	if len(key) == 0 {
		return f()
	}
	d.mu.Lock()
	if d.cur == nil {
		d.mu.Unlock()
		return f()
	}
	return d.doLocked(maphash.Bytes(d.seed, key), f)
}

// doLocked is do for the key hash k, called with d.mu held and d
// initialized; it unlocks d.mu.
func (d *dedupe) doLocked(k uint64, f func() error) error {
	o := d.cur[k]
	if o == nil {
		o = d.prev[k]
	}
	if o != nil {
		d.mu.Unlock()
		o.done.Wait()
		return o.err
	}
	o = &outcome{}
	o.done.Add(1)
	if len(d.cur) < dedupeMax {
		d.cur[k] = o
	}
	d.mu.Unlock()
	o.err = f()
	o.done.Done()
	return o.err
}

func dedupeKey(ctx context.Context) string { return hub.DedupeKey(ctx) }
