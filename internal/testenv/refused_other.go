//go:build !linux

package testenv

import (
	"net"
	"testing"
)

// RefusedAddr returns a loopback address nothing listens on. Here the
// port is found free and let go, so another process may take it before
// it is dialed; on Linux it is held for the test (refused_linux.go).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
