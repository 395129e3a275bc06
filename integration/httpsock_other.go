//go:build !unix

package integration

import (
	"net"
	"syscall"
)

// sockIOWorks: elsewhere (Windows) backend sockets are read and written
// through net.Conn.
const sockIOWorks = false

// sockIO is never made here.
type sockIO struct{ net.Conn }

func newSockIO(nc net.Conn, _ syscall.RawConn) *sockIO { return &sockIO{nc} }

// send writes p.
func (s *sockIO) send(p []byte) error {
	_, err := s.Write(p)
	return err
}

// open is never asked here (no lean client).
func (s *sockIO) open() bool { return true }
