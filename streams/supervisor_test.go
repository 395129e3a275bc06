package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// scriptedSource is a Source whose runs follow a script: run i (from 0)
// calls runs[i], or, past the script, delivers recs until ctx ends. The
// database sources are tested against real databases in their packages;
// this one lets the supervisor's policy be driven exactly.
type scriptedSource struct {
	runs []func(ctx context.Context, h Handler) error
	recs []Record

	mu    sync.Mutex
	calls int
}

func (s *scriptedSource) Run(ctx context.Context, h Handler) error {
	s.mu.Lock()
	i := s.calls
	s.calls++
	s.mu.Unlock()
	if i < len(s.runs) {
		return s.runs[i](ctx, h)
	}
	return deliverUntilDone(ctx, h, s.recs)
}

// deliverUntilDone offers recs until h accepts them, as a source does,
// then waits for ctx.
func deliverUntilDone(ctx context.Context, h Handler, recs []Record) error {
	for h.Handle(ctx, "shard-1", recs) != nil {
		if Sleep(ctx, time.Millisecond) != nil {
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

func (s *scriptedSource) Stats() Stats { return Stats{} }

func (s *scriptedSource) runCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func fail(err error) func(context.Context, Handler) error {
	return func(context.Context, Handler) error { return err }
}

// accepting is a Handler that keeps what it accepts and refuses while
// refuse is set.
type accepting struct {
	mu     sync.Mutex
	refuse bool
	got    []Record
}

func (a *accepting) Handle(_ context.Context, _ string, recs []Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse {
		return errors.New("handler refuses")
	}
	a.got = append(a.got, recs...)
	return nil
}

func (a *accepting) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.got)
}

// supervise starts a Supervisor with a fast backoff and a log buffer, and
// returns a function that stops it and returns what its Run returned.
func supervise(t *testing.T, src Source, h Handler, healthy time.Duration) (*Supervisor, *testenv.Buffer, func() error) {
	t.Helper()
	logs := &testenv.Buffer{}
	sup := NewSupervisor(src, h, slog.New(slog.NewTextHandler(logs, nil)))
	sup.Backoff = Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}
	sup.HealthyAfter = healthy
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return sup, logs, stop
}

func TestSupervisorRestartsAfterTransientFailure(t *testing.T) {
	src := &scriptedSource{
		runs: []func(context.Context, Handler) error{fail(errors.New("database is locked")), fail(errors.New("database is locked"))},
		recs: records(1, 2),
	}
	h := &accepting{}
	sup, logs, stop := supervise(t, src, h, time.Hour)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := h.count(); n != 2 {
			return fmt.Errorf("handler has %d records, want 2", n)
		}
		return nil
	})
	st := sup.Status()
	if st.State != StateRunning || st.Restarts != 2 || !strings.Contains(st.Error, "database is locked") {
		t.Errorf("Status = %+v, want running after 2 restarts, with the last error", st)
	}
	if got := strings.Count(logs.String(), "level=WARN msg=\"stream source failed; restarting it\""); got != 2 {
		t.Errorf("%d restart warnings, want 2:\n%s", got, logs)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v after cancel, want nil", err)
	}
	if st := sup.Status(); st.State != StateStopped {
		t.Errorf("State after cancel = %s, want stopped", st.State)
	}
}

