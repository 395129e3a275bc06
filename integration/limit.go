package integration

import (
	"context"
	"errors"
	"time"
)

// ErrThrottled is matched (errors.Is) by the error Invoke returns when a
// bound on invocations in flight was full and the backend was not called.
// API Gateway answers a throttled request with 429 Too Many Requests.
var ErrThrottled = errors.New("too many invocations in flight")

// Limiter bounds how many invocations run at once. One Limiter may be
// shared by many integrations (the gateway-wide bound, Env.Inflight) or
// belong to one (Config.MaxInflight). It is safe for concurrent use.
type Limiter struct {
	slots chan struct{}
}

// NewLimiter returns a limiter of n slots; n must be at least 1.
func NewLimiter(n int) *Limiter {
	return &Limiter{slots: make(chan struct{}, n)}
}

// TryAcquire takes a slot if one is free.
func (l *Limiter) TryAcquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// Acquire waits for a slot until ctx is done.
func (l *Limiter) Acquire(ctx context.Context) bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case l.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// Release gives back a slot taken by TryAcquire or Acquire.
func (l *Limiter) Release() { <-l.slots }

// InUse is the number of slots taken.
func (l *Limiter) InUse() int { return len(l.slots) }

// Cap is the number of slots.
func (l *Limiter) Cap() int { return cap(l.slots) }

// limited is an integration behind one or two limiters: the shared one
// (gateway-wide) and its own. Invoke takes a slot of each before calling the
// backend and gives them back when it returns.
type limited struct {
	Integration
	limits  []*Limiter
	timeout time.Duration // how long an Invocation with Wait may wait for slots
}

var _ Integration = (*limited)(nil)

// withLimits puts in behind the limiters that are not nil; with none it
// returns in unchanged.
func withLimits(in Integration, timeout time.Duration, ls ...*Limiter) Integration {
	l := &limited{Integration: in, timeout: timeout}
	for _, x := range ls {
		if x != nil {
			l.limits = append(l.limits, x)
		}
	}
	if len(l.limits) == 0 {
		return in
	}
	return l
}

// Invoke fails at once with ErrThrottled when a limiter is full, or, for an
// Invocation with Wait, once no slot freed up within the integration's
// timeout (or ctx's deadline).
func (l *limited) Invoke(ctx context.Context, inv *Invocation) ([]byte, error) {
	wctx := ctx
	if inv.Wait {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, deadlineOf(ctx, l.timeout))
		defer cancel()
	}
	for i, x := range l.limits {
		ok := false
		if inv.Wait {
			ok = x.Acquire(wctx)
		} else {
			ok = x.TryAcquire()
		}
		if !ok {
			for _, y := range l.limits[:i] {
				y.Release()
			}
			if ctx.Err() != nil {
				return nil, ctxError(ctx)
			}
			return nil, ErrThrottled
		}
	}
	defer func() {
		for _, x := range l.limits {
			x.Release()
		}
	}()
	return l.Integration.Invoke(ctx, inv)
}
