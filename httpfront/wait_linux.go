//go:build linux

package httpfront

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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
	if !ok || fc.noWait {
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
			c.srv.waitFallback(err)
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
// duplicate after it. When the duplicate cannot be made (err says why)
// the connection never tries again (noWait): it waits with reads of its
// own socket, one more read per request.
func (c *fdConn) waitRead(fn func(fd int) bool) (err error, ok bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("read", net.ErrClosed), true
	}
	w := c.waiter()
	if w == nil {
		var err error
		if w, err = c.makeWaiter(); err != nil {
			c.noWait = true
			c.mu.Unlock()
			return err, false
		}
	}
	rc := w.rc
	w.inUse = true
	c.mu.Unlock()
	defer c.leaveWait()
	return rc.Read(func(fd uintptr) bool { return fn(int(fd)) }), true
}

// leaveWait ends waitRead's use of the duplicate, closing it if Close
// came meanwhile (a panic in fn included).
func (c *fdConn) leaveWait() {
	c.mu.Lock()
	var w *waiter
	if m := c.more.Load(); m != nil && m.wait != nil {
		m.wait.inUse = false
		if c.closed {
			w, m.wait = m.wait, nil
		}
	}
	c.mu.Unlock()
	w.close()
}

// waiter is an fdConn's duplicate descriptor for keep-alive waits.
type waiter struct {
	f     *os.File
	rc    syscall.RawConn
	inUse bool // waitRead is in rc.Read: Close leaves f to it
}

// close closes the duplicate (none: nothing) and gives its place back.
func (w *waiter) close() {
	if w != nil {
		_ = w.f.Close()
		waitDups.held.Add(-1)
	}
}

// waitDups bounds the duplicates keep-alive waits hold at once: each is a
// second descriptor for an idle kept-alive connection, taken from the
// process's limit (RLIMIT_NOFILE) that accepted WebSockets share. At
// most an eighth of the limit (limit, set on first use); a connection
// beyond it, or one whose dup fails (EMFILE), waits with the file's Read
// (fallbacks counts them; the front logs the first and then at most one
// a minute, logged).
var waitDups struct {
	once      sync.Once
	limit     atomic.Int64
	held      atomic.Int64
	fallbacks atomic.Uint64
	logged    atomic.Int64 // Unix nanoseconds of the last log line
}

// errWaitLimit: the duplicates held reached waitDups.limit.
var errWaitLimit = errors.New("keep-alive wait descriptors at their limit")

// KeepAliveWaits reports the duplicate descriptors keep-alive
// connections hold for their waits between requests, their limit, and
// how many connections waited without one (the limit reached, or no
// descriptor left).
func KeepAliveWaits() (held, limit int64, fallbacks uint64) {
	return waitDups.held.Load(), waitDupLimit(), waitDups.fallbacks.Load()
}

// waitDupLimit is an eighth of the descriptor limit (the soft one, which
// the runtime raises to the hard one at start).
func waitDupLimit() int64 {
	waitDups.once.Do(func() {
		var rl syscall.Rlimit
		n := int64(1024)
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur > 0 {
			n = int64(min(rl.Cur, 1<<40))
		}
		waitDups.limit.Store(n / 8)
	})
	return waitDups.limit.Load()
}

// takeWaitDup takes a place for a duplicate; false at the limit.
func takeWaitDup() bool {
	limit := waitDupLimit()
	for {
		n := waitDups.held.Load()
		if n >= limit {
			return false
		}
		if waitDups.held.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// waitFallback counts a connection that waits without a duplicate and
// logs it: the first time, then at most once a minute.
func (s *Server) waitFallback(err error) {
	n := waitDups.fallbacks.Add(1)
	now := time.Now().UnixNano()
	last := waitDups.logged.Load()
	if last != 0 && now-last < int64(time.Minute) || !waitDups.logged.CompareAndSwap(last, now) {
		return
	}
	s.logf("httpfront: a keep-alive connection waits for its next request without a second descriptor "+
		"(%v; %d held, limit %d): one read more per request on it; %d such connections since start",
		err, waitDups.held.Load(), waitDupLimit(), n)
}

// makeWaiter duplicates the descriptor into the runtime's poller with the
// recorded read deadline, and returns it. Called under c.mu.
func (c *fdConn) makeWaiter() (*waiter, error) {
	if !takeWaitDup() {
		return nil, errWaitLimit
	}
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(c.fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		waitDups.held.Add(-1)
		return nil, os.NewSyscallError("fcntl", e)
	}
	f := os.NewFile(r, "tcp")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		waitDups.held.Add(-1)
		return nil, err
	}
	if c.rd != 0 {
		_ = f.SetReadDeadline(deadlineTime(c.rd))
	}
	w := &waiter{f: f, rc: rc}
	c.ext().wait = w
	return w, nil
}

// dropWaiter closes the duplicate once the front is done with the
// connection (hijacked, handed off) but the fdConn lives on.
func (c *fdConn) dropWaiter() {
	c.mu.Lock()
	var w *waiter
	if m := c.more.Load(); m != nil {
		w, m.wait = m.wait, nil
	}
	c.mu.Unlock()
	w.close()
}
