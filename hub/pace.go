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
	groups  map[string]*paceDebt // the same account for a group as a whole (PaceGroupBudget)
	pruned  time.Time            // when accounts that are over were last let go

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
	// Refused counts the pacing questions of other nodes this node
	// answered at once, without waiting, because as many as it runs at
	// once were waiting already (a cluster's node only; the publisher
	// goes on unpaced by this node for that step).
	Refused int64
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
	gallow := h.pace.groupAllowance(name, start)
	if gallow <= 0 {
		return
	}
	for _, c := range g.snapshot() {
		if b, ok := c.(Backlogger); ok && b.Backlogged() {
			if allow := min(h.pace.allowance(c, start), gallow); allow > 0 {
				wait = append(wait, waiting{b, start.Add(allow)})
			}
		}
	}
	if len(wait) == 0 {
		return
	}
	h.pace.waits.Add(1)
	defer func() { h.pace.chargeGroup(name, time.Since(start), time.Now()) }()
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
	return p.members[c].allowance(now, PaceBudget)
}

// groupAllowance is how long Pace may wait for group name's members from
// now: 0 while the group is excused, else what is left of its
// PaceGroupBudget, PaceWait at most.
func (p *paceState) groupAllowance(name string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.groups[name].allowance(now, PaceGroupBudget)
}

// allowance is what is left of budget on account d at now (PaceWait at
// most; 0 while excused). A nil account has all of it.
func (d *paceDebt) allowance(now time.Time, budget time.Duration) time.Duration {
	switch {
	case d == nil || !now.Before(d.since.Add(PaceExcuse)) && !now.Before(d.excusedUntil):
		return PaceWait // no account, or its window and excuse are over
	case now.Before(d.excusedUntil):
		return 0
	default:
		return min(PaceWait, budget-d.waited)
	}
}

// over reports whether account d's window and excuse are both over at now.
func (d *paceDebt) over(now time.Time) bool {
	return !now.Before(d.since.Add(PaceExcuse)) && !now.Before(d.excusedUntil)
}

// add charges waited to d at now; true when d is excused by it (excuse,
// or budget reached).
func (d *paceDebt) add(waited time.Duration, now time.Time, budget time.Duration, excuse bool) bool {
	d.waited += waited
	if excuse || d.waited >= budget {
		d.since, d.excusedUntil, d.waited = now, now.Add(PaceExcuse), 0
		return true
	}
	return false
}

// prune lets go of the accounts whose window and excuse are over (closed
// connections and groups gone with them), at most once a second: a Pace
// that charges many members walks the accounts once, not once each.
func (p *paceState) prune(now time.Time) {
	if now.Sub(p.pruned) < time.Second {
		return
	}
	p.pruned = now
	for m, d := range p.members {
		if d.over(now) {
			delete(p.members, m)
		}
	}
	for g, d := range p.groups {
		if d.over(now) {
			delete(p.groups, g)
		}
	}
}

// chargeGroup adds the wall time one Pace waited for group name's members
// to its account: a group whose waits add up to PaceGroupBudget within
// PaceExcuse is not waited for, whichever members it waits for, during
// PaceExcuse.
func (p *paceState) chargeGroup(name string, waited time.Duration, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.groups == nil {
		p.groups = map[string]*paceDebt{}
	}
	p.prune(now)
	d := p.groups[name]
	if d == nil {
		d = &paceDebt{since: now.Add(-waited)}
		p.groups[name] = d
	}
	if d.add(waited, now, PaceGroupBudget, false) {
		p.excused.Add(1)
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
	p.prune(now)
	d := p.members[c]
	if d == nil || d.over(now) {
		d = &paceDebt{since: now.Add(-waited)}
		p.members[c] = d
	}
	if d.add(waited, now, PaceBudget, excuse) {
		p.excused.Add(1)
	}
}
