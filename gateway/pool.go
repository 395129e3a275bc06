package gateway

import "time"

// workers runs route invocations on goroutines that outlive one job: a job
// goes to an idle worker when one waits, else to a new one. The pool itself
// never blocks or refuses: the goroutines are bounded by the connections
// times maxInflightPerConnection (the reader waits for a slot before handing
// a message over), and the integration calls they make by maxInflight (a
// call past it fails at once with integration.ErrThrottled, so a throttled
// message holds its worker only long enough to queue the answer).
//
// A worker keeps the stack it grew through the HTTP client and JSON
// encoding for the next job instead of growing a fresh 2 KB stack every
// message, and exits after workerIdle without work.
type workers struct {
	jobs chan func() // unbuffered: a send succeeds only to a waiting worker
}

const workerIdle = 5 * time.Second

func newWorkers() *workers { return &workers{jobs: make(chan func())} }

// Go runs f on an idle worker or a new one.
func (w *workers) Go(f func()) {
	select {
	case w.jobs <- f:
	default:
		go w.work(f)
	}
}

func (w *workers) work(f func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		f()
		f = nil
		t.Reset(workerIdle)
		select {
		case f = <-w.jobs:
		case <-t.C:
			return
		}
	}
}
