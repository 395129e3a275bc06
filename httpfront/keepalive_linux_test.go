//go:build linux

package httpfront

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// frontConns is the front's tracked connections.
func frontConns(s *Server) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []*conn
	for c := range s.conns {
		cs = append(cs, c)
	}
	return cs
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// registeredNow reports whether the poller holds c, armed.
func registeredNow(c *conn) bool {
	ok, _ := armed(c)
	return ok
}

// armed reports whether the poller holds c, armed, and the generation
// of its latest registration (written under the poller's lock).
func armed(c *conn) (bool, uint32) {
	p := thePoller
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, sl := range p.slots {
		if sl.c == c {
			return true, c.parkGen
		}
	}
	return false, c.parkGen
}

// slowFront answers the path; /slow tells entered, then waits for
// release to close.
func slowFront(t *testing.T) (tf *testFront, entered, release chan struct{}) {
	entered, release = make(chan struct{}, 1), make(chan struct{})
	tf = startFront(t, func(s *Server) {
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				entered <- struct{}{}
				<-release
			}
			_, _ = io.WriteString(w, r.URL.Path)
		})
	})
	return tf, entered, release
}

// A first head that stops halfway parks again (its spent one-shot
// registration re-armed) and is served when the rest comes; so does one
// cut before its body.
func TestFirstHeadParksAgain(t *testing.T) {
	tf := startFront(t, nil)
	nc, br := dial(t, tf.addr)
	waitParked(t, tf.Server, 1)
	c := frontConns(tf.Server)[0]
	_, gen := armed(c)
	_, _ = io.WriteString(nc, "POST /a HTTP/1.1\r\nHo")
	waitFor(t, "the half head parked again", func() bool { ok, g := armed(c); return ok && g != gen })
	_, _ = io.WriteString(nc, "st: h\r\nContent-Length: 2\r\n\r\nok")
	if _, got := readBody(t, br); got != "front POST /a 2 ok" {
		t.Fatalf("got %q", got)
	}
}

// The idle timeout between requests closes a parked keep-alive
// connection, and the header timeout one that stopped halfway through
// its next head.
func TestKeepAliveTimeouts(t *testing.T) {
	tf := startFront(t, func(s *Server) {
		s.Fallback.IdleTimeout = 200 * time.Millisecond
		s.Fallback.ReadHeaderTimeout = 300 * time.Millisecond
	})
	nc, br := dial(t, tf.addr)
	_, _ = io.WriteString(nc, post("/a", "x"))
	readBody(t, br)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection after the idle timeout: %v, want EOF", err)
	}
	nc, br = dial(t, tf.addr)
	_, _ = io.WriteString(nc, post("/a", "x"))
	readBody(t, br)
	_, _ = io.WriteString(nc, "POST /b HTTP/1.1\r\nHo")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("half a head after the header timeout: %v, want EOF", err)
	}
	waitFor(t, "no tracked connection", func() bool { return len(frontConns(tf.Server)) == 0 })
}

