package streams

import (
	"context"
	"math/rand/v2"
	"time"
)

// Batcher is implemented by handlers that want batches of a certain shape.
// Sources consult it through BatchOptions.
type Batcher interface {
	// Batching returns the most records the handler wants per Handle call
	// and how long a source should gather records before handing over
	// fewer than that (0: hand over whatever is there at once).
	Batching() (size int, window time.Duration)
}

// BatchOptions returns how a source should batch for h: at most size
// records per Handle call, gathering for up to window while fewer are
// available. The window starts when the source first has a record that is
// not yet handed over, and so, as for Lambda's streams, the next window
// starts when the previous Handle returned. Handlers that are not Batchers
// get (DefaultBatchSize, 0).
func BatchOptions(h Handler) (size int, window time.Duration) {
	size = DefaultBatchSize
	if b, ok := h.(Batcher); ok {
		s, w := b.Batching()
		if s > 0 {
			size = s
		}
		if w > 0 {
			window = w
		}
	}
	return size, window
}

// Backoff is an exponential delay between retries: Min, doubled after each
// failure up to Max.
type Backoff struct {
	Min, Max time.Duration
}

// Delay is the delay before retry number n (1 for the first retry).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Jittered is Delay(n) spread over [Delay(n)/2, Delay(n)], so that
// streams failing together do not retry in step.
func (b Backoff) Jittered(n int) time.Duration {
	d := b.Delay(n)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d or until ctx is done, and returns ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
