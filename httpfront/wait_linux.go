//go:build linux

package httpfront

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/mono"
)

// serveWaiting serves a keep-alive connection's next requests inside one
// wait on its socket (fdConn.waitRead): each read comes after a readiness
// edge the runtime's poller kept since the previous read, so a request
// costs one read, not the read that finds nothing before a wait as well
// (an os.File's Read forgets the edges that came before it is called, so
// it must try a read before it waits). done: the connection is no longer
// this goroutine's; waited false: it has no such wait (not an fdConn, or
// its duplicate could not be made), serve it with more. A connection
// that fell back tries again on a later wait once the front holds fewer
// duplicates than its limit (and, after the descriptor table was full, a
// second has passed: waitDups.fullUntil).
func (c *conn) serveWaiting() (done, waited bool) {
	fc, ok := c.nc.(*fdConn)
	ws := &c.srv.waits
	if !ok || fc.noWait && !ws.retry() {
		return false, false
	}
	for {
		c.armUntil()
		var gone bool
		var rerr error
		err, ok := fc.waitRead(ws, func(fd int) bool {
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
			if !fc.noWait { // counted once a fall, not once a wait
				fc.noWait = true
				c.srv.waitFallback(err)
			}
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
// duplicate after it. When the duplicate cannot be made (err says why,
// ok is false) the connection waits with reads of its own socket, one
// more read per request, until a later wait makes one (serveWaiting).
func (c *fdConn) waitRead(ws *waitDups, fn func(fd int) bool) (err error, ok bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("read", net.ErrClosed), true
	}
	w := c.waiter()
	if w == nil {
		var err error
		if w, err = c.makeWaiter(ws); err != nil {
			c.mu.Unlock()
			return err, false
		}
		c.noWait = false // the owner's: waitRead runs on it
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
	ws    *waitDups // its front's, which counts it
	inUse bool      // waitRead is in rc.Read: Close leaves f to it
}

// close closes the duplicate (none: nothing) and gives its place back.
func (w *waiter) close() {
	if w != nil {
		_ = w.f.Close()
		w.ws.held.Add(-1)
	}
}

// waitDups bounds the duplicates a front's keep-alive waits hold at
// once: each is a second descriptor for an idle kept-alive connection,
// taken from the process's limit (RLIMIT_NOFILE) that accepted
// WebSockets share. At most Server.KeepAliveWaitDescriptors (default an
// eighth of the limit; set by Serve); a connection beyond it, or one
// whose dup fails (EMFILE), waits with the file's Read (fallbacks counts
// such falls; the front logs the first and then at most one a minute,
// logged) and tries again on a later wait (retry).
type waitDups struct {
	limit     atomic.Int64
	held      atomic.Int64
	fallbacks atomic.Uint64
	logged    atomic.Int64 // Unix nanoseconds of the last log line
	// fullUntil: after a dup found the descriptor table full, no
	// fallen-back connection tries again before this time (nanoseconds
	// since mono.Start): a retry then costs a failed fcntl.
	fullUntil atomic.Int64
}

// fullBackoff is how long after an EMFILE fallen-back connections do not
// try for a duplicate again.
const fullBackoff = time.Second

// errWaitLimit: the duplicates held reached waitDups.limit.
var errWaitLimit = errors.New("keep-alive wait descriptors at their limit")

// KeepAliveWaits reports the duplicate descriptors the front's keep-alive
// connections hold for their waits between requests, their limit, and
// how many times a connection fell back to waiting without one (the
// limit reached, or no descriptor left).
func (s *Server) KeepAliveWaits() (held, limit int64, fallbacks uint64) {
	return s.waits.held.Load(), s.waits.limit.Load(), s.waits.fallbacks.Load()
}

// setLimit sets the bound: n, none for a negative n, or for 0 an eighth
// of the descriptor limit (the soft one, which the runtime raises to the
// hard one at start).
func (ws *waitDups) setLimit(n int) {
	switch {
	case n < 0:
		n = 0
	case n == 0:
		var rl syscall.Rlimit
		n = 1024
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur > 0 {
			n = int(min(rl.Cur, 1<<40))
		}
		n /= 8
	}
	ws.limit.Store(int64(n))
}

// take takes a place for a duplicate; false at the limit.
func (ws *waitDups) take() bool {
	limit := ws.limit.Load()
	for {
		n := ws.held.Load()
		if n >= limit {
			return false
		}
		if ws.held.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// retry says whether a connection that fell back tries for a duplicate
// on this wait: there is room under the limit and the table was not
// found full within fullBackoff. Two atomic loads (and a clock read
// after an EMFILE).
func (ws *waitDups) retry() bool {
	if ws.held.Load() >= ws.limit.Load() {
		return false
	}
	until := ws.fullUntil.Load()
	return until == 0 || int64(mono.Since()) >= until
}

// waitFallback counts a connection that falls back to waiting without a
// duplicate and logs it: the first time, then at most once a minute.
func (s *Server) waitFallback(err error) {
	ws := &s.waits
	n := ws.fallbacks.Add(1)
	now := time.Now().UnixNano()
	last := ws.logged.Load()
	if last != 0 && now-last < int64(time.Minute) || !ws.logged.CompareAndSwap(last, now) {
		return
	}
	s.logf("httpfront: a keep-alive connection waits for its next request without a second descriptor "+
		"(%v; %d held, limit %d): one read more per request on it until one is free; %d falls since start",
		err, ws.held.Load(), ws.limit.Load(), n)
}

// makeWaiter duplicates the descriptor into the runtime's poller with the
// recorded read deadline, and returns it. Called under c.mu.
func (c *fdConn) makeWaiter(ws *waitDups) (*waiter, error) {
	if !ws.take() {
		return nil, errWaitLimit
	}
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(c.fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		ws.held.Add(-1)
		if e == syscall.EMFILE || e == syscall.ENFILE {
			ws.fullUntil.Store(int64(mono.Since() + fullBackoff))
		}
		return nil, os.NewSyscallError("fcntl", e)
	}
	f := os.NewFile(r, "tcp")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		ws.held.Add(-1)
		return nil, err
	}
	if c.rd != 0 {
		_ = f.SetReadDeadline(deadlineTime(c.rd))
	}
	w := &waiter{f: f, rc: rc, ws: ws}
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
