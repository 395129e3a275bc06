package hub

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// paceState is what Memory.Pace keeps of the members it waited for: how
// long, in the current window, and which it excused, until when.
type paceState struct {
	mu      sync.Mutex
	members map[Conn]*paceDebt

	waits, excused atomic.Int64
}

// paceDebt is one member's account: the time Pace waited for it since
// since (a window of PaceExcuse), and until when it is excused.
type paceDebt struct {
	since, excusedUntil time.Time
	waited              time.Duration
}

// PaceStats counts what Pace did on one node.
type PaceStats struct {
	// Waits counts the Pace calls that found a member backlogged and
	// waited.
	Waits int64
	// Excused counts the times a member was excused (PaceWait in one
	// wait, or PaceBudget in a window): it is not waited for during
	// PaceExcuse.
	Excused int64
}

// PaceStats reports what Pace did so far; safe for concurrent use.
func (h *Memory) PaceStats() PaceStats {
	return PaceStats{Waits: h.pace.waits.Load(), Excused: h.pace.excused.Load()}
}

// Pace polls the members it waits for every paceFirst, doubling to
// pacePoll.
const (
	paceFirst = 500 * time.Microsecond
	pacePoll  = 8 * time.Millisecond
)

// Pace implements Pacer for this node's members of group: it waits until
// none that is a Backlogger and not excused is backlogged, or ctx ends.
// The messages published before the call were queued already (Publish
// queues synchronously). Each member is waited for PaceWait at most, and
// no longer than what is left of its PaceBudget; one that uses either up
// is excused. It polls: a wait is rare (a burst) and short (a healthy
// client drains half a queue in milliseconds), and a connection would
// otherwise need a way to signal each drain.
func (h *Memory) Pace(ctx context.Context, name string) {
	g := h.group(name)
	if g == nil {
		return
	}
	start := time.Now()
	type waiting struct {
		b        Backlogger
		deadline time.Time
	}
	var wait []waiting
	for _, c := range g.snapshot() {
		if b, ok := c.(Backlogger); ok && b.Backlogged() {
			if allow := h.pace.allowance(c, start); allow > 0 {
				wait = append(wait, waiting{b, start.Add(allow)})
			}
		}
	}
	if len(wait) == 0 {
		return
	}
	h.pace.waits.Add(1)
	t := time.NewTimer(paceFirst)
	defer t.Stop()
	for d := paceFirst; ; d = min(2*d, pacePoll) {
		done := false
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
		}
		now := time.Now()
		wait = slices.DeleteFunc(wait, func(w waiting) bool {
			switch {
			case !w.b.Backlogged():
				h.pace.charge(w.b, now.Sub(start), now, false)
			case !now.Before(w.deadline):
				h.pace.charge(w.b, now.Sub(start), now, true)
			case done:
				h.pace.charge(w.b, now.Sub(start), now, false)
			default:
				return false
			}
			return true
		})
		if len(wait) == 0 {
			return
		}
		next := wait[0].deadline
		for _, w := range wait[1:] {
			if w.deadline.Before(next) {
				next = w.deadline
			}
		}
		t.Reset(min(d, next.Sub(now)))
	}
}

// allowance is how long Pace may wait for c from now: 0 while it is
// excused, else PaceWait, or what is left of its PaceBudget if less.
func (p *paceState) allowance(c Conn, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.members[c]
	switch {
	case d == nil || !now.Before(d.since.Add(PaceExcuse)) && !now.Before(d.excusedUntil):
		return PaceWait // no account, or its window and excuse are over
	case now.Before(d.excusedUntil):
		return 0
	default:
		return min(PaceWait, PaceBudget-d.waited)
	}
}

// charge adds waited to c's account at now and, when excuse is set or
// the account reached PaceBudget, excuses c until PaceExcuse after now.
// Accounts whose window and excuse are over are let go (closed
// connections with them).
func (p *paceState) charge(c Conn, waited time.Duration, now time.Time, excuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.members == nil {
		p.members = map[Conn]*paceDebt{}
	}
	for m, d := range p.members {
		if !now.Before(d.since.Add(PaceExcuse)) && !now.Before(d.excusedUntil) {
			delete(p.members, m)
		}
	}
	d := p.members[c]
	if d == nil {
		d = &paceDebt{since: now.Add(-waited)}
		p.members[c] = d
	}
	d.waited += waited
	if excuse || d.waited >= PaceBudget {
		d.since, d.excusedUntil, d.waited = now, now.Add(PaceExcuse), 0
		p.excused.Add(1)
	}
}
