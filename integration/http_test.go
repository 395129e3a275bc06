package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wsgate/wsgate/internal/testenv"
)

// backend is a loopback HTTP server answering with fn.
func backend(t testing.TB, fn http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return srv.URL
}

func newTestHTTP(t testing.TB, uri string, timeoutMillis int) Integration {
	t.Helper()
	in, err := New(Config{Type: "http", URI: uri, TimeoutMillis: timeoutMillis}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	return in
}

func TestHTTPRequest(t *testing.T) {
	type seen struct {
		method, contentType, requestID string
		body                           []byte
	}
	got := make(chan seen, 1)
	uri := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Get("Content-Type"), r.Header.Get("X-Amzn-RequestId"), b}
		_, _ = io.WriteString(w, `{"statusCode":200,"body":"pong"}`)
	})
	in := newTestHTTP(t, uri+"/events", 0)
	out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"body":"ping"}`), RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"statusCode":200,"body":"pong"}` {
		t.Fatalf("answer %s", out)
	}
	s := <-got
	if s.method != "POST" || s.contentType != "application/json" || s.requestID != "req-1" || string(s.body) != `{"body":"ping"}` {
		t.Fatalf("backend saw %+v", s)
	}
}

func TestHTTPAnswers(t *testing.T) {
	big := bytes.Repeat([]byte("x"), MaxPayload+1)
	tests := []struct {
		name    string
		status  int
		body    []byte
		want    string // answer; "" when an error is expected
		wantErr string
	}{
		{name: "proxy document", status: 200, body: []byte(`{"statusCode":201}`), want: `{"statusCode":201}`},
		{name: "empty 200", status: 200, want: `{"statusCode":200}`},
		{name: "empty 204", status: 204, want: `{"statusCode":200}`},
		{name: "4xx with proxy document", status: 401, body: []byte(`{"statusCode":401}`), want: `{"statusCode":401}`},
		{name: "4xx without proxy document", status: 404, body: []byte(`not found`), wantErr: "404"},
		{name: "4xx with other JSON", status: 400, body: []byte(`{"message":"bad"}`), wantErr: "400"},
		{name: "redirect not followed", status: 302, body: []byte(`moved`), wantErr: "302"},
		{name: "5xx", status: 502, body: []byte(`{"statusCode":200}`), wantErr: "502"},
		{name: "too large", status: 200, body: big, wantErr: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uri := backend(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
			})
			out, err := newTestHTTP(t, uri, 0).Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want an error containing %q", out, err, tc.wantErr)
				}
				var fe *FunctionError
				if errors.As(err, &fe) || errors.Is(err, ErrTimeout) {
					t.Fatalf("got %T %v, want a plain error", err, err)
				}
				return
			}
			if err != nil || string(out) != tc.want {
				t.Fatalf("got %q, %v; want %q", out, err, tc.want)
			}
		})
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	uri := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	_, err := newTestHTTP(t, uri, 50).Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = newTestHTTP(t, uri, 0).Invoke(ctx, &Invocation{Payload: []byte(`{}`)})
	if err == nil || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled: got %v, want a plain error", err)
	}
}

func TestHTTPUnreachable(t *testing.T) {
	addr := testenv.RefusedAddr(t)
	_, err := newTestHTTP(t, "http://"+addr+"/", 0).Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
	if err == nil || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want a plain error", err)
	}
}

// TestHTTPKeepAlive checks that concurrent invocations reuse pooled
// connections. A dial can lose the race to a connection freed meanwhile, so
// a few more than the callers may open; with net/http's default of 2 idle
// connections per host most of the 1,000 requests would dial.
func TestHTTPKeepAlive(t *testing.T) {
	const workers, each = 50, 20
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"statusCode":200}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	in := newTestHTTP(t, srv.URL, 0)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := opened.Load(); n > 2*workers {
		t.Fatalf("%d connections opened for %d concurrent callers", n, workers)
	}
}

func TestHTTPRejectsBadURI(t *testing.T) {
	for _, uri := range []string{"ftp://127.0.0.1/", "127.0.0.1:8080", "http://"} {
		if _, err := New(Config{Type: "http", URI: uri}, Env{}); err == nil {
			t.Errorf("uri %q accepted", uri)
		}
	}
}

func BenchmarkHTTPInvoke(b *testing.B) {
	uri := backend(b, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"statusCode":200,"body":"ok"}`)
	})
	in := newTestHTTP(b, uri, 0)
	inv := &Invocation{Payload: []byte(`{"requestContext":{"routeKey":"$default","eventType":"MESSAGE"},"body":"hello"}`)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := in.Invoke(context.Background(), inv); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
