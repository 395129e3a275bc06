//go:build !linux

package testenv

import "testing"

// RefusedAddr returns a loopback address nothing listens on. Here the
// port is found free and let go (FreeAddr), so another process may take it
// before it is dialed; on Linux it is held for the test (refused_linux.go).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	return FreeAddr(t)
}
