//go:build linux

package httpfront

import (
	"bufio"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/wsgate/wsgate/internal/testenv"
)

// noneHeld waits until none of s's keep-alive waits holds a duplicate.
func noneHeld(t *testing.T, s *Server) {
	t.Helper()
	waitFor(t, "no duplicate held", func() bool { held, _, _ := s.KeepAliveWaits(); return held == 0 })
}

// postThrice sends three POSTs on nc, one after the other's answer.
func postThrice(t *testing.T, nc net.Conn, br *bufio.Reader, path string) {
	t.Helper()
	for _, body := range []string{"1", "2", "3"} {
		_, _ = io.WriteString(nc, post(path, body))
		if _, got := readBody(t, br); got != "front POST "+path+" 1 "+body {
			t.Fatalf("%s, request %s: got %q", path, body, got)
		}
	}
}

// onlyConn is the front's one tracked connection's socket.
func onlyConn(t *testing.T, s *Server) *fdConn {
	t.Helper()
	cs := frontConns(s)
	if len(cs) != 1 {
		t.Fatalf("%d tracked connections, want 1", len(cs))
	}
	return cs[0].nc.(*fdConn)
}

// connOf is the front's socket of the client connection nc.
func connOf(t *testing.T, s *Server, nc net.Conn) *fdConn {
	t.Helper()
	local := nc.LocalAddr().(*net.TCPAddr).AddrPort()
	for _, c := range frontConns(s) {
		if fc, ok := c.nc.(*fdConn); ok && fc.peer.Port() == local.Port() {
			return fc
		}
	}
	t.Fatalf("no tracked connection from %v", local)
	return nil
}

// At the duplicates' limit (KeepAliveWaitDescriptors) a kept-alive
// connection waits without one: its POSTs are answered, the fallback is
// counted once and logged; once a place is free its next wait is on a
// duplicate again; every duplicate is closed with its connection.
func TestKeepAliveWaitLimit(t *testing.T) {
	logs := new(testenv.Buffer)
	tf := startFront(t, func(s *Server) {
		s.Fallback.ErrorLog = log.New(logs, "", 0)
		s.KeepAliveWaitDescriptors = 1
	})
	KeepAliveWaits := tf.Server.KeepAliveWaits
	_, _, before := KeepAliveWaits()

	nc1, br1 := dial(t, tf.addr)
	postThrice(t, nc1, br1, "/a")
	waitFor(t, "the first connection waiting on its duplicate", func() bool { return onlyConn(t, tf.Server).waiting() })
	if held, _, _ := KeepAliveWaits(); held != 1 {
		t.Fatalf("%d duplicates held, want 1", held)
	}

	nc2, br2 := dial(t, tf.addr)
	postThrice(t, nc2, br2, "/b")
	held, limit, after := KeepAliveWaits()
	if held != 1 || limit != 1 || after != before+1 {
		t.Fatalf("held %d, limit %d, fallbacks %d → %d; want 1, 1, one more", held, limit, before, after)
	}
	if l := logs.String(); !strings.Contains(l, "without a second descriptor (keep-alive wait descriptors at their limit; 1 held, limit 1)") {
		t.Fatalf("log: %q", l)
	}
	postThrice(t, nc1, br1, "/a") // the first goes on on its duplicate
	postThrice(t, nc2, br2, "/b") // the second still without: counted once
	if held, _, n := KeepAliveWaits(); held != 1 || n != after || connOf(t, tf.Server, nc2).waiting() {
		t.Fatalf("held %d, fallbacks %d (want 1, %d), the second on a duplicate %v", held, n, after, connOf(t, tf.Server, nc2).waiting())
	}
	nc1.Close()
	// Its duplicate closed with it (the second may have taken the place
	// already, if its goroutine came to its wait only now).
	waitFor(t, "the first connection gone", func() bool { return len(frontConns(tf.Server)) == 1 })
	postThrice(t, nc2, br2, "/b") // a place free: a wait takes it
	waitFor(t, "the second connection waiting on a duplicate", func() bool { return connOf(t, tf.Server, nc2).waiting() })
	if held, _, n := KeepAliveWaits(); held != 1 || n != after {
		t.Fatalf("held %d, fallbacks %d; want 1, %d", held, n, after)
	}
	nc2.Close()
	waitFor(t, "no tracked connection", func() bool { return len(frontConns(tf.Server)) == 0 })
	noneHeld(t, tf.Server)
}

// KeepAliveWaitDescriptors -1: no duplicate at all; every kept-alive
// connection is answered, waiting with reads of its own.
func TestKeepAliveWaitNone(t *testing.T) {
	tf := startFront(t, func(s *Server) { s.KeepAliveWaitDescriptors = -1 })
	nc, br := dial(t, tf.addr)
	postThrice(t, nc, br, "/a")
	postThrice(t, nc, br, "/a")
	if held, limit, n := tf.Server.KeepAliveWaits(); held != 0 || limit != 0 || n != 1 {
		t.Fatalf("held %d, limit %d, fallbacks %d; want 0, 0, 1", held, limit, n)
	}
}

