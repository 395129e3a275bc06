package hub

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// paceState is what Memory.Pace keeps: the members it excused, until
// when, and its counters.
type paceState struct {
	mu      sync.Mutex
	excused map[Conn]time.Time

	waits, excusedN atomic.Int64
}

// PaceStats counts what Pace did on one node.
type PaceStats struct {
	// Waits counts the Pace calls that found a member backlogged and
	// waited.
	Waits int64
	// Excused counts the members a wait ended on in vain (PaceWait
	// passed): they are not waited for during PaceExcuse.
	Excused int64
}

// PaceStats reports what Pace did so far; safe for concurrent use.
func (h *Memory) PaceStats() PaceStats {
	return PaceStats{Waits: h.pace.waits.Load(), Excused: h.pace.excusedN.Load()}
}

// pacePoll bounds the interval at which Pace looks at the members it
// waits for: it starts at paceFirst and doubles to pacePoll.
const (
	paceFirst = 500 * time.Microsecond
	pacePoll  = 8 * time.Millisecond
)

// Pace implements Pacer for this node's members of group: it waits, at
// most PaceWait or until ctx ends, until none that is a Backlogger and
// not excused is backlogged. The messages published before the call were
// queued already (Publish queues synchronously). It polls: a wait is
// rare (a burst) and short (a healthy client drains half a queue in
// milliseconds), and a connection would otherwise need a way to signal
// each drain.
func (h *Memory) Pace(ctx context.Context, name string) {
	g := h.group(name)
	if g == nil {
		return
	}
	start := time.Now()
	var wait []Backlogger
	for _, c := range g.snapshot() {
		if b, ok := c.(Backlogger); ok && b.Backlogged() && !h.pace.isExcused(c, start) {
			wait = append(wait, b)
		}
	}
	if len(wait) == 0 {
		return
	}
	h.pace.waits.Add(1)
	t := time.NewTimer(paceFirst)
	defer t.Stop()
	for d := paceFirst; ; d = min(2*d, pacePoll) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wait = slices.DeleteFunc(wait, func(b Backlogger) bool { return !b.Backlogged() })
		if len(wait) == 0 {
			return
		}
		if now := time.Now(); now.Sub(start) >= PaceWait {
			h.pace.excuse(wait, now)
			return
		}
		t.Reset(min(d, PaceWait-time.Since(start)))
	}
}

// isExcused reports whether c is excused at now.
func (p *paceState) isExcused(c Conn, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.excused[c]
	return ok && now.Before(until)
}

// excuse excuses members until PaceExcuse after now, and forgets the
// excuses that ran out (so closed connections are let go).
func (p *paceState) excuse(members []Backlogger, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.excused == nil {
		p.excused = map[Conn]time.Time{}
	}
	for c, until := range p.excused {
		if !now.Before(until) {
			delete(p.excused, c)
		}
	}
	for _, b := range members {
		p.excused[b] = now.Add(PaceExcuse)
	}
	p.excusedN.Add(int64(len(members)))
}
