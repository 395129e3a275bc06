//go:build linux

package httpfront

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// The front's own accept4 skips the setsockopt of TCP_NODELAY that
// net.Listener makes per connection: Linux copies TCP_NODELAY and
// SO_KEEPALIVE from the listening socket to the sockets it accepts. This
// checks that on the kernel at hand.
func TestAcceptedSocketsInheritOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, _ := ln.(*net.TCPListener).SyscallConn()
	_ = rc.Control(func(fd uintptr) {
		if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1); err != nil {
			t.Fatal(err)
		}
	})
	a := newRawAccepter(ln, false)
	if a == nil {
		t.Fatal("no raw accepter for a TCP listener")
	}
	defer a.close()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	nc, err := a.accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fc := nc.(*fdConn)
	for _, o := range []struct {
		name       string
		level, opt int
	}{
		{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY},
		{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE},
	} {
		err := fc.control(func(fd int) error {
			v, err := syscall.GetsockoptInt(fd, o.level, o.opt)
			if err == nil && v == 0 {
				err = fmt.Errorf("not set")
			}
			return err
		})
		if err != nil {
			t.Errorf("%s on the accepted socket: %v", o.name, err)
		}
	}
	if got, want := nc.RemoteAddr().String(), cl.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	if got, want := nc.LocalAddr().String(), cl.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
}

