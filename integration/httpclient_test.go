package integration

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readRequests reads HTTP requests from nc until it fails or each, called
// after each request's body, returns false.
func readRequests(nc net.Conn, each func() bool) {
	br := bufio.NewReader(nc)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if !each() {
			return
		}
	}
}

// rawBackend is a loopback server that reads each request and writes
// answer(n) (n counts the requests, from 0) as raw bytes; a connection is
// closed after an answer when closeAfter says so. It counts connections
// and requests.
type rawBackend struct {
	url     string
	conns   atomic.Int32
	open    atomic.Int32 // connections open now
	active  atomic.Int32 // requests being answered now
	maxBusy atomic.Int32 // most requests answered at once
}

func newRawBackend(t testing.TB, answer func(n int) string, closeAfter func(n int) bool, delay time.Duration) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{url: "http://" + ln.Addr().String() + "/events"}
	var reqs atomic.Int32
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			rb.conns.Add(1)
			rb.open.Add(1)
			wg.Go(func() {
				defer rb.open.Add(-1)
				defer nc.Close()
				readRequests(nc, func() bool {
					n := int(reqs.Add(1)) - 1
					now := rb.active.Add(1)
					for m := rb.maxBusy.Load(); now > m && !rb.maxBusy.CompareAndSwap(m, now); m = rb.maxBusy.Load() {
					}
					time.Sleep(delay)
					rb.active.Add(-1)
					_, err := io.WriteString(nc, answer(n))
					return err == nil && (closeAfter == nil || !closeAfter(n))
				})
			})
		}
	})
	return rb
}

