//go:build !unix

package gateway

import (
	"net"
	"syscall"
)

// iovecs is writeNow's scratch; unused here.
type iovecs struct{}

// writeNow writes nothing where a non-blocking write(2) on the raw socket
// is not implemented (Windows): every frame goes to the connection's
// writer goroutine, which writes through net.Conn.
func writeNow(uintptr, [][]byte, int, *iovecs) (whole, part int, err error) { return 0, 0, nil }

// writeInlineFD writes nothing here either.
func writeInlineFD(uintptr, []byte) (int, error) { return 0, nil }

// writeAll writes *bufs through net.Conn (one write per buffer where the
// conn cannot writev).
func writeAll(nc net.Conn, _ syscall.RawConn, bufs *net.Buffers, _ *iovecs) (int64, error) {
	return bufs.WriteTo(nc)
}
