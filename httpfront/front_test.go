package httpfront

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echo answers who served the request (front or net/http) and what it
// read: "front POST /p 5 hello".
func echo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/hijack" {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer nc.Close()
		rest := make([]byte, brw.Reader.Buffered())
		_, _ = io.ReadFull(brw.Reader, rest)
		_, _ = fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nrest=%s", rest)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := io.ReadAll(r.Body)
	who := "net/http"
	if _, ok := w.(*response); ok {
		who = "front"
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = fmt.Fprintf(w, "%s %s %s %d %s", who, r.Method, r.URL.Path, r.ContentLength, body)
}

type testFront struct {
	*Server
	addr string
	done chan error
}

func startFront(t testing.TB, mod func(*Server)) *testFront {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Fallback: &http.Server{
		Handler:           http.HandlerFunc(echo),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}}
	if mod != nil {
		mod(s)
	}
	tf := &testFront{Server: s, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { tf.done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return tf
}

func dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, bufio.NewReader(nc)
}

func readBody(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	for err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

// TestKeepAlivePipelined: three POSTs written at once on one connection
// are answered in order by the front, each with its length; the
// connection stays open between them.
func TestKeepAlivePipelined(t *testing.T) {
	tf := startFront(t, nil)
	nc, br := dial(t, tf.addr)
	if _, err := io.WriteString(nc, post("/a", "one")+post("/b", "")+post("/c", strings.Repeat("x", 9000))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"front POST /a 3 one", "front POST /b 0 ", "front POST /c 9000 " + strings.Repeat("x", 9000)} {
		resp, got := readBody(t, br)
		if got != want || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("got %d %q (close %v), want %q", resp.StatusCode, clip(got), resp.Close, clip(want))
		}
		if resp.Header.Get("Date") == "" || resp.ContentLength != int64(len(want)) {
			t.Fatalf("headers %v, length %d", resp.Header, resp.ContentLength)
		}
	}
	// And once more after the connection went idle.
	_, _ = io.WriteString(nc, post("/d", "again"))
	if _, got := readBody(t, br); got != "front POST /d 5 again" {
		t.Fatalf("after idle: %q", got)
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// TestConnectionClose: Connection: close is honoured and answered.
func TestConnectionClose(t *testing.T) {
	tf := startFront(t, nil)
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, "DELETE /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	resp, got := readBody(t, br)
	if got != "front DELETE /x 0 " || !resp.Close {
		t.Fatalf("got %q, close %v", got, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close read %v, want EOF", err)
	}
}

// TestHandOff: requests outside the front's subset reach the same handler
// through net/http, which reads (or refuses) them as it always did, on
// the first request of a connection and after keep-alive requests.
func TestHandOff(t *testing.T) {
	tf := startFront(t, nil)
	for _, tc := range []struct {
		name, req string
		status    int
		body      string // prefix
	}{
		{"HTTP/1.0", "POST /a HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 200, "net/http POST /a 2 hi"},
		{"chunked", "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200, "net/http POST /a -1 hi"},
		{"expect", "POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200, "net/http POST /a 2 hi"},
		{"PUT", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 200, "net/http PUT /a 2 hi"},
		{"no host", "GET /a HTTP/1.1\r\n\r\n", 400, "400 Bad Request"},
		{"two hosts", "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "400 Bad Request"},
		{"bad name", "GET /a HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400, "400 Bad Request"},
		{"oversized", "GET /a HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, "431 Request Header Fields Too Large"},
		{"bare LF", "GET /a HTTP/1.1\nHost: a\n\n", 200, "net/http GET /a 0 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, first := range []bool{true, false} {
				nc, br := dial(t, tf.addr)
				if !first {
					_, _ = io.WriteString(nc, post("/k", "k"))
					if _, got := readBody(t, br); got != "front POST /k 1 k" {
						t.Fatalf("keep-alive request: %q", got)
					}
				}
				if _, err := io.WriteString(nc, tc.req); err != nil {
					t.Fatal(err)
				}
				resp, got := readBody(t, br)
				if resp.StatusCode != tc.status || !strings.HasPrefix(got, tc.body) {
					t.Fatalf("first %v: got %d %q, want %d %q", first, resp.StatusCode, clip(got), tc.status, tc.body)
				}
			}
		})
	}
}

// TestServesHandsOff: a request Serves does not claim goes to net/http.
func TestServesHandsOff(t *testing.T) {
	tf := startFront(t, func(s *Server) { s.Serves = func(r *http.Request) bool { return r.URL.Path != "/page" } })
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, post("/x", "1")+"GET /page HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, got := readBody(t, br); got != "front POST /x 1 1" {
		t.Fatalf("got %q", got)
	}
	if _, got := readBody(t, br); got != "net/http GET /page 0 " {
		t.Fatalf("got %q", got)
	}
}

// TestHijack: the hijacker gets the socket and the bytes sent right
// behind the request head.
func TestHijack(t *testing.T) {
	tf := startFront(t, nil)
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, "GET /hijack HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nframes")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v, %v", resp, err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "rest=frames" {
		t.Fatalf("after the 101: %q", rest)
	}
}

// TestTLSSniff: a TLS client on the same port is served by net/http over
// TLS; a plaintext one by the front.
func TestTLSSniff(t *testing.T) {
	ref := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate and client
	defer ref.Close()
	tf := startFront(t, func(s *Server) { s.TLS = ref.TLS.Clone() })
	client := ref.Client()
	resp, err := client.Post("https://"+tf.addr+"/t", "text/plain", strings.NewReader("sec"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "net/http POST /t 3 sec" || resp.TLS == nil {
		t.Fatalf("over TLS: %q", b)
	}
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, post("/p", "plain"))
	if _, got := readBody(t, br); got != "front POST /p 5 plain" {
		t.Fatalf("plaintext: %q", got)
	}
}

// TestSlowloris: a client that sends its head a byte at a time and stops
// is closed at ReadHeaderTimeout, with no answer, and does not hold up
// another client meanwhile; one that stays silent after a keep-alive
// request is closed at IdleTimeout.
func TestSlowloris(t *testing.T) {
	tf := startFront(t, func(s *Server) {
		s.Fallback.ReadHeaderTimeout = 300 * time.Millisecond
		s.Fallback.IdleTimeout = 300 * time.Millisecond
	})
	slow, slowBR := dial(t, tf.addr)
	for _, b := range []byte("POST /a HTTP/1.1\r\nHost: h\r\nContent-") {
		// A write may fail: a test goroutine held up past the header
		// timeout between two bytes (a loaded machine) finds the slow
		// connection closed already, which is what is checked below.
		if _, err := slow.Write([]byte{b}); err != nil {
			break
		}
	}
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, post("/b", "b"))
	if _, got := readBody(t, br); got != "front POST /b 1 b" {
		t.Fatalf("other client: %q", got)
	}
	if b, err := slowBR.ReadByte(); err == nil {
		t.Fatalf("slow client got %q, want the connection closed", b)
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the slow client was still open after 10 s")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("idle keep-alive connection got a byte")
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the idle keep-alive connection was still open after 10 s")
	}
}

// TestStalledBody: a body that stops arriving is cut off at the deadline
// the handler set (http.ResponseController, or SetBodyTimeout, whose
// clock starts at the body's first read of the socket), and the
// connection closes.
func TestStalledBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(http.ResponseWriter)
	}{
		{"SetReadDeadline", func(w http.ResponseWriter) {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}},
		{"SetBodyTimeout", func(w http.ResponseWriter) {
			if !SetBodyTimeout(w, 200*time.Millisecond) {
				t.Error("SetBodyTimeout refused the front's writer")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := startFront(t, func(s *Server) {
				s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					tc.set(w)
					if _, err := io.ReadAll(r.Body); err != nil {
						http.Error(w, "stalled", http.StatusRequestTimeout)
						return
					}
					w.WriteHeader(200)
				})
			})
			nc, br := dial(t, tf.addr)
			_, _ = io.WriteString(nc, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
			resp, _ := readBody(t, br)
			if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
				t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
			}
		})
	}
}

// TestSetBodyTimeoutOthers: SetBodyTimeout takes the front's writer
// through a wrapping one, and leaves a writer not the front's, and a
// timeout that is not positive, to the caller.
func TestSetBodyTimeoutOthers(t *testing.T) {
	if SetBodyTimeout(httptest.NewRecorder(), time.Second) {
		t.Error("a recorder took it")
	}
	if SetBodyTimeout(wrapped{httptest.NewRecorder()}, time.Second) {
		t.Error("a writer wrapping a recorder took it")
	}
	c := &conn{}
	if !SetBodyTimeout(wrapped{&response{c: c}}, time.Second) || c.readTimeout != time.Second || !c.readDeadlineSet {
		t.Errorf("through a wrapping writer: timeout %v, set %v", c.readTimeout, c.readDeadlineSet)
	}
	if SetBodyTimeout(&response{c: &conn{}}, 0) {
		t.Error("a zero timeout was taken")
	}
}

// TestShutdownIdleKeepAlive: Shutdown closes idle keep-alive connections
// and returns without waiting for them; Serve returns ErrServerClosed.
func TestShutdownIdleKeepAlive(t *testing.T) {
	tf := startFront(t, nil)
	var brs []*bufio.Reader
	for range 3 {
		nc, br := dial(t, tf.addr)
		_, _ = io.WriteString(nc, post("/a", "x"))
		if _, got := readBody(t, br); got != "front POST /a 1 x" {
			t.Fatal(got)
		}
		brs = append(brs, br)
	}
	// And one that has not sent its first request yet.
	silent, silentBR := dial(t, tf.addr)
	_, _ = io.WriteString(silent, "GET / HT")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tf.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, br := range brs {
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection after Shutdown: %v, want EOF", err)
		}
	}
	// Closed, or reset when it was still in the listener's backlog.
	if _, err := silentBR.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("silent connection after Shutdown: %v", err)
	}
	if err := <-tf.done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := net.Dial("tcp", tf.addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// TestShutdownWaitsForRequest: a request in progress at Shutdown gets its
// answer, with Connection: close.
func TestShutdownWaitsForRequest(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	tf := startFront(t, func(s *Server) {
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		})
	})
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	shut := shutdownAsync(tf)
	close(release)
	resp, got := readBody(t, br)
	if got != "done" {
		t.Fatalf("got %q", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_ = resp
}

// shutdownAsync runs Shutdown (10 s at most) and sends its result.
func shutdownAsync(tf *testFront) chan error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- tf.Shutdown(ctx)
	}()
	return shut
}