func TestHTTPResponseFraming(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		want    string
		wantErr string
	}{
		{name: "content-length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"statusCode\":201}", want: `{"statusCode":201}`},
		{name: "chunked", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{\"sta\r\nd\r\ntusCode\":202}\r\n0\r\nX-Trailer: t\r\n\r\n", want: `{"statusCode":202}`},
		{name: "read to close", answer: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"statusCode\":203}", want: `{"statusCode":203}`},
		{name: "http/1.0", answer: "HTTP/1.0 200 OK\r\n\r\n{\"statusCode\":204}", want: `{"statusCode":204}`},
		{name: "100 continue first", answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"statusCode\":205}", want: `{"statusCode":205}`},
		{name: "lf only", answer: "HTTP/1.1 200 OK\nContent-Length: 18\n\n{\"statusCode\":206}", want: `{"statusCode":206}`},
		{name: "no reason phrase 5xx", answer: "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", wantErr: "backend answered 503"},
		{name: "5xx", answer: "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\nno", wantErr: "backend answered 502 Bad Gateway"},
		{name: "bad status line", answer: "HTTP/2 200\r\n\r\n", wantErr: "malformed HTTP response"},
		{name: "bad status code", answer: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: "malformed HTTP response"},
		{name: "differing lengths", answer: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", wantErr: "malformed HTTP response"},
		{name: "bad length", answer: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: "malformed HTTP response"},
		{name: "gzip", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", wantErr: "malformed HTTP response"},
		{name: "bad chunk", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", wantErr: "malformed HTTP response"},
		{name: "chunk over the limit", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n700000\r\n", wantErr: "larger than"},
		{name: "length over the limit", answer: "HTTP/1.1 200 OK\r\nContent-Length: 7000000\r\n\r\n", wantErr: "larger than"},
		{name: "header over 64 KB", answer: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", 70000) + "\r\n\r\n", wantErr: "header over 64 KB"},
		{name: "folded header", answer: "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", wantErr: "malformed HTTP response"},
		{name: "cut short", answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", wantErr: "unexpected EOF"},
		{name: "nothing", answer: "", wantErr: "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rb := newRawBackend(t, func(int) string { return tc.answer }, func(int) bool { return true }, 0)
			in := newTestHTTP(t, rb.url, 0)
			if in.(*httpIntegration).lean == nil {
				t.Fatal("not the lean client")
			}
			out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrTimeout) {
					t.Fatalf("got %q, %v; want an error containing %q", out, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(out) != tc.want {
				t.Fatalf("got %q, %v; want %q", out, err, tc.want)
			}
		})
	}
}

// TestHTTPReusesOnlyOpenConnections: a backend that closes each connection
// after answering (without saying so) leaves a closed connection in the
// pool; the next request must not be sent on it.
func TestHTTPReusesOnlyOpenConnections(t *testing.T) {
	rb := newRawBackend(t, func(int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" }, func(int) bool { return true }, 0)
	in := newTestHTTP(t, rb.url, 0)
	for i := range 20 {
		if _, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		// Let the backend's close arrive before the next request.
		deadline := time.Now().Add(10 * time.Second)
		for rb.open.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	if n := rb.conns.Load(); n != 20 {
		t.Fatalf("%d connections for 20 requests on connections closed after each", n)
	}
}

// TestHTTPCancelEndsRequestsUnderWay: requests waiting for a backend
// that never answers end when their context is done, not at their
// deadline: those in the context the client watches for all its requests
// (the first one it was given) and one in another context.
func TestHTTPCancelEndsRequestsUnderWay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var read atomic.Int32 // requests read, never answered
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() { readRequests(nc, func() bool { read.Add(1); return true }) })
		}
	})
	in := newTestHTTP(t, "http://"+ln.Addr().String()+"/events", 29000)
	waitRead := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for read.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("backend read %d requests, want %d", read.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	errs := make(chan error, 3)
	call := func(ctx context.Context, errs chan<- error) {
		_, err := in.Invoke(ctx, &Invocation{Payload: []byte(`{}`)})
		errs <- err
	}
	// Well before the requests' own 29 s deadline, after which they would
	// also fail (as cancelled: the context is done by then).
	ended := func() error {
		t.Helper()
		select {
		case err := <-errs:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("a request went on after its context was done")
			return nil
		}
	}
	watched, cancel := context.WithCancel(context.Background())
	for range 3 {
		go call(watched, errs)
	}
	waitRead(3)
	cancel()
	for range 3 {
		if err := ended(); !errors.Is(err, context.Canceled) {
			t.Fatalf("watched context done: got %v, want context.Canceled", err)
		}
	}
	other, cancelOther := context.WithCancel(context.Background())
	go call(other, errs)
	waitRead(4)
	cancelOther()
	if err := ended(); !errors.Is(err, context.Canceled) {
		t.Fatalf("another context done: got %v, want context.Canceled", err)
	}
}

// TestHTTPConnectionBound: with maxConnsPerHost 2, ten concurrent callers
// share two connections, and all are answered.
func TestHTTPConnectionBound(t *testing.T) {
	rb := newRawBackend(t, func(int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" }, nil, 5*time.Millisecond)
	in, err := New(Config{Type: "http", URI: rb.url, MaxConnsPerHost: 2}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 5 {
				if _, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := rb.maxBusy.Load(); n > 2 {
		t.Fatalf("%d requests answered at once over at most 2 connections", n)
	}
	// A connection freed while callers wait goes to one of them: the backend
	// does not see a new connection for every request past the bound. (A
	// waiter not yet ready when one is freed gets a freed slot and dials.)
	t.Logf("%d connections for 50 requests", rb.conns.Load())
	if n := rb.conns.Load(); n > 25 {
		t.Fatalf("%d connections for 50 requests over a bound of 2: freed connections were closed, not handed on", n)
	}
}

// TestHTTPBoundWaitTimesOut: a caller waiting for a connection past the
// bound times out like any request.
func TestHTTPBoundWaitTimesOut(t *testing.T) {
	rb := newRawBackend(t, func(int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" }, nil, 2*time.Second)
	in, err := New(Config{Type: "http", URI: rb.url, MaxConnsPerHost: 1, TimeoutMillis: 300}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
	}
}

func TestHTTPLeanOnlyForPlainHTTP(t *testing.T) {
	for uri, lean := range map[string]bool{
		"http://127.0.0.1:9/x":        true,
		"http://localhost/x?a=1":      true,
		"https://127.0.0.1:9/x":       false,
		"http://user:pw@127.0.0.1:9/": false,
	} {
		if got := newLeanClient(uri, 0) != nil; got != lean {
			t.Errorf("%s: lean client %v, want %v", uri, got, lean)
		}
	}
}
