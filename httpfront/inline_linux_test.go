//go:build linux

package httpfront

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// onAcceptingGoroutine reports whether the caller runs on an accept
// loop (Server.Inline: Serve's goroutine or a helper loop) rather than a
// pooled goroutine.
func onAcceptingGoroutine() bool {
	buf := make([]byte, 64<<10)
	n := runtime.Stack(buf, false)
	return bytes.Contains(buf[:n], []byte("httpfront.(*Server).acceptLoop(")) ||
		bytes.Contains(buf[:n], []byte("httpfront.(*Server).helpLoop("))
}

// inlineFront is a front with Inline claiming every request but those
// to /pooled; its handler answers where it ran, "inline" or "pooled",
// and counts the requests it served.
func inlineFront(t *testing.T, deferAccept bool) (*testFront, *atomic.Int64) {
	var served atomic.Int64
	tf := startFront(t, func(s *Server) {
		s.DeferAccept = deferAccept
		s.Inline = func(r *http.Request) bool { return r.URL.Path != "/pooled" }
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			where := "pooled"
			if onAcceptingGoroutine() {
				where = "inline"
			}
			if ServedInline(w) != (where == "inline") {
				where += " (ServedInline wrong)"
			}
			switch r.URL.Path {
			case "/panic":
				panic(http.ErrAbortHandler)
			case "/hijack":
				nc, rest, err := w.(*response).HijackBuffered()
				if err != nil {
					panic(err)
				}
				defer nc.Close()
				_, _ = fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n%s rest=%s", where, rest)
				return
			}
			_, _ = fmt.Fprintf(w, "%s %s %s", where, r.Method, r.URL.Path)
		})
	})
	// A connection made before Serve set TCP_DEFER_ACCEPT on the socket
	// may be accepted before its head: wait for Serve to be serving.
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, "GET /warm-up HTTP/1.1\r\nHost: h\r\n\r\n")
	readBody(t, br)
	served.Store(0)
	return tf, &served
}

// TestInline: with DeferAccept, a first request whose head comes whole
// and that Inline claims is served on the accepting goroutine; the
// connection's next requests, pipelined or not, and a first request
// Inline refuses (parsed there, served once) on a pooled one. A hijack
// (the upgrade) and a panic served inline leave the front accepting.
func TestInline(t *testing.T) {
	tf, served := inlineFront(t, true)
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n" }

	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, get("/a"))
	if _, got := readBody(t, br); got != "inline GET /a" {
		t.Fatalf("first request: %q", got)
	}
	_, _ = io.WriteString(nc, get("/b"))
	if _, got := readBody(t, br); got != "pooled GET /b" {
		t.Fatalf("second request: %q", got)
	}

	nc, br = dial(t, tf.addr)
	_, _ = io.WriteString(nc, get("/a")+get("/b")+get("/c"))
	for _, want := range []string{"inline GET /a", "pooled GET /b", "pooled GET /c"} {
		if _, got := readBody(t, br); got != want {
			t.Fatalf("pipelined: got %q, want %q", got, want)
		}
	}

	before := served.Load()
	nc, br = dial(t, tf.addr)
	_, _ = io.WriteString(nc, get("/pooled"))
	if _, got := readBody(t, br); got != "pooled GET /pooled" {
		t.Fatalf("refused by Inline: %q", got)
	}
	_, _ = io.WriteString(nc, get("/d"))
	if _, got := readBody(t, br); got != "pooled GET /d" {
		t.Fatalf("after one refused by Inline: %q", got)
	}
	if n := served.Load() - before; n != 2 {
		t.Fatalf("%d requests served for 2", n)
	}

	nc, br = dial(t, tf.addr)
	_, _ = io.WriteString(nc, "GET /hijack HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nframes")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v, %v", resp, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "inline rest=frames" {
		t.Fatalf("after the 101: %q", rest)
	}

	nc, br = dial(t, tf.addr)
	_, _ = io.WriteString(nc, get("/panic"))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("answer after a panic")
	}
	for head, want := range map[string]string{
		get("/e"): "inline GET /e", // after the panic
		// A request net/http serves (a chunked body) is handed to it.
		"POST /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n": "pooled POST /f",
	} {
		nc, br = dial(t, tf.addr)
		_, _ = io.WriteString(nc, head)
		if _, got := readBody(t, br); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestInlineNeedsDeferAccept: without DeferAccept every connection is
// served on a pooled goroutine, Inline or not.
func TestInlineNeedsDeferAccept(t *testing.T) {
	tf, _ := inlineFront(t, false)
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, got := readBody(t, br); got != "pooled GET /a" {
		t.Fatalf("got %q", got)
	}
}

// TestInlineLoops: with several accept loops, a handler served inline
// that does not return (it waits, against Inline's contract) leaves the
// listener accepting: the next connections are served inline on another
// loop, in parallel with it, and Shutdown stops every loop.
func TestInlineLoops(t *testing.T) {
	entered := make(chan string, 4)
	release := make(chan struct{})
	tf := startFront(t, func(s *Server) {
		s.DeferAccept = true
		s.InlineLoops = 3
		s.Inline = func(*http.Request) bool { return true }
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			where := "pooled"
			if onAcceptingGoroutine() && ServedInline(w) {
				where = "inline"
			}
			if r.URL.Path == "/block" {
				entered <- where
				<-release
			}
			_, _ = fmt.Fprintf(w, "%s %s", where, r.URL.Path)
		})
	})
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n" }
	// Serving: a first connection answered (TCP_DEFER_ACCEPT is set).
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, get("/warm-up"))
	readBody(t, br)

	var blocked []*bufio.Reader
	for i := range 2 { // two loops held in a handler
		nc, br := dial(t, tf.addr)
		_, _ = io.WriteString(nc, get("/block"))
		if where := <-entered; where != "inline" {
			t.Fatalf("blocked request %d served %s", i, where)
		}
		blocked = append(blocked, br)
	}
	for _, path := range []string{"/a", "/b", "/c"} { // the third loop
		nc, br := dial(t, tf.addr)
		_, _ = io.WriteString(nc, get(path))
		if _, got := readBody(t, br); got != "inline "+path {
			t.Fatalf("while two loops are held: %q", got)
		}
	}
	close(release)
	for _, br := range blocked {
		if _, got := readBody(t, br); got != "inline /block" {
			t.Fatalf("released: %q", got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tf.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-tf.done; err != http.ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
}
