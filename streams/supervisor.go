package streams

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// State is what a supervised stream is doing.
type State string

// The states of a supervised stream.
const (
	// StateStopped: Run has not been called yet, or returned because its
	// context ended.
	StateStopped State = "stopped"
	// StateRunning: the source's Run is executing. It may be retrying
	// transient failures inside (Status.LastError, a growing Status.Lag).
	StateRunning State = "running"
	// StateRetrying: the source's Run returned an error that is not
	// Permanent; it is called again after a backoff.
	StateRetrying State = "retrying"
	// StateFailed: the source's Run returned a Permanent error. It is not
	// restarted: a person must remove the cause and restart wsgate.
	StateFailed State = "failed"
)

// Restart policy defaults of a Supervisor.
const (
	// DefaultRestartMin and DefaultRestartMax bound the delay before a
	// failed source is restarted: 1 s, doubling per consecutive failure up
	// to 1 min, each delay jittered over [d/2, d].
	DefaultRestartMin = time.Second
	DefaultRestartMax = time.Minute
	// DefaultHealthyAfter: a run that lasted this long before it failed
	// was healthy, and the next delay starts again from the minimum.
	DefaultHealthyAfter = time.Minute
)

// errReturned is what a Supervisor records when Run returned nil before
// its context ended, which the Source contract does not allow.
var errReturned = errors.New("source stopped without an error")

// Supervisor runs a Source with its Handler and keeps it running: when Run
// returns an error that is not Permanent, the Supervisor logs it (WARN)
// and calls Run again after a backoff; a Permanent error is logged at
// ERROR, the state becomes StateFailed and the source is not restarted.
// Status reports the state, the last error and the lag, from any
// goroutine.
//
// The lag is the age of the oldest change not yet delivered: the older of
// the source's Stats.OldestPending and the oldest record the Supervisor saw
// offered to the handler and not yet accepted (it wraps the handler to
// see that, and keeps it across restarts, since a restarted source offers
// the same records again). It grows while a handler keeps failing, a
// batch waits for its window, or a source is stuck with records in hand.
// Changes the source has not read yet (a database it cannot reach) are
// invisible to it and so do not count.
type Supervisor struct {
	src Source
	h   *pendingHandler
	log *slog.Logger

	// Backoff spaces restarts: consecutive failures wait
	// Backoff.Jittered(n). Default DefaultRestartMin to DefaultRestartMax.
	// Set it before Run.
	Backoff Backoff
	// HealthyAfter resets the backoff: a run that lasted at least this
	// long before failing starts the delays again from Backoff.Min.
	// Default DefaultHealthyAfter. Set it before Run.
	HealthyAfter time.Duration

	mu       sync.Mutex
	state    State
	since    time.Time
	err      string // what ended the last run
	restarts int
	stops    map[string]int64 // runs whose context ended, by StopReason
	stopped  string           // the cause of the last one
	stopTook time.Duration    // and how long the run took to wind down
}

// Status is a supervised stream's state and progress.
type Status struct {
	// State is what the stream is doing.
	State State
	// Since is when the stream entered State.
	Since time.Time
	// Error is what ended the source's last run, "" when no run failed.
	// It stays after a restart, until the next failure replaces it.
	Error string
	// Restarts counts how often the source was started again after a
	// failure.
	Restarts int
	// Lag is the age of the oldest change not yet delivered, zero when
	// none is pending.
	Lag time.Duration
	// Source is what the source reports.
	Source Stats
	// Stops counts the runs that ended because their context did, by
	// StopReason (a lost lease, a shutdown, a reload); a reason never
	// seen is absent.
	Stops map[string]int64
	// StopCause is the cause of the last such stop, "" before the first,
	// and StopTook how long the run took to return after its context
	// ended (a call to the handler under way has its delivery grace).
	StopCause string
	StopTook  time.Duration
	// Cut counts the calls to the handler that a stop cut (its delivery
	// grace ran out, or the lease was lost, and the call failed): their
	// batches are delivered again by the next run.
	Cut int64
}

// NewSupervisor returns a Supervisor of src delivering to h, logging to
// logger (nil: discard).
func NewSupervisor(src Source, h Handler, logger *slog.Logger) *Supervisor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		src:          src,
		h:            &pendingHandler{h: h, log: logger, pending: map[string]time.Time{}},
		log:          logger,
		Backoff:      Backoff{Min: DefaultRestartMin, Max: DefaultRestartMax},
		HealthyAfter: DefaultHealthyAfter,
		state:        StateStopped,
		since:        time.Now(),
	}
}

