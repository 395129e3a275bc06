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
//
// A request goes out through send and the Read after it: that Read writes
// the request, then waits for the answer, then reads it, all in one
// RawConn.Read. A read straight after the write finds nothing (the backend
// has not answered yet: one more read(2) that fails with EAGAIN), and a
// wait that starts only in a later RawConn.Read could miss the answer (the
// runtime clears a descriptor's readiness as each RawConn.Read begins).
type sockIO struct {
	nc              net.Conn
	rc              syscall.RawConn
	p               []byte
	n               int
	err             error
	out             []byte // the request the next Read writes first (send)
	outErr          error  // why writing out failed
	empty           bool   // open's answer
	readFn, writeFn func(fd uintptr) bool
	peekFn          func(fd uintptr) bool
}

func newSockIO(nc net.Conn, rc syscall.RawConn) *sockIO {
	s := &sockIO{nc: nc, rc: rc}
	s.readFn, s.writeFn, s.peekFn = s.read, s.write, s.peek
	return s
}

// open reports whether an idle connection has nothing to read and no
// error, with a non-blocking MSG_PEEK: a backend that closed it has sent
// EOF.
func (s *sockIO) open() bool {
	s.empty = false
	err := s.rc.Read(s.peekFn)
	return err == nil && s.empty
}

func (s *sockIO) peek(fd uintptr) bool {
	s.empty = rawsys.PeekEmpty(int(fd))
	return true // never wait
}

// send leaves the request p for the next Read to write before it waits for
// the answer; p must stay unchanged until then. That Read reports a failed
// write as Write would.
func (s *sockIO) send(p []byte) error {
	s.out, s.outErr = p, nil
	return nil
}

// Read is one read(2) of at most len(p) bytes, waiting until the socket
// has something or the deadline passes; first it writes what send left.
func (s *sockIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.p, s.n, s.err = p, 0, nil
	err := s.rc.Read(s.readFn)
	if s.outErr != nil {
		s.out, s.p, s.err = nil, nil, nil
		return 0, s.opError("write", os.NewSyscallError("write", s.outErr))
	}
	if err == nil && s.out != nil {
		// The socket took part of the request: the rest waits for room
		// as any write does, then the answer as any read does.
		out := s.out
		s.out = nil
		if _, werr := s.Write(out); werr != nil {
			s.p = nil
			return 0, werr
		}
		s.p = p
		err = s.rc.Read(s.readFn)
	}
	s.out = nil
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
	if s.out != nil {
		return s.writeOut(fd)
	}
	n, again, err := rawsys.ReadNB(int(fd), s.p)
	s.n, s.err = n, err
	return !again
}

// writeOut writes the request send left, in Read's RawConn.Read, and
// reports false (wait for the answer) once all of it is written; true
// ends that RawConn.Read: the write failed (outErr), or the socket took
// only part of it (Read writes the rest in out).
func (s *sockIO) writeOut(fd uintptr) bool {
	for len(s.out) > 0 {
		n, again, err := rawsys.WriteNB(int(fd), s.out, rawsys.Raw)
		if again {
			return true
		}
		if err != nil {
			s.outErr = err
			return true
		}
		s.out = s.out[n:]
	}
	s.out = nil
	return false
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