func TestSupervisorDoesNotRestartPermanentFailure(t *testing.T) {
	cause := errors.New("checkpoint is corrupt")
	src := &scriptedSource{runs: []func(context.Context, Handler) error{fail(Permanent(cause))}}
	sup, logs, stop := supervise(t, src, &accepting{}, time.Hour)
	testenv.Eventually(t, 10*time.Second, func() error {
		if st := sup.Status(); st.State != StateFailed {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
	if err := stop(); !errors.Is(err, cause) || !IsPermanent(err) {
		t.Errorf("Run = %v, want the permanent error", err)
	}
	if n := src.runCount(); n != 1 {
		t.Errorf("source ran %d times, want 1: a permanent failure is not restarted", n)
	}
	st := sup.Status()
	if st.State != StateFailed || st.Error != cause.Error() || st.Restarts != 0 {
		t.Errorf("Status = %+v, want failed with the cause", st)
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="stream failed and will not be restarted`) {
		t.Errorf("no ERROR log for the permanent failure:\n%s", logs)
	}
}

// TestSupervisorBackoffResets: consecutive quick failures back off further
// each time; failures after a healthy run start from the minimum again.
func TestSupervisorBackoffResets(t *testing.T) {
	quick := fail(errors.New("refused"))
	for _, tt := range []struct {
		name    string
		healthy time.Duration
		want    string
	}{
		{"consecutive failures", time.Hour, "1,2,3"},
		{"each run healthy", time.Nanosecond, "1,1,1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := &scriptedSource{runs: []func(context.Context, Handler) error{quick, quick, quick}}
			h := &accepting{}
			_, logs, _ := supervise(t, src, h, tt.healthy)
			testenv.Eventually(t, 10*time.Second, func() error {
				if src.runCount() < 4 {
					return fmt.Errorf("%d runs", src.runCount())
				}
				return nil
			})
			var got []string
			for _, m := range regexp.MustCompile(`failures=(\d+)`).FindAllStringSubmatch(logs.String(), -1) {
				got = append(got, m[1])
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("failure counts %v, want %s", got, tt.want)
			}
		})
	}
}

// TestSupervisorLagGrowsWhileHandlerFails: the lag is the age of the
// oldest change not accepted, so it grows while the handler refuses and
// drops to zero once the handler accepts.
func TestSupervisorLagGrowsWhileHandlerFails(t *testing.T) {
	recs := records(1, 2)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	recs[0].Change.ApproximateCreationDateTime.Time = old
	h := &accepting{refuse: true}
	sup, _, _ := supervise(t, &scriptedSource{recs: recs}, h, time.Hour)
	var first time.Duration
	testenv.Eventually(t, 10*time.Second, func() error {
		if first = sup.Status().Lag; first < time.Hour {
			return fmt.Errorf("lag %v, want at least the hour the refused record waits", first)
		}
		return nil
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		if lag := sup.Status().Lag; lag <= first {
			return fmt.Errorf("lag %v, not grown past %v", lag, first)
		}
		return nil
	})
	h.mu.Lock()
	h.refuse = false
	h.mu.Unlock()
	testenv.Eventually(t, 10*time.Second, func() error {
		if st := sup.Status(); st.Lag != 0 || h.count() != 2 {
			return fmt.Errorf("lag %v with %d records accepted, want 0 and 2", st.Lag, h.count())
		}
		return nil
	})
}

// pendingSource reports a pending change through Stats, as a source
// gathering a batch does.
type pendingSource struct {
	scriptedSource
	at time.Time
}

func (p *pendingSource) Stats() Stats { return Stats{OldestPending: p.at} }

func TestSupervisorLagFromSourceStats(t *testing.T) {
	src := &pendingSource{at: time.Now().Add(-time.Minute)}
	sup := NewSupervisor(src, &accepting{}, nil)
	if lag := sup.Status().Lag; lag < time.Minute {
		t.Errorf("Lag = %v, want the age of the source's oldest pending change (>= 1m)", lag)
	}
	if st := sup.Status(); st.State != StateStopped {
		t.Errorf("State before Run = %s, want stopped", st.State)
	}
}

func TestSupervisorKeepsBatchShape(t *testing.T) {
	m := NewMappingTarget(TargetConfig{BatchSize: 7, MaximumBatchingWindowInSeconds: 2}, nil, nil)
	sup := NewSupervisor(&scriptedSource{}, m, nil)
	if size, window := BatchOptions(sup.h); size != 7 || window != 2*time.Second {
		t.Errorf("BatchOptions through the supervisor = %d, %v; want the target's 7, 2s", size, window)
	}
}

func TestBackoffJittered(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n <= 6; n++ {
		d, full := b.Jittered(n), b.Delay(n)
		if d < full/2 || d > full {
			t.Errorf("Jittered(%d) = %v, want within [%v, %v]", n, d, full/2, full)
		}
	}
}

// TestSupervisorCountsStops: a run stopped by its context is counted by
// the cause's StopReason, with the cause itself, and a call to the
// handler that the stop cut (the grace ran out, here 0) is counted as
// Cut; a call that ends within its grace is not.
func TestSupervisorCountsStops(t *testing.T) {
	entered := make(chan struct{}, 1)
	blocking := HandlerFunc(func(ctx context.Context, _ string, _ []Record) error {
		entered <- struct{}{}
		<-ctx.Done()
		return context.Cause(ctx)
	})
	// Each run offers one batch through HandleWithGrace, as every source
	// does, and returns once ctx ended.
	// Supervisor.Run is called again for each lease term in a cluster;
	// the source's script goes on.
	src := &scriptedSource{}
	run := func(grace time.Duration) func(ctx context.Context, h Handler) error {
		return func(ctx context.Context, h Handler) error {
			_ = HandleWithGrace(ctx, grace, h, "shard-1", records(1, 1))
			<-ctx.Done()
			return nil
		}
	}
	src.runs = []func(context.Context, Handler) error{run(0), run(time.Hour)}
	s := NewSupervisor(src, blocking, nil)
	for _, tc := range []struct {
		cause  error
		reason string
		cut    int64 // in all, so far
	}{
		{fmt.Errorf("renewal refused: %w", ErrLeaseLost), StopLeaseLost, 1}, // grace 0: cut
		{ErrReload, StopReload, 2}, // lease lost during the hour's grace: cut (2 in all)
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		lease, lose := context.WithCancelCause(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(WithLease(ctx, lease)) }()
		<-entered
		cancel(tc.cause)
		if tc.reason == StopReload {
			lose(fmt.Errorf("lost during the grace: %w", ErrLeaseLost))
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		lose(nil)
		st := s.Status()
		if st.Stops[tc.reason] != 1 || st.StopCause != tc.cause.Error() {
			t.Fatalf("after a stop for %v: stops %v, cause %q", tc.cause, st.Stops, st.StopCause)
		}
		if st.Cut != tc.cut {
			t.Fatalf("after a stop for %v: %d calls cut, want %d", tc.cause, st.Cut, tc.cut)
		}
	}
	if st := s.Status(); st.Stops[StopShutdown] != 0 || st.Stops[StopOther] != 0 || len(st.Stops) != 2 {
		t.Fatalf("stops %v, want one lease_lost and one reload", st.Stops)
	}
	for cause, want := range map[error]string{
		ErrShutdown: StopShutdown, fmt.Errorf("x: %w", ErrShutdown): StopShutdown,
		ErrReload: StopReload, ErrLeaseLost: StopLeaseLost, context.Canceled: StopOther,
	} {
		if got := StopReason(cause); got != want {
			t.Errorf("StopReason(%v) = %q, want %q", cause, got, want)
		}
	}
}
