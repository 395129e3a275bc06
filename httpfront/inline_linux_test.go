//go:build linux

package httpfront

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// onAcceptingGoroutine reports whether the caller runs on Serve's
// goroutine (Server.Inline) rather than a pooled one.
func onAcceptingGoroutine() bool {
	buf := make([]byte, 64<<10)
	n := runtime.Stack(buf, false)
	return bytes.Contains(buf[:n], []byte("httpfront.(*Server).Serve("))
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

// acceptQueue is how many connections wait in the listening socket fd's
// accept queue (TCP_INFO's tcpi_unacked of a listener).
func acceptQueue(t *testing.T, fd uintptr) uint32 {
	var info [232]byte
	n := uint32(len(info))
	if _, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0); e != 0 {
		t.Fatal(e)
	}
	return *(*uint32)(unsafe.Pointer(&info[24]))
}

// TestInlineLookahead: a connection is served inline when no other is
// queued behind it, or when as many connections as there are other Ps
// are served on pooled goroutines for that reason already: of a burst
// of two on two Ps, the first goes to a pooled goroutine and the second
// is served inline.
func TestInlineLookahead(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one P: every connection is served inline")
	}
	hold := make(chan struct{})
	var held atomic.Bool
	tf := startFront(t, func(s *Server) {
		s.DeferAccept = true
		s.Inline = func(*http.Request) bool { return true }
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			where := "pooled"
			if onAcceptingGoroutine() {
				where = "inline"
			}
			if r.URL.Path == "/hold" && held.CompareAndSwap(false, true) {
				<-hold
			}
			_, _ = fmt.Fprintf(w, "%s %s", where, r.URL.Path)
		})
	})
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" }
	nc, br := dial(t, tf.addr) // Serve is serving once this is answered
	_, _ = io.WriteString(nc, get("/warm-up"))
	readBody(t, br)

	nc1, br1 := dial(t, tf.addr)
	_, _ = io.WriteString(nc1, get("/hold")) // holds the accept loop
	for !held.Load() {
		time.Sleep(time.Millisecond)
	}
	nc2, br2 := dial(t, tf.addr)
	_, _ = io.WriteString(nc2, get("/second"))
	nc3, br3 := dial(t, tf.addr)
	_, _ = io.WriteString(nc3, get("/third"))
	var fd uintptr
	_ = tf.accepter.rc.Control(func(f uintptr) { fd = f })
	for acceptQueue(t, fd) < 2 {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	if _, got := readBody(t, br1); got != "inline /hold" {
		t.Errorf("held: %q", got)
	}
	if _, got := readBody(t, br2); got != "pooled /second" {
		t.Errorf("second, queued behind another: %q", got)
	}
	if _, got := readBody(t, br3); got != "inline /third" {
		t.Errorf("third, the last queued: %q", got)
	}
	for deadline := time.Now().Add(10 * time.Second); tf.turns.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d lookahead turns still counted", tf.turns.Load())
		}
	}
}
