// Package gopool runs short jobs on goroutines that outlive one job.
//
// A new goroutine starts with a 2 KB stack and grows it, by copying, the
// first time a job goes deep (an HTTP handshake, JSON encoding, an HTTP
// client call); on the handshake path that growth was 3–13 % of the
// server's CPU. A pooled goroutine keeps the stack it grew for the next
// job. The pool never blocks or refuses: a job goes to an idle goroutine
// when one waits, else to a new one, so the caller bounds the number of
// jobs in flight, and a goroutine exits after Idle to twice Idle without
// work.
package gopool

import "time"

// Idle is how long a goroutine waits for its next job, at least, before it
// exits.
const Idle = 5 * time.Second

// Pool hands jobs to idle goroutines. The zero value is not usable: use New.
type Pool struct {
	jobs chan func() // unbuffered: a send succeeds only to a waiting goroutine
}

// New returns an empty pool.
func New() *Pool { return &Pool{jobs: make(chan func())} }

// Go runs f on an idle goroutine of the pool or a new one.
func (p *Pool) Go(f func()) {
	select {
	case p.jobs <- f:
	default:
		go p.work(f)
	}
}

// work runs f and then the jobs handed to it. It exits at a tick of its
// Idle ticker when no job ran since the previous tick: a timer reset after
// every job cost a quarter of the hand-off's CPU.
func (p *Pool) work(f func()) {
	t := time.NewTicker(Idle)
	defer t.Stop()
	for ran := false; ; {
		if f != nil {
			f()
			f, ran = nil, true
		}
		select {
		case f = <-p.jobs:
		case <-t.C:
			if !ran {
				return
			}
			ran = false
		}
	}
}
