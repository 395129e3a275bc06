package streamtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// Backend is the backend of an http stream target on a loopback port: it
// notes the records of every batch POSTed to it (the DynamoDBEvent a
// MappingTarget sends) and answers 200, or, after Hold, holds its answer
// to the next batch until the test releases it.
type Backend struct {
	URL string

	mu       sync.Mutex
	received []string // a key of each record received, in order, cut calls included
	hold     *Held    // the hold for the next batch, nil: answer at once
}

// Held is a batch whose answer a Backend holds.
type Held struct {
	arrived chan []string // the batch's record keys, once it arrived
	release chan struct{}
	cut     chan struct{} // closed when the caller went away before the answer
	once    sync.Once
}

// Arrived waits up to timeout for the held batch and returns its records'
// keys.
func (h *Held) Arrived(t testing.TB, timeout time.Duration) []string {
	t.Helper()
	select {
	case keys := <-h.arrived:
		return keys
	case <-time.After(timeout):
		t.Fatalf("no batch reached the backend within %v", timeout)
		return nil
	}
}

// Release lets the backend answer 200 to the held batch.
func (h *Held) Release() { h.once.Do(func() { close(h.release) }) }

// Cut is closed when the caller of the held batch gave up (its context
// ended) before it was released.
func (h *Held) Cut() <-chan struct{} { return h.cut }

// NewBackend starts a Backend, stopped at the end of the test. key names a
// record in Received (its primary key, say); nil: its eventID.
func NewBackend(t testing.TB, key func(*streams.Record) string) *Backend {
	t.Helper()
	if key == nil {
		key = func(r *streams.Record) string { return r.EventID }
	}
	b := &Backend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var ev events.DynamoDBEvent
		if err == nil {
			err = json.Unmarshal(body, &ev)
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("bad batch: %v", err), http.StatusBadRequest)
			return
		}
		keys := make([]string, len(ev.Records))
		for i := range ev.Records {
			keys[i] = key(&ev.Records[i])
		}
		b.mu.Lock()
		b.received = append(b.received, keys...)
		h := b.hold
		b.hold = nil
		b.mu.Unlock()
		if h != nil {
			h.arrived <- keys
			select {
			case <-h.release:
			case <-r.Context().Done():
				close(h.cut)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL + "/batch"
	return b
}

// Hold makes the backend hold its answer to the next batch. Release it
// before the test ends, or let its caller give up.
func (b *Backend) Hold(t testing.TB) *Held {
	h := &Held{arrived: make(chan []string, 1), release: make(chan struct{}), cut: make(chan struct{})}
	b.mu.Lock()
	b.hold = h
	b.mu.Unlock()
	t.Cleanup(h.Release)
	return h
}

// Received is the key of every record the backend was sent, in order,
// including batches whose caller gave up.
func (b *Backend) Received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.received)
}

// Count is how often the backend was sent the record named key.
func (b *Backend) Count(key string) int {
	n := 0
	for _, k := range b.Received() {
		if k == key {
			n++
		}
	}
	return n
}

// WaitFor waits up to timeout until the backend was sent the record named
// key.
func (b *Backend) WaitFor(t testing.TB, timeout time.Duration, key string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if b.Count(key) == 0 {
			return fmt.Errorf("record %q not received yet (have %q)", key, b.Received())
		}
		return nil
	})
}

// Target is a MappingTarget that POSTs batches to the backend, with cfg's
// batch shape (BatchSize and the like; its Integration is replaced). Its
// integration is closed at the end of the test.
func (b *Backend) Target(t testing.TB, cfg streams.TargetConfig) *streams.MappingTarget {
	t.Helper()
	cfg.Integration = &integration.Config{Type: "http", URI: b.URL, TimeoutMillis: 60000}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	inv, err := integration.New(*cfg.Integration, integration.Env{Region: "us-east-1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	return streams.NewMappingTarget(cfg, inv, log)
}

// StopDuringCall runs a stream's runs against b and checks what a stop
// during a call to the target does. start starts a run and returns its
// cancel (of the run's context) and a channel closed once Run returned;
// write writes a record the source captures and returns its key.
//
// The first run's call carrying record one is held by the backend; the
// run's context is cancelled, and only then is the call answered (finish
// true) or left unanswered until the run's grace cuts it (finish false).
// A second run then gets record two. With finish, each record must reach
// the backend exactly once; without, record one twice (the cut call, then
// the next run's: at least once) and record two once.
func StopDuringCall(t *testing.T, b *Backend, timeout time.Duration, finish bool, start func() (cancel func(), done <-chan struct{}), write func(n int) string) {
	t.Helper()
	cancel, done := start()
	held := b.Hold(t)
	one := write(1)
	if keys := held.Arrived(t, timeout); !slices.Contains(keys, one) {
		t.Fatalf("held batch %q does not hold record %q", keys, one)
	}
	cancel() // the stop begins while the backend holds the batch
	if finish {
		select {
		case <-done:
			t.Fatal("the run stopped while its call to the target was held: the call was not given its grace")
		default:
		}
		held.Release()
	}
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("the run did not stop within %v", timeout)
	}
	if !finish {
		select {
		case <-held.Cut():
		case <-time.After(timeout):
			t.Fatal("the run stopped but its call to the target was not cut")
		}
	}
	cancel, done = start()
	defer func() { cancel(); <-done }()
	two := write(2)
	b.WaitFor(t, timeout, two)
	wantOne := 1
	if !finish {
		wantOne = 2
	}
	if n := b.Count(one); n != wantOne {
		t.Errorf("record %q reached the backend %d times, want %d (received %q)", one, n, wantOne, b.Received())
	}
	if n := b.Count(two); n != 1 {
		t.Errorf("record %q reached the backend %d times, want 1 (received %q)", two, n, b.Received())
	}
}

// ByKey names a record by its key attribute attr (an S or N value), for
// NewBackend.
func ByKey(attr string) func(*streams.Record) string {
	return func(r *streams.Record) string {
		av, ok := r.Change.Keys[attr]
		switch {
		case !ok:
			return "?" + r.EventID
		case av.DataType() == events.DataTypeString:
			return av.String()
		case av.DataType() == events.DataTypeNumber:
			return av.Number()
		}
		return "?" + r.EventID
	}
}

// Run runs a source's Run (run) in the background for StopDuringCall: it
// returns the cancel of its context and a channel closed once it returned;
// an error from it fails t.
func Run(t *testing.T, run func(ctx context.Context) error) (cancel func(), done <-chan struct{}) {
	ctx, stop := context.WithCancel(context.Background())
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		if err := run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	return stop, ch
}