// TestLargeAndFlushedResponses: a body past maxBuffered, and one flushed
// early, go out chunked and read back whole; the connection stays usable.
func TestLargeAndFlushedResponses(t *testing.T) {
	big := strings.Repeat("z", maxBuffered+100)
	tf := startFront(t, func(s *Server) {
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/flush" {
				_, _ = io.WriteString(w, "a")
				w.(http.Flusher).Flush()
				_, _ = io.WriteString(w, "b")
				return
			}
			_, _ = io.WriteString(w, big)
		})
	})
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, "GET /big HTTP/1.1\r\nHost: h\r\n\r\nGET /flush HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp, got := readBody(t, br); got != big || resp.ContentLength != -1 {
		t.Fatalf("big: %d bytes, length %d", len(got), resp.ContentLength)
	}
	if _, got := readBody(t, br); got != "ab" {
		t.Fatalf("flushed: %q", got)
	}
}

// TestPanicClosesConnection: a handler's panic closes its connection and
// the front goes on serving.
func TestPanicClosesConnection(t *testing.T) {
	tf := startFront(t, func(s *Server) {
		s.Fallback.ErrorLog = nil
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/panic" {
				panic(http.ErrAbortHandler)
			}
			_, _ = io.WriteString(w, "ok")
		})
	})
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("answer after a panic")
	}
	nc, br = dial(t, tf.addr)
	_, _ = io.WriteString(nc, "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, got := readBody(t, br); got != "ok" {
		t.Fatalf("got %q", got)
	}
}

