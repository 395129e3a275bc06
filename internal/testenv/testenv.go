// Package testenv is what wsgate's tests share: finding the external tools
// an interoperability test needs, and waiting for a condition without sleeping
// a fixed time.
//
// Outside CI a missing tool skips the test with the command that installs it;
// with CI=true (as .ci/run runs) it fails, so no interoperability test is
// silently skipped there.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the tests run under .ci/run (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test (or fails it in CI) because what is needs is absent.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required in CI (install: %s)", what, install)
	}
	t.Skipf("%s not available (install: %s)", what, install)
}

// LookPath returns the path of an executable, or skips/fails the test as
// Missing does. install says how to get it, e.g. "apt-get install -y postgresql".
func LookPath(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, install)
	}
	return p
}

// Eventually polls cond every few milliseconds until it returns nil or the
// timeout passes, then fails the test with cond's last error. It is the
// polling helper tests use instead of time.Sleep.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// Progressing polls cond as Eventually does, for work whose length depends
// on how much CPU the machine gives it: cond reports how far the work has
// come (a count that only grows) and nil once it is done. The test fails
// only when that count has not grown for stall, so a loaded machine makes
// the test slower, not failed, while a stuck one still fails.
func Progressing(t testing.TB, stall time.Duration, cond func() (progress int, err error)) {
	t.Helper()
	last, lastAt := -1, time.Now()
	delay := time.Millisecond
	for {
		n, err := cond()
		if err == nil {
			return
		}
		if n > last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > stall {
			t.Fatalf("no progress for %v (at %d): %v", stall, n, err)
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// LoopbackPair is a connected TCP pair on 127.0.0.1, closed when the test
// ends.
func LoopbackPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// FreeAddr returns a loopback address ("127.0.0.1:port") nothing listens
// on right now. The port is let go, so another process may take it before
// the caller binds it: callers start again on another when a bind fails.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
