//go:build unix

package integration

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/wsgate/wsgate/internal/rawsys"
)

// sockIOWorks: backend sockets are read and written through sockIO.
const sockIOWorks = true

// sockIO reads and writes a backend connection's socket through its
// RawConn: the reads and writes themselves skip the scheduler's
// system-call bookkeeping (rawsys), while waiting and deadlines stay the
// runtime poller's, as for net.Conn. Its callbacks are bound once per
// connection (a closure handed to RawConn escapes).
type sockIO struct {
	nc              net.Conn
	rc              syscall.RawConn
	p               []byte
	n               int
	err             error
	readFn, writeFn func(fd uintptr) bool
}

func newSockIO(nc net.Conn, rc syscall.RawConn) *sockIO {
	s := &sockIO{nc: nc, rc: rc}
	s.readFn, s.writeFn = s.read, s.write
	return s
}

// Read is one read(2) of at most len(p) bytes, waiting until the socket
// has something or the deadline passes.
func (s *sockIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.p, s.n, s.err = p, 0, nil
	err := s.rc.Read(s.readFn)
	n, rerr := s.n, s.err
	s.p, s.err = nil, nil
	if err != nil {
		return n, s.opError("read", err)
	}
	if rerr == io.EOF {
		return n, io.EOF
	}
	if rerr != nil {
		return n, s.opError("read", os.NewSyscallError("read", rerr))
	}
	return n, nil
}

func (s *sockIO) read(fd uintptr) bool {
	n, again, err := rawsys.ReadNB(int(fd), s.p)
	s.n, s.err = n, err
	return !again
}

// Write writes all of p, waiting while the socket is full.
func (s *sockIO) Write(p []byte) (int, error) {
	s.p, s.n, s.err = p, 0, nil
	err := s.rc.Write(s.writeFn)
	n, werr := s.n, s.err
	s.p, s.err = nil, nil
	if err == nil && werr != nil {
		err = os.NewSyscallError("write", werr)
	}
	if err != nil {
		return n, s.opError("write", err)
	}
	return n, nil
}

func (s *sockIO) write(fd uintptr) bool {
	for s.n < len(s.p) {
		n, again, err := rawsys.WriteNB(int(fd), s.p[s.n:], rawsys.Raw)
		if again {
			return false
		}
		if err != nil {
			s.err = err
			return true
		}
		s.n += n
	}
	return true
}

// opError gives err net.Conn's shape: "read tcp a->b: …".
func (s *sockIO) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err // RawConn's "raw-read" error
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(), Err: err}
}