// The remote address the front gives a request (peerString, made from
// accept4's address without a net.Addr) is the one net.Conn.RemoteAddr
// prints, for IPv4, IPv6 and an IPv4 client of a dual-stack listener.
func TestAcceptedPeerString(t *testing.T) {
	// A dual-stack listener's accept4 gives an IPv4 client as ::ffff:a.b.c.d.
	mapped := netip.MustParseAddrPort("[::ffff:127.0.0.1]:4242")
	fc := newFDConn(-1, mapped, 0)
	if got, want := fc.peerString(), "127.0.0.1:4242"; got != want || fc.RemoteAddr().String() != want {
		t.Errorf("IPv4-mapped peer: peerString %s, RemoteAddr %s, want %s", got, fc.RemoteAddr(), want)
	}
	for _, c := range []struct{ listen, dial string }{
		{"tcp4", "127.0.0.1"},
		{"tcp6", "[::1]"},
	} {
		ln, err := net.Listen(c.listen, c.dial+":0")
		if err != nil {
			t.Logf("%s: %v", c.listen, err) // no IPv6 here
			continue
		}
		a := newRawAccepter(ln, false)
		if a == nil {
			t.Fatal("no raw accepter for a TCP listener")
		}
		cl, err := net.Dial("tcp", c.dial+":"+fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := a.accept()
		if err != nil {
			t.Fatal(err)
		}
		got, want := peerString(nc), cl.LocalAddr().String()
		if got != want || nc.RemoteAddr().String() != want {
			t.Errorf("%s to %s: peerString %s, RemoteAddr %s, want %s", c.dial, c.listen, got, nc.RemoteAddr(), want)
		}
		nc.Close()
		cl.Close()
		a.close()
		ln.Close()
	}
}

// An fdConn reads and writes directly until it has to wait; then it
// waits in the runtime's poller with the deadlines set before.
func TestFDConnWaitsAndTimesOut(t *testing.T) {
	cl, nc := acceptOne(t, "")
	fc := nc.(*fdConn)
	// A deadline recorded before the socket waits applies once it does.
	_ = nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [8]byte
	if _, err := nc.Read(b[:]); !isTimeout(err) {
		t.Fatalf("read with nothing sent: %v, want a timeout", err)
	}
	if fc.file == nil {
		t.Fatal("a read that waited did not move the socket to the runtime's poller")
	}
	_ = nc.SetReadDeadline(time.Time{})
	go func() { time.Sleep(10 * time.Millisecond); _, _ = cl.Write([]byte("ping")) }()
	if n, err := io.ReadFull(nc, b[:4]); err != nil || string(b[:n]) != "ping" {
		t.Fatalf("read %q, %v", b[:n], err)
	}
	if _, err := nc.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(cl, b[:4]); err != nil || string(b[:n]) != "pong" {
		t.Fatalf("client read %q, %v", b[:n], err)
	}
	if err := nc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Read(b[:]); err == nil {
		t.Fatal("read after Close succeeded")
	}
	_ = cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := cl.Read(b[:]); err != io.EOF {
		t.Fatalf("client after close: %v, want EOF", err)
	}
}

// A direct read past a recorded deadline fails as a net.Conn's does, and
// a socket that never waited is closed directly.
func TestFDConnDirect(t *testing.T) {
	cl, nc := acceptOne(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	fc := nc.(*fdConn)
	req, err := http.ReadRequest(bufio.NewReader(nc))
	if err != nil || req.Host != "x" {
		t.Fatalf("request %v, %v", req, err)
	}
	_ = nc.SetReadDeadline(time.Unix(1, 0))
	if _, err := nc.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read past the deadline: %v", err)
	}
	_ = nc.SetReadDeadline(time.Time{})
	if _, err := nc.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if fc.file != nil {
		t.Fatal("the socket went to the runtime's poller without waiting")
	}
	_ = nc.Close()
	resp, err := http.ReadResponse(bufio.NewReader(cl), nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("response %v, %v", resp, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// acceptOne dials a listener of the front's raw accepter, sends first and
// returns both ends; the test's cleanup closes them.
func acceptOne(t *testing.T, first string) (client, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	a := newRawAccepter(ln, false)
	t.Cleanup(a.close)
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	if first != "" {
		_, _ = cl.Write([]byte(first))
	}
	nc, err := a.accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return cl, nc
}

// parkedCount is how many of the front's connections wait in the
// poller.
func parkedCount(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.state.Load() == connParked {
			n++
		}
	}
	return n
}

func waitParked(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for parkedCount(s) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", parkedCount(s), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A connection that sends nothing at first waits in the poller, with
// no goroutine, and is served when its request comes.
func TestParkedForHead(t *testing.T) {
	tf := startFront(t, nil)
	nc, br := dial(t, tf.addr)
	waitParked(t, tf.Server, 1)
	_, _ = io.WriteString(nc, post("/a", "late"))
	if _, got := readBody(t, br); got != "front POST /a 4 late" {
		t.Fatalf("got %q", got)
	}
	waitParked(t, tf.Server, 0) // kept alive: waiting in the runtime's poller
	// A client that connects and goes away is closed from the poller.
	gone, _ := dial(t, tf.addr)
	waitParked(t, tf.Server, 1)
	_ = gone.Close()
	waitParked(t, tf.Server, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		tf.mu.Lock()
		n := len(tf.conns)
		tf.mu.Unlock()
		if n == 1 { // nc's, idle between requests
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections tracked, want 1", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A parked connection is closed at the header timeout, and by Shutdown.
func TestParkedClosed(t *testing.T) {
	tf := startFront(t, func(s *Server) { s.Fallback.ReadHeaderTimeout = 200 * time.Millisecond })
	_, br := dial(t, tf.addr)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("silent connection after the header timeout: %v, want EOF", err)
	}
	tf2 := startFront(t, nil)
	_, br = dial(t, tf2.addr)
	waitParked(t, tf2.Server, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tf2.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("parked connection after Shutdown: %v, want EOF", err)
	}
}

// An fdConn records its deadlines as nanoseconds since the process's
// start on the monotonic clock: none, one long past, one before 1970 and
// one past what an int64 of nanoseconds can say keep their meaning, and
// one that comes back from the record is the same instant.
func TestDeadlineNanos(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		t      time.Time
		passed bool
	}{
		{"none", time.Time{}, false},
		{"past", time.Unix(1, 0), true},
		{"epoch", time.Unix(0, 0), true},
		{"before 1970", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"now", now, true},
		{"in an hour", now.Add(time.Hour), false},
		{"year 3000", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"far future", time.Unix(1<<60, 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := deadlineNanos(tc.t)
			if got := passed(ns); got != tc.passed {
				t.Fatalf("passed(deadlineNanos(%v)) = %v, want %v", tc.t, got, tc.passed)
			}
			if tc.t.IsZero() != (ns == 0) {
				t.Fatalf("deadlineNanos(%v) = %d", tc.t, ns)
			}
			if tc.name == "in an hour" && !deadlineTime(ns).Equal(tc.t) {
				t.Fatalf("deadlineTime(deadlineNanos(%v)) = %v", tc.t, deadlineTime(ns))
			}
		})
	}
}

// TestDeferAccept: with DeferAccept the listening socket has
// TCP_DEFER_ACCEPT, and the front serves what it always did: a head that
// comes in two parts (accepted with the first, parked for the second), a
// client that connected before it said anything, and, on the same port,
// a client that sends at once.
func TestDeferAccept(t *testing.T) {
	tf := startFront(t, func(s *Server) { s.DeferAccept = true })
	silent, silentBr := dial(t, tf.addr)
	split, splitBr := dial(t, tf.addr)
	head := post("/split", "two parts")
	if _, err := io.WriteString(split, head[:7]); err != nil {
		t.Fatal(err)
	}
	nc, br := dial(t, tf.addr)
	if _, err := io.WriteString(nc, post("/at-once", "x")); err != nil {
		t.Fatal(err)
	}
	if _, got := readBody(t, br); got != "front POST /at-once 1 x" {
		t.Fatalf("at once: %q", got)
	}
	if _, err := io.WriteString(split, head[7:]); err != nil {
		t.Fatal(err)
	}
	if _, got := readBody(t, splitBr); got != "front POST /split 9 two parts" {
		t.Fatalf("split head: %q", got)
	}
	if _, err := io.WriteString(silent, post("/late", "said")); err != nil {
		t.Fatal(err)
	}
	if _, got := readBody(t, silentBr); got != "front POST /late 4 said" {
		t.Fatalf("late first bytes: %q", got)
	}
	tf.mu.Lock()
	rc, err := tf.ln.(*net.TCPListener).SyscallConn()
	tf.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if v == 0 {
		t.Fatal("TCP_DEFER_ACCEPT not set on the listening socket")
	}
}