// Shutdown closes a connection parked for its first head at once and
// waits for a keep-alive one whose request is being served, which gets
// its answer and closes.
func TestShutdownParkedAndBusy(t *testing.T) {
	tf, entered, release := slowFront(t)
	var ncs []net.Conn
	var brs []*bufio.Reader
	for range 2 {
		nc, br := dial(t, tf.addr)
		ncs, brs = append(ncs, nc), append(brs, br)
	}
	waitParked(t, tf.Server, 2)
	_, _ = io.WriteString(ncs[1], "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	readBody(t, brs[1])
	_, _ = io.WriteString(ncs[1], "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	shut := shutdownAsync(tf)
	if _, err := brs[0].ReadByte(); err != io.EOF {
		t.Fatalf("parked connection after Shutdown: %v, want EOF", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in progress", err)
	default:
	}
	close(release)
	resp, got := readBody(t, brs[1])
	if got != "/slow" || !resp.Close {
		t.Fatalf("busy connection: %q, close %v", got, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := brs[1].ReadByte(); err != io.EOF {
		t.Fatalf("busy connection after its answer: %v, want EOF", err)
	}
}

// A connection parked for its first head, then kept alive, then upgraded
// is no longer in the poller: what the client sends next reaches the
// hijacker alone. So is one handed to net/http after a keep-alive
// request.
func TestKeepAliveThenHijackOrHandOff(t *testing.T) {
	got := make(chan string, 1)
	tf := startFront(t, func(s *Server) {
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/up" {
				_, _ = io.WriteString(w, r.Proto+" "+r.URL.Path)
				return
			}
			nc, rest, err := w.(*response).HijackBuffered()
			if err != nil {
				panic(err)
			}
			defer nc.Close()
			_, _ = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
			b := make([]byte, 5)
			n := copy(b, rest)
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadFull(nc, b[n:])
			got <- string(b) + " " + errString(err)
		})
	})
	nc, br := dial(t, tf.addr)
	waitParked(t, tf.Server, 1)
	c := frontConns(tf.Server)[0]
	_, _ = io.WriteString(nc, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	readBody(t, br)
	_, _ = io.WriteString(nc, "GET /up HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nab")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v, %v", resp, err)
	}
	waitFor(t, "the hijacked connection out of the poller", func() bool { return !registeredNow(c) })
	_, _ = io.WriteString(nc, "cde")
	if s := <-got; s != "abcde <nil>" {
		t.Fatalf("hijacker read %q", s)
	}

	// Handed to net/http after a keep-alive request (HTTP/1.0 is not the
	// front's), then served by net/http on the same connection.
	nc, br = dial(t, tf.addr)
	waitParked(t, tf.Server, 1)
	c = frontConns(tf.Server)[0]
	_, _ = io.WriteString(nc, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	readBody(t, br)
	_, _ = io.WriteString(nc, "GET /b HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
	if _, s := readBody(t, br); s != "HTTP/1.0 /b" {
		t.Fatalf("handed off: %q", s)
	}
	if registeredNow(c) {
		t.Fatal("a connection handed to net/http is still in the poller")
	}
	_, _ = io.WriteString(nc, "GET /c HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
	if _, s := readBody(t, br); s != "HTTP/1.0 /c" {
		t.Fatalf("net/http's next request: %q", s)
	}
}

func errString(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "<nil>"
	}
	return err.Error()
}

// A kept-alive connection's requests are read inside one wait on the
// socket's duplicate (serveWaiting): a request that comes while the one
// before is being served (its edge before the next wait) is served, not
// left waiting; a body that comes late is read meanwhile through the
// original descriptor; and a hijack, a Connection: close, a panic and a
// hand-off to net/http on a later request each end the connection as on
// the first (the client reads the end of the stream: the duplicate is
// closed too).
func TestKeepAliveWaitEndings(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	tf := startFront(t, func(s *Server) {
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/slow":
				entered <- struct{}{}
				<-release
			case "/panic":
				panic(http.ErrAbortHandler)
			}
			echo(w, r)
		})
	})
	nc, br := dial(t, tf.addr)
	for i := range 2 {
		_, _ = io.WriteString(nc, post("/a", "x"))
		if _, got := readBody(t, br); got != "front POST /a 1 x" {
			t.Fatalf("request %d: got %q", i, got)
		}
	}
	_, _ = io.WriteString(nc, post("/slow", "1"))
	<-entered
	_, _ = io.WriteString(nc, post("/b", "2"))
	time.Sleep(20 * time.Millisecond) // let /b's bytes land while /slow is served
	close(release)
	for _, want := range []string{"front POST /slow 1 1", "front POST /b 1 2"} {
		if _, got := readBody(t, br); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// A body that comes after its head, past the read buffer, is read
	// (waiting on the original descriptor) while the wait is under way.
	waitFor(t, "the connection waiting", func() bool { return frontConns(tf.Server)[0].nc.(*fdConn).waiting() })
	big := strings.Repeat("z", 3*bufSize)
	head, _, _ := strings.Cut(post("/big", big), "\r\n\r\n")
	_, _ = io.WriteString(nc, head+"\r\n\r\n"+big[:10])
	time.Sleep(20 * time.Millisecond)
	_, _ = io.WriteString(nc, big[10:])
	if _, got := readBody(t, br); got != "front POST /big "+strconv.Itoa(len(big))+" "+big {
		t.Fatalf("the late body: got %.40q…", got)
	}
	nc.Close()
	waitFor(t, "no tracked connection", func() bool { return len(frontConns(tf.Server)) == 0 })
	for _, last := range []string{
		"GET /hijack HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nframes",
		"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"GET /panic HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /old HTTP/1.0\r\nHost: h\r\n\r\n", // handed to net/http
	} {
		nc, br := dial(t, tf.addr)
		_, _ = io.WriteString(nc, post("/a", "x")+post("/a", "y"))
		readBody(t, br)
		readBody(t, br)
		waitFor(t, "the connection waiting", func() bool {
			for _, c := range frontConns(tf.Server) {
				if c.nc.(*fdConn).waiting() {
					return true
				}
			}
			return false
		})
		_, _ = io.WriteString(nc, last)
		rest, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("%q: %v, want the end of the stream", last, err)
		}
		if strings.HasPrefix(last, "GET /hijack") && !strings.HasSuffix(string(rest), "rest=frames") {
			t.Fatalf("after the hijack: %q", rest)
		}
		if strings.HasPrefix(last, "GET /old") && !strings.HasSuffix(string(rest), "net/http GET /old 0 ") {
			t.Fatalf("the handed-off request: %q", rest)
		}
		waitFor(t, "no tracked connection", func() bool { return len(frontConns(tf.Server)) == 0 })
	}
}

// waiting reports whether the connection is in its keep-alive wait.
func (c *fdConn) waiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiter()
	return w != nil && w.inUse
}
