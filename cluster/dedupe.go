package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/wsgate/wsgate/hub"
)

// dedupeMax bounds one generation; past it keys are not remembered.
const dedupeMax = 1 << 20

// dedupe remembers answered POSTs and DELETEs for dedupeSeconds (between
// that and twice that): a retry of the same call, by the origin after an
// attempt timed out or by an AWS SDK through any node, gets the first
// answer instead of a second delivery. Never initialized (dedupeSeconds 0),
// it runs every call.
type dedupe struct {
	mu        sync.Mutex
	cur, prev map[string]*outcome
	rotated   time.Time
}

type outcome struct {
	done chan struct{}
	err  error
}

func (d *dedupe) init() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cur, d.prev, d.rotated = make(map[string]*outcome), make(map[string]*outcome), time.Now()
}

func (d *dedupe) rotate(every time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur != nil && time.Since(d.rotated) >= every {
		d.prev, d.cur, d.rotated = d.cur, make(map[string]*outcome), time.Now()
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
	o := d.cur[key]
	if o == nil {
		o = d.prev[key]
	}
	if o != nil {
		d.mu.Unlock()
		<-o.done
		return o.err
	}
	o = &outcome{done: make(chan struct{})}
	if len(d.cur) < dedupeMax {
		d.cur[key] = o
	}
	d.mu.Unlock()
	o.err = f()
	close(o.done)
	return o.err
}

func dedupeKey(ctx context.Context) string { return hub.DedupeKey(ctx) }
