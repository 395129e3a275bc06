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

// TestPaceBudget: the waits for one member add up within PaceExcuse; at
// PaceBudget it is excused for PaceExcuse, and its account starts again
// after that; a member whose window passed without using its budget
// starts again too.
func TestPaceBudget(t *testing.T) {
	var p paceState
	a, b := &testConn{id: "a"}, &testConn{id: "b"}
	t0 := time.Unix(1000, 0)
	if got := p.allowance(a, t0); got != PaceWait {
		t.Fatalf("a fresh member: %v", got)
	}
	// a trickles: it drains just before each wait ends (PaceWait less
	// 1 ms), three times; the third leaves 3 ms of its budget, and a
	// wait of those excuses it.
	at := t0
	for i := range 3 {
		at = at.Add(PaceWait)
		p.charge(a, PaceWait-time.Millisecond, at, false)
		if got, want := p.allowance(a, at), min(PaceWait, PaceBudget-time.Duration(i+1)*(PaceWait-time.Millisecond)); got != want {
			t.Fatalf("after %d waits: allowance %v, want %v", i+1, got, want)
		}
	}
	at = at.Add(3 * time.Millisecond)
	p.charge(a, 3*time.Millisecond, at, false)
	if got := p.allowance(a, at); got != 0 || p.excused.Load() != 1 {
		t.Fatalf("a after its budget: allowance %v, excused %d", got, p.excused.Load())
	}
	if got := p.allowance(a, at.Add(PaceExcuse-time.Second)); got != 0 {
		t.Fatalf("a during its excuse: %v", got)
	}
	if got := p.allowance(a, at.Add(PaceExcuse)); got != PaceWait {
		t.Fatalf("a after its excuse: %v", got)
	}
	// b waited 2 s, then its window passed: a full allowance again.
	p.charge(b, 2*time.Second, t0.Add(2*time.Second), false)
	if got := p.allowance(b, t0.Add(2*time.Second)); got != PaceBudget-2*time.Second {
		t.Fatalf("b within its window: %v", got)
	}
	if got := p.allowance(b, t0.Add(PaceExcuse)); got != PaceWait {
		t.Fatalf("b after its window: %v", got)
	}
	// One wait of PaceWait excuses at once.
	p.charge(b, PaceWait, t0.Add(PaceExcuse+time.Second), true)
	if got := p.allowance(b, t0.Add(PaceExcuse+time.Second)); got != 0 || p.excused.Load() != 2 {
		t.Fatalf("b after a whole PaceWait: allowance %v, excused %d", got, p.excused.Load())
	}
}

// TestPaceGroupBudget: many members that each use their own budget in
// turn hold a group back PaceGroupBudget at most per PaceExcuse: once a
// group's waits add up to it, Pace waits for none of its members (a fresh
// one included) until PaceExcuse has passed; another group is not
// touched.
func TestPaceGroupBudget(t *testing.T) {
	var p paceState
	t0 := time.Unix(1000, 0)
	at := t0
	n := int(PaceGroupBudget / PaceWait)
	for i := range n {
		c := &testConn{id: string(rune('a' + i))}
		if got := min(p.allowance(c, at), p.groupAllowance("g", at)); got != PaceWait {
			t.Fatalf("member %d: allowance %v before the group's budget is used", i, got)
		}
		at = at.Add(PaceWait)
		p.charge(c, PaceWait, at, true) // each excused in turn
		p.chargeGroup("g", PaceWait, at)
	}
	if got := p.groupAllowance("g", at); got != 0 {
		t.Fatalf("group after %d waits of PaceWait: allowance %v, want 0", n, got)
	}
	if got := p.allowance(&testConn{id: "fresh"}, at); got != PaceWait {
		t.Fatalf("a fresh member's own allowance: %v", got)
	}
	if got := p.groupAllowance("h", at); got != PaceWait {
		t.Fatalf("another group: allowance %v", got)
	}
	if got := p.groupAllowance("g", at.Add(PaceExcuse)); got != PaceWait {
		t.Fatalf("group after its excuse: %v", got)
	}
	// Accounts that are over are let go.
	p.chargeGroup("h", time.Millisecond, at.Add(3*PaceExcuse))
	if len(p.groups) != 1 || len(p.members) != 0 {
		t.Fatalf("accounts kept after they were over: %d groups, %d members", len(p.groups), len(p.members))
	}
}