// TestBodyOutlivesHeaderTimeout: a body read with no deadline of the
// handler's is not cut off by the head's deadline (net/http clears it
// once the head is read).
func TestBodyOutlivesHeaderTimeout(t *testing.T) {
	tf := startFront(t, func(s *Server) {
		s.Fallback.ReadHeaderTimeout = 200 * time.Millisecond
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_, _ = w.Write(b)
		})
	})
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab")
	<-time.After(600 * time.Millisecond) // past the head's deadline: only time to let pass
	_, _ = io.WriteString(nc, "cd")
	if resp, got := readBody(t, br); resp.StatusCode != 200 || got != "abcd" {
		t.Fatalf("got %d %q", resp.StatusCode, got)
	}
}

// TestBrowserHandshakeHeadServedByFront: a browser's handshake head
// (Pragma: no-cache among its lines) is the front's, and its handler sees
// the Cache-Control net/http would add for it.
func TestBrowserHandshakeHeadServedByFront(t *testing.T) {
	tf := startFront(t, func(s *Server) {
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, front := w.(*response)
			_, _ = fmt.Fprintf(w, "front=%v cache=%q", front, r.Header["Cache-Control"])
		})
	})
	nc, br := dial(t, tf.addr)
	head := strings.Replace(browserHandshake, "Cache-Control: no-cache\r\n", "", 1)
	if _, err := io.WriteString(nc, head); err != nil {
		t.Fatal(err)
	}
	if _, got := readBody(t, br); got != `front=true cache=["no-cache"]` {
		t.Errorf("got %q", got)
	}
}

