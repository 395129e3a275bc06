// Package streamtest is the recording handler the change-stream tests
// share: it keeps every batch offered and accepted, refuses on request and
// can ask for a batch shape, as a real target does.
package streamtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// ErrInjected is the error FailFirst makes a Collector return.
var ErrInjected = errors.New("injected failure")

// Batch is one Handle call: the shard and its records.
type Batch struct {
	Shard   string
	Records []streams.Record
}

// Collector is a streams.Handler and streams.Batcher that records what it
// is offered and what it accepts. Its zero value accepts everything, in the
// default batch shape.
type Collector struct {
	// Size and Window are the batch shape it asks for (streams.Batcher);
	// zero: the defaults. Set them before the source starts.
	Size   int
	Window time.Duration

	mu       sync.Mutex
	fail     func(call int, b Batch) error
	offers   []Batch
	accepted []Batch
}

var (
	_ streams.Handler = (*Collector)(nil)
	_ streams.Batcher = (*Collector)(nil)
)

// Refusing returns a Collector that refuses offers as fail decides.
func Refusing(fail func(call int, b Batch) error) *Collector { return &Collector{fail: fail} }

// FailFirst refuses the first n offers with ErrInjected.
func FailFirst(n int) func(int, Batch) error {
	return func(call int, _ Batch) error {
		if call <= n {
			return ErrInjected
		}
		return nil
	}
}

// SetFail replaces the refusal rule (nil: accept everything); safe while
// the source runs.
func (c *Collector) SetFail(fail func(call int, b Batch) error) {
	c.mu.Lock()
	c.fail = fail
	c.mu.Unlock()
}

// Handle implements streams.Handler.
func (c *Collector) Handle(_ context.Context, shard string, recs []streams.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := Batch{Shard: shard, Records: slices.Clone(recs)}
	c.offers = append(c.offers, b)
	if c.fail != nil {
		if err := c.fail(len(c.offers), b); err != nil {
			return err
		}
	}
	c.accepted = append(c.accepted, b)
	return nil
}

// Batching implements streams.Batcher.
func (c *Collector) Batching() (int, time.Duration) { return c.Size, c.Window }

// Offers is every batch offered, accepted or not.
func (c *Collector) Offers() []Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.offers)
}

// Accepted is every batch accepted.
func (c *Collector) Accepted() []Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.accepted)
}

// Records is every accepted record, in order.
func (c *Collector) Records() []streams.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []streams.Record
	for _, b := range c.accepted {
		all = append(all, b.Records...)
	}
	return all
}

// WaitRecords waits up to timeout until at least n records were accepted
// and returns them all.
func (c *Collector) WaitRecords(t testing.TB, timeout time.Duration, n int) []streams.Record {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if got := len(c.Records()); got < n {
			return fmt.Errorf("have %d records, want %d", got, n)
		}
		return nil
	})
	return c.Records()
}

// CheckOldestPending refuses every offer to h until the source offered a
// batch twice, checks that stats reports the batch's records as pending
// (an OldestPending within the last hour), then lets h accept and waits
// until stats reports nothing pending.
func CheckOldestPending(t testing.TB, timeout time.Duration, h *Collector, stats func() streams.Stats) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if n := len(h.Offers()); n < 2 {
			return fmt.Errorf("offered %d times, want 2", n)
		}
		return nil
	})
	st := stats()
	if age := time.Since(st.OldestPending); st.OldestPending.IsZero() || age < 0 || age > time.Hour {
		t.Errorf("OldestPending = %v while the handler refuses, want the refused record's creation time", st.OldestPending)
	}
	h.SetFail(nil)
	h.WaitRecords(t, timeout, 1)
	testenv.Eventually(t, timeout, func() error {
		if p := stats().OldestPending; !p.IsZero() {
			return fmt.Errorf("OldestPending %v after the handler accepted", p)
		}
		return nil
	})
}
