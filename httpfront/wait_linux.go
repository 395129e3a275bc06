//go:build linux

package httpfront

import (
	"io"
	"net"
	"os"
	"syscall"
)

// serveWaiting serves a keep-alive connection's next requests inside one
// wait on its socket (fdConn.waitRead): each read comes after a readiness
// edge the runtime's poller kept since the previous read, so a request
// costs one read, not the read that finds nothing before a wait as well
// (an os.File's Read forgets the edges that came before it is called, so
// it must try a read before it waits). done: the connection is no longer
// this goroutine's; waited false: it has no such wait (not an fdConn, or
// its duplicate could not be made), serve it with more.
func (c *conn) serveWaiting() (done, waited bool) {
	fc, ok := c.nc.(*fdConn)
	if !ok {
		return false, false
	}
	for {
		c.armUntil()
		var gone bool
		var rerr error
		err, ok := fc.waitRead(func(fd int) bool {
			for {
				if c.srv.closing.Load() && !c.headStarted {
					rerr = io.EOF // Shutdown closes an idle connection
					return true
				}
				c.makeRoom()
				space := len(c.buf) - c.n
				n, err, again := readFD(fd, c.buf[c.n:])
				switch {
				case again:
					c.armUntil() // a head started: its header timeout
					return false
				case err != nil:
					rerr = err
					return true
				}
				c.n += n
				if c.serveBuffered() {
					gone = true
					return true
				}
				if n < space {
					// The read drained the socket: what comes next
					// brings an edge.
					c.armUntil()
					return false
				}
			}
		})
		switch {
		case !ok:
			return false, false
		case gone:
			fc.dropWaiter()
			return true, true
		case rerr == nil && c.early(err):
			continue
		}
		c.close()
		return true, true
	}
}

// waitRead runs fn inside one RawConn.Read of the socket's duplicate
// (made on first use; ok false when it cannot be), which the front uses
// for nothing else: a handler fn runs may read, write, hijack or close
// the fdConn itself meanwhile (its own locks and, once promoted, its own
// registration in the runtime's poller). fn gets the duplicate's
// descriptor, open until waitRead returns; Close during fn closes the
// duplicate after it.
func (c *fdConn) waitRead(fn func(fd int) bool) (err error, ok bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("read", net.ErrClosed), true
	}
	if c.wait == nil {
		if err := c.makeWaiter(); err != nil {
			c.mu.Unlock()
			return nil, false
		}
	}
	rc := c.wait.rc
	c.wait.inUse = true
	c.mu.Unlock()
	defer c.leaveWait()
	return rc.Read(func(fd uintptr) bool { return fn(int(fd)) }), true
}

// leaveWait ends waitRead's use of the duplicate, closing it if Close
// came meanwhile (a panic in fn included).
func (c *fdConn) leaveWait() {
	c.mu.Lock()
	var f *os.File
	if c.wait != nil {
		c.wait.inUse = false
		if c.closed {
			f, c.wait = c.wait.f, nil
		}
	}
	c.mu.Unlock()
	if f != nil {
		_ = f.Close()
	}
}

// waiter is an fdConn's duplicate descriptor for keep-alive waits.
type waiter struct {
	f     *os.File
	rc    syscall.RawConn
	inUse bool // waitRead is in rc.Read: Close leaves f to it
}

// makeWaiter duplicates the descriptor into the runtime's poller with the
// recorded read deadline. Called under c.mu.
func (c *fdConn) makeWaiter() error {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(c.fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return e
	}
	f := os.NewFile(r, "tcp")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return err
	}
	if !c.rd.IsZero() {
		_ = f.SetReadDeadline(c.rd)
	}
	c.wait = &waiter{f: f, rc: rc}
	return nil
}

// dropWaiter closes the duplicate once the front is done with the
// connection (hijacked, handed off) but the fdConn lives on.
func (c *fdConn) dropWaiter() {
	c.mu.Lock()
	w := c.wait
	c.wait = nil
	c.mu.Unlock()
	if w != nil {
		_ = w.f.Close()
	}
}
