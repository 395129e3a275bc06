package streams

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// A call under way when the run stops finishes within the grace, and its
// answer counts.
func TestHandleWithGraceLetsTheCallFinish(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	h := HandlerFunc(func(hctx context.Context, _ string, _ []Record) error {
		close(started)
		<-release
		select {
		case <-Stopping(hctx):
		default:
			return errors.New("Stopping not closed after the run's stop")
		}
		return hctx.Err() // nil: the call still had its grace
	})
	errc := make(chan error, 1)
	go func() { errc <- HandleWithGrace(ctx, time.Hour, h, "s", nil) }()
	<-started
	cancel()
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("HandleWithGrace = %v, want the call's nil", err)
	}
	if err := HandleWithGrace(ctx, time.Hour, h, "s", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("HandleWithGrace after the stop = %v, want context.Canceled without a call", err)
	}
}

// A call that outlasts the grace, or any call of a run that lost its
// lease, is cut.
func TestHandleWithGraceCuts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		cause error
		lease bool // the lease's context (WithLease) ends, not the run's
		want  error
	}{
		{"grace over", 10 * time.Millisecond, nil, false, context.Canceled},
		{"no grace", 0, nil, false, context.Canceled},
		// An hour's grace: only the cause can end the call.
		{"lease lost", time.Hour, fmt.Errorf("another node holds it now: %w", ErrLeaseLost), false, ErrLeaseLost},
		// A runner ends both contexts; the lease's may come first.
		{"lease lost, its context first", time.Hour, fmt.Errorf("could not renew before it could expire: %w", ErrLeaseLost), true, ErrLeaseLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lease, lose := context.WithCancelCause(context.Background())
			defer lose(nil)
			ctx, cancel := context.WithCancelCause(WithLease(context.Background(), lease))
			defer cancel(nil)
			if tc.lease {
				cancel = lose
			}
			started := make(chan struct{})
			h := HandlerFunc(func(hctx context.Context, _ string, _ []Record) error {
				close(started)
				<-hctx.Done()
				return context.Cause(hctx)
			})
			errc := make(chan error, 1)
			go func() { errc <- HandleWithGrace(ctx, tc.grace, h, "s", nil) }()
			<-started
			cancel(tc.cause)
			if err := <-errc; !errors.Is(err, tc.want) {
				t.Errorf("HandleWithGrace = %v, want %v", err, tc.want)
			}
		})
	}
}

// A MappingTarget whose invocation fails after the run was told to stop
// starts no retry: Handle returns, though its grace is an hour.
func TestMappingTargetNoRetryAfterStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	inv := &handlerIntegration{fn: func(call int, _ events.DynamoDBEvent) (any, error) {
		switch {
		case call == 1:
			cancel() // the stop comes while the first invocation runs
		case call >= 3:
			return nil, nil // a retry after the stop: end it, so the test fails instead of hanging
		}
		return nil, errors.New("backend down")
	}}
	m := NewMappingTarget(TargetConfig{}, inv, quietLogger())
	m.Backoff = Backoff{Min: time.Millisecond, Max: time.Millisecond}
	err := HandleWithGrace(ctx, time.Hour, m, "s", records(1, 1))
	if err == nil {
		t.Fatal("Handle = nil after a failed invocation")
	}
	if n := len(inv.invocations()); n != 1 {
		t.Errorf("%d invocations, want 1: a retry started after the stop", n)
	}
}

// A lease lost while a graceful stop's grace runs cuts the call at once:
// the run's context ended with the stop's cause, which cannot change; the
// lease context the run's context carries (WithLease) says so.
func TestHandleWithGraceLeaseLostDuringGrace(t *testing.T) {
	lease, lose := context.WithCancelCause(context.Background())
	ctx, stop := context.WithCancel(WithLease(context.Background(), lease))
	started, graceOn := make(chan struct{}), make(chan struct{})
	h := HandlerFunc(func(hctx context.Context, _ string, _ []Record) error {
		close(started)
		<-Stopping(hctx)
		if err := hctx.Err(); err != nil {
			return fmt.Errorf("the call was cut at the graceful stop: %w", err)
		}
		close(graceOn)
		<-hctx.Done()
		return context.Cause(hctx)
	})
	errc := make(chan error, 1)
	// An hour's grace: only the lease can end the call.
	go func() { errc <- HandleWithGrace(ctx, time.Hour, h, "s", nil) }()
	<-started
	stop() // graceful: the grace begins
	select {
	case <-graceOn:
	case err := <-errc:
		t.Fatalf("HandleWithGrace = %v before the lease was lost", err)
	}
	lose(fmt.Errorf("another node holds it now: %w", ErrLeaseLost))
	if err := <-errc; !errors.Is(err, ErrLeaseLost) {
		t.Errorf("HandleWithGrace = %v, want the lease's cause (ErrLeaseLost)", err)
	}
	if c := context.Cause(ctx); !errors.Is(c, context.Canceled) {
		t.Errorf("run's context cause %v, want the stop's", c)
	}
}
