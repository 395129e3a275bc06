package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultDeliverGraceSeconds is how long a call to the handler under way
// when a run is told to stop (a reload that restarts the stream, a
// shutdown, a graceful handover in a cluster) may still take to finish,
// unless SourceConfig.DeliverGraceSeconds says otherwise.
// MaxDeliverGraceSeconds bounds that field.
const (
	DefaultDeliverGraceSeconds = 5
	MaxDeliverGraceSeconds     = 60
)

// ErrLeaseLost is the cause (context.Cause) of a run's context that ends
// because its runner lost the right to run the source: a cluster node
// whose stream lease moved to another node, or that could not renew it in
// time. Such a run gets no delivery grace (see HandleWithGrace): another
// runner may be starting, and the source's fence would refuse whatever
// this one accepted after that anyway.
var ErrLeaseLost = errors.New("stream lease lost")

// ErrShutdown and ErrReload are the causes (context.Cause) a server gives
// a run's context when it stops the stream for a shutdown (a graceful
// handover in a cluster) or for a reload that stops or restarts it. A
// Supervisor counts and logs its runs' stops by cause (StopReason).
var (
	ErrShutdown = errors.New("server shutting down")
	ErrReload   = errors.New("stream stopped by a reload")
)

// The reasons StopReason gives, the values of the reason label of
// wsgate_stream_stops_total.
const (
	StopLeaseLost = "lease_lost"
	StopShutdown  = "shutdown"
	StopReload    = "reload"
	StopOther     = "other"
)

// StopReasons are StopReason's values.
var StopReasons = []string{StopLeaseLost, StopShutdown, StopReload, StopOther}

// StopReason names the cause of a run's context that ended: a cause
// wrapping ErrLeaseLost, ErrShutdown or ErrReload, else StopOther (a
// context cancelled without one of those, by a caller that gives none).
func StopReason(cause error) string {
	switch {
	case errors.Is(cause, ErrLeaseLost):
		return StopLeaseLost
	case errors.Is(cause, ErrShutdown):
		return StopShutdown
	case errors.Is(cause, ErrReload):
		return StopReload
	default:
		return StopOther
	}
}

// HandleWithGrace calls h.Handle once and is how every source offers a
// batch. The call gets a context that does not end with ctx (the run's):
// when ctx ends while the call is under way, the call has up to grace to
// finish, so that a batch the target accepts meanwhile is made durable by
// the source (trimmed, confirmed, checkpointed) before the run returns,
// and the next run does not deliver it again. Only then is the call's
// context cancelled, and the batch is delivered again by the next run:
// at least once, as before. A ctx that ended with a cause wrapping
// ErrLeaseLost, or a grace of 0, cuts the call at once; so does the
// lease context ctx carries (WithLease) when it ends, also during a grace
// that a graceful stop began earlier. When ctx has ended already,
// HandleWithGrace does not call h and returns ctx's error.
//
// The handler learns that the run is stopping from Stopping(ctx): a
// target that retries inside Handle (MappingTarget) starts no retry of a
// failed invocation once the stop has begun.
func HandleWithGrace(ctx context.Context, grace time.Duration, h Handler, shard string, recs []Record) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	hctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	var (
		mu    sync.Mutex
		timer *time.Timer
		over  bool
	)
	// A lease lost at any time cuts the call: before the stop, ctx ends
	// with ErrLeaseLost too (either cancel wins, with the same meaning);
	// during a grace, only the lease's context says so, as ctx's cause
	// was set by the stop and cannot change.
	if lease := leaseOf(ctx); lease != nil {
		defer context.AfterFunc(lease, func() { cancel(context.Cause(lease)) })()
	}
	stop := context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		if grace <= 0 || errors.Is(cause, ErrLeaseLost) {
			cancel(cause)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !over {
			timer = time.AfterFunc(grace, func() {
				cancel(fmt.Errorf("delivery grace of %v over after the stop: %w", grace, cause))
			})
		}
	})
	defer func() {
		stop()
		mu.Lock()
		over = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
	}()
	return h.Handle(context.WithValue(hctx, stoppingKey{}, ctx.Done()), shard, recs)
}

// leaseKey keys the lease context in a run's context (WithLease).
type leaseKey struct{}

// WithLease returns a copy of ctx that carries lease: a context that ends,
// with a cause wrapping ErrLeaseLost, when the runner loses the right to
// run the source (a cluster's stream lease). A runner cancels the run's
// context with the same cause then; lease matters when the run's context
// ended before, with a graceful stop whose grace is still running: the
// cause of a context cannot change once set, so HandleWithGrace learns
// of the loss from lease, and cuts the call under way at once. While the
// run lasts, lease must not end for any other reason.
func WithLease(ctx, lease context.Context) context.Context {
	return context.WithValue(ctx, leaseKey{}, lease)
}

// leaseOf is the lease context WithLease put in ctx; nil when there is
// none.
func leaseOf(ctx context.Context) context.Context {
	lease, _ := ctx.Value(leaseKey{}).(context.Context)
	return lease
}

// stoppingKey keys the run's Done channel in a handler's context.
type stoppingKey struct{}

// Stopping returns a channel that is closed once the run that made the
// Handle call with ctx was told to stop (its own context ended), while
// ctx itself may last a grace longer (HandleWithGrace); nil, which never
// closes, when the call was not made through HandleWithGrace.
func Stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(<-chan struct{})
	return ch
}

// stopped reports whether the run behind ctx was told to stop.
func stopped(ctx context.Context) bool {
	select {
	case <-Stopping(ctx):
		return true
	default:
		return ctx.Err() != nil
	}
}

// sleepUnlessStopped waits for d, or until ctx ends or its run is told to
// stop, and returns an error then.
func sleepUnlessStopped(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-Stopping(ctx):
		return context.Canceled
	case <-t.C:
		return nil
	}
}

// Grace is DeliverGraceSeconds as a duration, with its default.
func (c *SourceConfig) Grace() time.Duration {
	if c.DeliverGraceSeconds == nil {
		return DefaultDeliverGraceSeconds * time.Second
	}
	return time.Duration(*c.DeliverGraceSeconds) * time.Second
}
