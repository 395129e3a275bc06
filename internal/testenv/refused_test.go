package testenv

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
)

// TestRefusedAddr: a dial is refused, and (on Linux) nobody can listen on
// the port while the test holds it.
func TestRefusedAddr(t *testing.T) {
	addr := RefusedAddr(t)
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("listen on %s succeeded while it is held", addr)
	}
}