// Run runs the source until ctx is done (it returns nil then) or the
// source fails permanently (it returns that error, after logging it).
// Call it once at a time; a cluster node calls it again for each term
// of the stream's lease, and the figures (Status) go on across calls.
func (s *Supervisor) Run(ctx context.Context) error {
	var ended atomic.Int64 // when ctx ended (unix ns), for the stop's log
	defer context.AfterFunc(ctx, func() { ended.Store(time.Now().UnixNano()) })()
	failures := 0
	for {
		s.set(StateRunning, nil)
		started := time.Now()
		err := s.src.Run(ctx, s.h)
		if ctx.Err() != nil {
			s.stop(ctx, &ended)
			return nil
		}
		if err == nil {
			err = errReturned
		}
		if IsPermanent(err) {
			s.set(StateFailed, err)
			s.log.Error("stream failed and will not be restarted: remove the cause, then restart wsgate", "error", err)
			return err
		}
		if time.Since(started) >= s.HealthyAfter {
			failures = 0
		}
		failures++
		d := s.Backoff.Jittered(failures)
		s.set(StateRetrying, err)
		s.log.Warn("stream source failed; restarting it", "error", err, "failures", failures, "backoff", d)
		if Sleep(ctx, d) != nil {
			s.stop(ctx, &ended)
			return nil
		}
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
	}
}

// stop enters StateStopped for ctx, which ended (at ended, unix ns, once
// its AfterFunc ran): it counts and logs the stop by its cause
// (StopReason), with how long the run took to wind down after it (a call
// to the handler under way gets its grace: HandleWithGrace).
func (s *Supervisor) stop(ctx context.Context, ended *atomic.Int64) {
	cause := context.Cause(ctx)
	reason := StopReason(cause)
	var took time.Duration
	if at := ended.Load(); at != 0 {
		took = max(time.Since(time.Unix(0, at)), 0)
	}
	s.mu.Lock()
	if s.stops == nil {
		s.stops = map[string]int64{}
	}
	s.stops[reason]++
	s.stopped, s.stopTook = cause.Error(), took
	s.mu.Unlock()
	s.set(StateStopped, nil)
	s.log.Info("stream run stopped", "reason", reason, "cause", cause.Error(), "took", took.Round(time.Millisecond))
}

// set enters state; a non-nil err becomes Status.Error.
func (s *Supervisor) set(state State, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != state {
		s.state, s.since = state, time.Now()
	}
	if err != nil {
		s.err = err.Error()
	}
}

// Status reports the stream's state and progress; safe from any
// goroutine.
func (s *Supervisor) Status() Status {
	st := s.src.Stats()
	oldest := s.h.oldest()
	if p := st.OldestPending; !p.IsZero() && (oldest.IsZero() || p.Before(oldest)) {
		oldest = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Status{State: s.state, Since: s.since, Error: s.err, Restarts: s.restarts, Source: st,
		StopCause: s.stopped, StopTook: s.stopTook, Cut: s.h.cut.Load()}
	if len(s.stops) > 0 {
		out.Stops = maps.Clone(s.stops)
	}
	if !oldest.IsZero() {
		out.Lag = max(time.Since(oldest), 0)
	}
	return out
}

// pendingHandler passes batches to h and remembers, per shard, the
// creation time of the oldest record offered and not yet accepted.
type pendingHandler struct {
	h       Handler
	log     *slog.Logger
	mu      sync.Mutex
	pending map[string]time.Time // one entry per shard with an unaccepted offer
	cut     atomic.Int64         // calls a stop cut (Status.Cut)
}

var (
	_ Handler = (*pendingHandler)(nil)
	_ Batcher = (*pendingHandler)(nil)
)

func (p *pendingHandler) Handle(ctx context.Context, shard string, recs []Record) error {
	if len(recs) > 0 {
		at := time.Time{}
		for i := range recs {
			c := recs[i].Change.ApproximateCreationDateTime.Time
			if !c.IsZero() && (at.IsZero() || c.Before(at)) {
				at = c
			}
		}
		if at.IsZero() {
			at = time.Now() // no creation time: pending from now on
		}
		p.mu.Lock()
		if old, ok := p.pending[shard]; !ok || at.Before(old) {
			p.pending[shard] = at
		}
		p.mu.Unlock()
	}
	err := p.h.Handle(ctx, shard, recs)
	if err == nil {
		p.mu.Lock()
		delete(p.pending, shard)
		p.mu.Unlock()
	} else if ctx.Err() != nil {
		// A stop cut the call (HandleWithGrace's grace ran out, or the
		// lease was lost): the batch is delivered again by the next run.
		p.cut.Add(1)
		p.log.Warn("stream batch cut by the stop; the next run delivers it again",
			"shard", shard, "records", len(recs), "cause", context.Cause(ctx).Error(), "error", err)
	}
	return err
}

// Batching passes the wrapped handler's batch shape on.
func (p *pendingHandler) Batching() (int, time.Duration) { return BatchOptions(p.h) }

// oldest is the oldest pending creation time, zero when none.
func (p *pendingHandler) oldest() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var o time.Time
	for _, t := range p.pending {
		if o.IsZero() || t.Before(o) {
			o = t
		}
	}
	return o
}
