//go:build linux

package httpfront

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/wsgate/wsgate/internal/rawsys"
)

// rawAccepter accepts from a TCP listener with accept4 itself and returns
// each socket as an fdConn: no epoll_ctl, getsockname or setsockopt per
// connection. TCP_NODELAY and SO_KEEPALIVE, set once on the listening
// socket, are inherited by the sockets it accepts (Linux copies them on
// accept; TestAcceptedSocketsInheritOptions checks).
//
// A listener's RawConn cannot wait (its Read is EINVAL), so the accepter
// waits on a duplicate of the listening descriptor (ln.File(), in the
// runtime's poller like ln): it keeps the socket listening until close,
// which Serve's end and Shutdown call.
type rawAccepter struct {
	f  *os.File
	rc syscall.RawConn
	// the one accept's result, written by fn
	fd   int
	peer netip.AddrPort
	zone uint32
	err  error
	fn   func(fd uintptr) bool
	// waited: the last accept found the queue empty at first and
	// waited in the poller (accept4 got EAGAIN).
	waited bool
	// got, nowFn: acceptNow's result and call
	got   bool
	nowFn func(fd uintptr)
}

// testHookAcceptWait, set by a test before its server starts, is called
// each time the accepter found no connection and is about to wait. A
// test that fills the descriptor table needs it: accept4 takes a
// descriptor number before it looks for a connection and gives it back
// on EAGAIN, so a fill beside that call leaves a slot that comes free
// after it.
var testHookAcceptWait func()

// newRawAccepter returns nil where ln is not a plain *net.TCPListener or
// the listening socket cannot be set up; Serve then uses ln.Accept.
// deferAccept sets TCP_DEFER_ACCEPT on the listening socket too
// (Server.DeferAccept).
func newRawAccepter(ln net.Listener, deferAccept bool) *rawAccepter {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	f, err := tl.File()
	if err != nil {
		return nil
	}
	rc, err := f.SyscallConn()
	var serr error
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			if serr == nil && deferAccept {
				// One second: the kernel holds a connection that sent
				// nothing until its first SYN-ACK retransmission is
				// answered, then queues it anyway.
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
			}
		})
	}
	if err != nil || serr != nil {
		_ = f.Close()
		return nil
	}
	return newLoop(f, rc)
}

func newLoop(f *os.File, rc syscall.RawConn) *rawAccepter {
	a := &rawAccepter{f: f, rc: rc}
	a.fn = a.accept4
	a.nowFn = func(lfd uintptr) { a.got = a.try(lfd, false) }
	return a
}

// close stops the accepter; an accept waiting returns net.ErrClosed.
func (a *rawAccepter) close() { _ = a.f.Close() }

// accept4 is one non-blocking accept; false: nothing to accept yet.
func (a *rawAccepter) accept4(lfd uintptr) bool { return a.try(lfd, true) }

// try is accept4; wait: the caller waits when it finds nothing.
func (a *rawAccepter) try(lfd uintptr, wait bool) bool {
	for {
		fd, peer, zone, err := rawsys.Accept4Peer(int(lfd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		switch err {
		case nil:
			a.fd, a.peer, a.zone, a.err = fd, peer, zone, nil
			return true
		case syscall.EINTR, syscall.ECONNABORTED:
			continue // the client reset before we accepted: the next one
		case syscall.EAGAIN:
			if !wait {
				return false
			}
			a.waited = true
			if h := testHookAcceptWait; h != nil {
				h()
			}
			return false
		}
		a.err = os.NewSyscallError("accept4", err)
		return true
	}
}

// loop returns an accepter of the same socket for another accept loop
// (Server.InlineLoops): its own result fields, the same descriptor. Its
// waits (accept) take turns with the others' on the descriptor's read
// lock; acceptNow does not take it.
func (a *rawAccepter) loop() *rawAccepter { return newLoop(a.f, a.rc) }

// acceptNow is accept without the wait: nil, nil when no connection is
// queued.
func (a *rawAccepter) acceptNow() (net.Conn, error) {
	a.got = false
	if err := a.rc.Control(a.nowFn); err != nil {
		if errors.Is(err, os.ErrClosed) {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: err}
	}
	return a.result()
}

// accept returns the next connection; one accept loop calls it (each
// loop has its own rawAccepter, loop).
func (a *rawAccepter) accept() (net.Conn, error) {
	a.waited, a.got = false, true
	if err := a.rc.Read(a.fn); err != nil {
		if errors.Is(err, os.ErrClosed) {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: err}
	}
	return a.result()
}

func (a *rawAccepter) result() (net.Conn, error) {
	if !a.got {
		return nil, nil
	}
	if a.err != nil {
		err := a.err
		a.err = nil
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: err}
	}
	return newFDConn(a.fd, a.peer, a.zone), nil
}
