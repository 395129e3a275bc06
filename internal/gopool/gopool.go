// Package gopool runs short jobs on goroutines that outlive one job.
//
// A new goroutine starts with a 2 KB stack and grows it, by copying, the
// first time a job goes deep (an HTTP handshake, JSON encoding, an HTTP
// client call); on the handshake path that growth was 3–13 % of the
// server's CPU. A pooled goroutine keeps the stack it grew for the next
// job. The pool never blocks or refuses: a job goes to an idle goroutine
// when one waits, else to a new one, so the caller bounds the number of
// jobs in flight, and a goroutine exits after Idle to twice Idle without
// work, or at once when the pool's MaxIdle others wait already. So a
// pool's goroutines are its jobs in flight and at most MaxIdle more (or,
// with no MaxIdle, as many more as were in flight at once in the last
// Idle to twice Idle).
package gopool

import (
	"sync/atomic"
	"time"
)

// Idle is how long a goroutine waits for its next job, at least, before it
// exits.
const Idle = 5 * time.Second

// Pool hands jobs to idle goroutines. The zero value is not usable: use New.
//
// An idle goroutine waits on the jobs channel alone (a plain receive: a
// select over it and a ticker cost the hand-off a second channel's locks
// and queue). The pool's reaper, a goroutine that runs while the pool has
// goroutines, looks every Idle at how many goroutines stayed idle
// throughout the last Idle (the fewest idle at once since its previous
// look) and retires that many, sending each a nil job.
type Pool struct {
	jobs    chan func()   // unbuffered: a send succeeds only to a waiting goroutine
	every   time.Duration // the reaper's period: Idle (shorter in tests)
	live    atomic.Int32  // goroutines of the pool
	idle    atomic.Int32  // goroutines waiting on jobs
	low     atomic.Int32  // the fewest idle since the reaper's last look
	reaping atomic.Bool
	maxIdle int32 // at most this many idle; 0: no bound
}

// New returns an empty pool.
func New() *Pool { return &Pool{jobs: make(chan func()), every: Idle} }

// NewMaxIdle returns an empty pool that keeps at most maxIdle goroutines
// waiting for work: one that finishes a job while maxIdle others wait
// exits (with its stack) rather than wait too.
func NewMaxIdle(maxIdle int) *Pool {
	p := New()
	p.maxIdle = int32(maxIdle)
	return p
}

// MaxIdle is the bound on the goroutines waiting for work (NewMaxIdle);
// 0: none.
func (p *Pool) MaxIdle() int { return int(p.maxIdle) }

// Live is the number of the pool's goroutines now: those running a job
// and those waiting for one.
func (p *Pool) Live() int { return int(p.live.Load()) }

// Waiting is the number of the pool's goroutines waiting for a job now.
func (p *Pool) Waiting() int { return int(p.idle.Load()) }

// Go runs f on an idle goroutine of the pool or a new one.
func (p *Pool) Go(f func()) {
	select {
	case p.jobs <- f:
	default:
		p.live.Add(1)
		if !p.reaping.Swap(true) {
			go p.reap()
		}
		go p.work(f)
	}
}

// work runs f and then the jobs handed to it, until it is handed nil or
// finds maxIdle others idle.
func (p *Pool) work(f func()) {
	for f != nil {
		f()
		if n := p.idle.Add(1); p.maxIdle > 0 && n > p.maxIdle {
			p.idle.Add(-1)
			break
		}
		f = <-p.jobs
		if n := p.idle.Add(-1); n < p.low.Load() {
			p.low.Store(n) // racy with other goroutines' stores: a count, not a bound
		}
	}
	p.live.Add(-1)
}

// reap retires, every Idle, the goroutines that stayed idle since its
// previous look; it returns once the pool has none.
func (p *Pool) reap() {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for range t.C {
		for n := p.low.Swap(p.idle.Load()); n > 0; n-- {
			select {
			case p.jobs <- nil:
			default:
				n = 0 // none waits after all: a job took it
			}
		}
		if p.live.Load() == 0 {
			p.reaping.Store(false)
			// A goroutine started since the load above found reaping
			// set and started no reaper: stay for it.
			if p.live.Load() == 0 || p.reaping.Swap(true) {
				return
			}
		}
	}
}
