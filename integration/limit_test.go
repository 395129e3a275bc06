package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestMaxInflight: an integration's own bound and the shared one each fail
// the call past them at once with ErrThrottled, without reaching the
// backend; a call with Wait gets the slot once one frees up.
func TestMaxInflight(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		<-release
		_, _ = w.Write([]byte(`{"statusCode":200}`))
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	shared := NewLimiter(3)
	a, err := New(Config{Type: "http", URI: srv.URL, MaxInflight: 2}, Env{Inflight: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Type: "http", URI: srv.URL}, Env{Inflight: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	results := make(chan error, 8)
	call := func(in Integration, wait bool) {
		_, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`), Wait: wait})
		results <- err
	}
	go call(a, false)
	go call(a, false)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := arrived.Load(); n != 2 {
			return fmt.Errorf("%d calls reached the backend, want 2", n)
		}
		return nil
	})
	// a's own bound (2) is full.
	if _, err := a.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("third call on a: %v, want ErrThrottled", err)
	}
	go call(b, false)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := shared.InUse(); n != 3 {
			return fmt.Errorf("%d shared slots in use, want 3", n)
		}
		return nil
	})
	// The shared bound (3) is full: b fails too, and a waiting call waits.
	if _, err := b.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fourth call on b: %v, want ErrThrottled", err)
	}
	go call(b, true)
	close(release)
	for range 4 {
		if err := <-results; err != nil {
			t.Fatalf("call: %v", err)
		}
	}
	if n := arrived.Load(); n != 4 {
		t.Fatalf("%d calls reached the backend, want 4", n)
	}
	if n := shared.InUse(); n != 0 {
		t.Fatalf("%d shared slots still taken", n)
	}
}

// TestMaxInflightWaitTimesOut: a waiting call gives up after the
// integration's timeout with ErrThrottled.
func TestMaxInflightWaitTimesOut(t *testing.T) {
	shared := NewLimiter(1)
	if !shared.TryAcquire() {
		t.Fatal("fresh limiter full")
	}
	in, err := New(Config{Type: "mock", TimeoutMillis: 50}, Env{Inflight: shared})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`), Wait: true}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("got %v, want ErrThrottled", err)
	}
}