// openFDs counts the process's open descriptors and finds the highest.
func openFDs(t *testing.T) (n, highest int) {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		fd, _ := strconv.Atoi(e.Name())
		highest = max(highest, fd)
	}
	return len(es) - 1, highest // ReadDir's own is one of them
}

// fdsAre waits until the process has n open descriptors.
func fdsAre(t *testing.T, n int) {
	t.Helper()
	waitFor(t, "the descriptors as before", func() bool { m, _ := openFDs(t); return m == n })
}

// fillFDs opens /dev/null until no descriptor is left.
func fillFDs(t *testing.T, fds []int) []int {
	t.Helper()
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EMFILE {
			return fds
		}
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
}

// With no descriptor left for the duplicate (the process's table full),
// a kept-alive connection's POSTs are still answered, waiting with the
// old read; the fallback is counted and logged, and once descriptors are
// back nothing has leaked and the next connection waits on a duplicate
// again. It runs in a child process: it lowers RLIMIT_NOFILE and fills
// the descriptor table.
func TestKeepAliveWaitNoDescriptors(t *testing.T) {
	if os.Getenv("HTTPFRONT_NOFD_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestKeepAliveWaitNoDescriptors$", "-test.count", "1", "-test.v")
		cmd.Env = append(os.Environ(), "HTTPFRONT_NOFD_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestKeepAliveWaitNoDescriptors") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	// idleWith is how many connections the server tracked when its
	// accepter last found none left to accept (-1: not since reset).
	var srv atomic.Pointer[Server]
	var idleWith atomic.Int64
	testHookAcceptWait = func() {
		if s := srv.Load(); s != nil {
			idleWith.Store(int64(len(frontConns(s))))
		}
	}
	t.Cleanup(func() { testHookAcceptWait = nil }) // after the server's stop
	logs := new(testenv.Buffer)
	tf := startFront(t, func(s *Server) { s.Fallback.ErrorLog = log.New(logs, "", 0) })
	srv.Store(tf.Server)
	KeepAliveWaits := tf.Server.KeepAliveWaits
	// A first connection sets up what the process keeps (the pollers).
	nc, br := dial(t, tf.addr)
	postThrice(t, nc, br, "/warm")
	nc.Close()
	waitFor(t, "no tracked connection", func() bool { return len(frontConns(tf.Server)) == 0 })
	noneHeld(t, tf.Server)
	open, highest := openFDs(t)

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(highest + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	fillers := fillFDs(t, nil)
	for _, fd := range fillers[len(fillers)-4:] {
		syscall.Close(fd)
	}
	fillers = fillers[:len(fillers)-4]
	idleWith.Store(-1)
	nc, br = dial(t, tf.addr)
	// Accepted, and the accepter's next accept4 over: it holds a
	// descriptor number while it runs, which a fill beside it would miss.
	waitFor(t, "the connection accepted", func() bool { return idleWith.Load() == 1 })
	fillers = fillFDs(t, fillers) // the table full again
	_, _, before := KeepAliveWaits()
	postThrice(t, nc, br, "/full")
	held, _, after := KeepAliveWaits()
	if held != 0 || after != before+1 {
		t.Fatalf("held %d, fallbacks %d → %d; want none held, one fallback", held, before, after)
	}
	if l := logs.String(); !strings.Contains(l, "without a second descriptor (fcntl: too many open files") {
		t.Fatalf("log: %q", l)
	}

	for _, fd := range fillers {
		syscall.Close(fd)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// With room again the fallen-back connection's next waits try for a
	// duplicate (after fullBackoff) and take one; no fall counted again.
	waitFor(t, "the fallen-back connection waiting on a duplicate", func() bool {
		postThrice(t, nc, br, "/full")
		return onlyConn(t, tf.Server).waiting()
	})
	if held, _, n := KeepAliveWaits(); held != 1 || n != after {
		t.Fatalf("held %d, fallbacks %d; want 1, %d", held, n, after)
	}
	nc.Close()
	waitFor(t, "no tracked connection", func() bool { return len(frontConns(tf.Server)) == 0 })
	fdsAre(t, open)

	nc, br = dial(t, tf.addr)
	postThrice(t, nc, br, "/again")
	waitFor(t, "a new connection waiting on its duplicate", func() bool { return onlyConn(t, tf.Server).waiting() })
	nc.Close()
	waitFor(t, "no tracked connection", func() bool { return len(frontConns(tf.Server)) == 0 })
	noneHeld(t, tf.Server)
	fdsAre(t, open)
}