// TestIdleTimeoutMovesWithRequests: the idle timeout counts from the
// last request, not the first, although a request leaves the socket's
// earlier deadline in place (it fires, finds the connection used since,
// and moves on). A gap the machine stretched past the timeout is
// retried on a fresh connection, not judged.
func TestIdleTimeoutMovesWithRequests(t *testing.T) {
	const idle = time.Second
	tf := startFront(t, func(s *Server) { s.Fallback.IdleTimeout = idle })
	for attempt := 0; ; attempt++ {
		if attempt == 8 {
			t.Fatal("every attempt had a gap longer than the idle timeout (a loaded machine)")
		}
		nc, br := dial(t, tf.addr)
		ask := func(path string) (time.Time, bool) {
			if _, err := io.WriteString(nc, post(path, "x")); err != nil {
				return time.Time{}, false
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return time.Time{}, false
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			return time.Now(), true
		}
		first, ok := ask("/1")
		if !ok {
			t.Fatal("first request failed")
		}
		time.Sleep(idle / 2) // waits for the clock, not for a condition
		if time.Since(first) > idle*9/10 {
			continue
		}
		second, ok := ask("/2")
		if !ok || time.Since(first) > idle*9/10 {
			continue // the second came too late to count
		}
		// Past the first request's deadline, within the second's.
		time.Sleep(time.Until(first.Add(idle + idle/6)))
		if time.Since(second) > idle*9/10 {
			continue
		}
		if _, ok := ask("/3"); !ok {
			t.Fatal("the connection closed at the first request's idle timeout, though used since")
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("after the idle timeout: %v, want EOF", err)
		}
		return
	}
}

// TestRecycledConns: connections that end on the goroutine serving them
// (the client closing between keep-alive requests, Connection: close, a
// hijack) give their conn back to the pool; each next connection, on a
// reused conn or a new one, is served from a clean state: its requests
// answered by the front in order, a hijack given exactly its bytes.
func TestRecycledConns(t *testing.T) {
	tf := startFront(t, nil)
	idle := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			tf.mu.Lock()
			n := len(tf.conns)
			tf.mu.Unlock()
			if n == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d connections still tracked", n)
			}
			runtime.Gosched()
		}
	}
	for i := range 50 {
		body := strconv.Itoa(i)
		// Keep-alive: two POSTs, then the client closes.
		nc, br := dial(t, tf.addr)
		for j := range 2 {
			_, _ = io.WriteString(nc, post("/ka", body+strconv.Itoa(j)))
			if _, got := readBody(t, br); got != fmt.Sprintf("front POST /ka %d %s%d", len(body)+1, body, j) {
				t.Fatalf("round %d: keep-alive answer %q", i, got)
			}
		}
		nc.Close()
		idle()
		// Connection: close: the server closes after its answer.
		nc, br = dial(t, tf.addr)
		_, _ = io.WriteString(nc, "POST /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")
		if _, got := readBody(t, br); got != "front POST /c 1 x" {
			t.Fatalf("round %d: close answer %q", i, got)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("round %d: after Connection: close read %v, want EOF", i, err)
		}
		nc.Close()
		idle()
		// A hijack with bytes after its head.
		nc, br = dial(t, tf.addr)
		_, _ = io.WriteString(nc, "GET /hijack HTTP/1.1\r\nHost: h\r\n\r\n"+body)
		b, _ := io.ReadAll(br)
		if want := "\r\n\r\nrest=" + body; !strings.HasSuffix(string(b), want) {
			t.Fatalf("round %d: hijack answer %q, want it to end %q", i, b, want)
		}
		nc.Close()
		idle()
	}
}
