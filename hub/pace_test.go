package hub

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// backlogConn is a testConn whose Backlogged the test sets.
type backlogConn struct {
	testConn
	backlogged atomic.Bool
}

func (c *backlogConn) Backlogged() bool { return c.backlogged.Load() }

// TestMemoryPace: Pace waits for a backlogged member until it drains; a
// member still backlogged after PaceWait is excused, and the next Pace
// does not wait for it; a Pace whose ctx ends excuses nobody; members
// that are no Backlogger, or not backlogged, are never waited for.
func TestMemoryPace(t *testing.T) {
	h := NewMemory(Limits{})
	a, b := &backlogConn{testConn: testConn{id: "a"}}, &backlogConn{testConn: testConn{id: "b"}}
	plain := &testConn{id: "c"}
	for _, c := range []Conn{a, b, plain} {
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
		if err := h.Join(context.Background(), "g", c.ID()); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	h.Pace(ctx, "g")
	h.Pace(ctx, "none")
	if got := h.PaceStats(); got != (PaceStats{}) {
		t.Fatalf("nothing backlogged: %+v", got)
	}

	// a drains while Pace waits for it.
	a.backlogged.Store(true)
	done := make(chan struct{})
	go func() { h.Pace(ctx, "g"); close(done) }()
	testenv.Eventually(t, 10*time.Second, func() error {
		if h.PaceStats().Waits != 1 {
			return errors.New("Pace is not waiting yet")
		}
		return nil
	})
	a.backlogged.Store(false)
	<-done
	if got := h.PaceStats(); got != (PaceStats{Waits: 1}) {
		t.Fatalf("after a drained: %+v", got)
	}

	// A Pace whose ctx ends excuses nobody.
	b.backlogged.Store(true)
	cctx, cancel := context.WithCancel(ctx)
	done = make(chan struct{})
	go func() { h.Pace(cctx, "g"); close(done) }()
	testenv.Eventually(t, 10*time.Second, func() error {
		if h.PaceStats().Waits != 2 {
			return errors.New("Pace is not waiting yet")
		}
		return nil
	})
	cancel()
	<-done
	if got := h.PaceStats(); got != (PaceStats{Waits: 2}) {
		t.Fatalf("after a cancelled Pace: %+v", got)
	}

	// b stays backlogged: excused after PaceWait, then not waited for.
	h.Pace(ctx, "g")
	if got := h.PaceStats(); got != (PaceStats{Waits: 3, Excused: 1}) {
		t.Fatalf("after b stayed backlogged: %+v", got)
	}
	h.Pace(ctx, "g")
	if got := h.PaceStats(); got != (PaceStats{Waits: 3, Excused: 1}) {
		t.Fatalf("b excused: %+v", got)
	}
	// a is not excused: waited for again.
	a.backlogged.Store(true)
	done = make(chan struct{})
	go func() { h.Pace(ctx, "g"); close(done) }()
	testenv.Eventually(t, 10*time.Second, func() error {
		if h.PaceStats().Waits != 4 {
			return errors.New("Pace is not waiting for a")
		}
		return nil
	})
	a.backlogged.Store(false)
	<-done
	if got := h.PaceStats(); got != (PaceStats{Waits: 4, Excused: 1}) {
		t.Fatalf("after a drained again: %+v", got)
	}
}
