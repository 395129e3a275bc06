//go:build linux

package httpfront

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/wsgate/wsgate/internal/epoll"
	"github.com/wsgate/wsgate/internal/rawsys"
)

// poller holds the front's connections that wait for their first request
// head with no goroutine, in one epoll instance of its own that itself
// waits in the runtime's poller (epoll.Loop): when a socket turns
// readable, the connection is served on a pooled goroutine (conn.resume),
// which reads the socket directly (an fdConn, outside the runtime's
// poller). Each is registered one-shot: most become WebSockets,
// registered in the gateway's poller (a separate instance), and a spent
// one-shot registration needs no epoll_ctl to leave. A first head that
// stops halfway parks again (the registration re-armed).
//
// A keep-alive connection does not park here between requests: its
// goroutine waits in the runtime's poller. Parking it here was built and
// measured (BENCHMARKS.md, "keep-alive connections in the front's event
// loop, session 7"): the read that returns EAGAIN it saves costs less
// than handing each wake-up from the poller's goroutine to a pooled one,
// which wakes a second thread per request.
//
// The header timeouts of parked connections are not timers: a sweep
// closes the parked connections whose time is up, every sweepEvery. The
// poller and the sweep serve the process.
type poller struct {
	epfd  int
	mu    sync.Mutex
	slots []pollSlot // by descriptor
}

// pollSlot is the connection registered under a descriptor; gen tells a
// stale event from a current one.
type pollSlot struct {
	c   *conn
	gen uint32
}

// conn.state values.
const (
	connOwned      = iota // a goroutine serves the connection
	connOwnedEvent        // ... and its registration fired before it parked
	connParked            // waiting in the poller, with no goroutine
)

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | 1<<30 // EPOLLONESHOT

var (
	pollOnce  sync.Once
	thePoller *poller // nil where epoll could not be set up
	// sweepEvery is how often the sweep looks for parked connections
	// whose time is up: 1 s, or less for a server with a shorter header
	// timeout (lowerSweep).
	sweepEvery atomic.Int64
)

func init() { sweepEvery.Store(int64(time.Second)) }

// lowerSweep makes the sweep run at least every tenth of d (at least
// every 10 ms): a timeout d is kept within a tenth of it.
func lowerSweep(d time.Duration) {
	if d <= 0 {
		return
	}
	every := int64(max(d/10, 10*time.Millisecond))
	for {
		cur := sweepEvery.Load()
		if every >= cur || sweepEvery.CompareAndSwap(cur, every) {
			return
		}
	}
}

func getPoller() *poller {
	pollOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		p := &poller{epfd: fd}
		go epoll.Loop(fd, "httpfront", p.handle)
		go p.sweepLoop()
		thePoller = p
	})
	return thePoller
}

// pollable reports whether the connection waits for its first head in
// the poller.
func (c *conn) pollable() bool {
	if c.blocking || c.reqs > 0 {
		return false
	}
	_, ok := c.nc.(*fdConn)
	return ok && getPoller() != nil
}

// parkForHead reads the first bytes of a fresh connection directly and,
// when none have come yet, parks it in the poller. true: the connection
// is no longer this goroutine's (parked, or closed after an error);
// false: serve it now (c.n bytes are read, or c.unread says to read).
func (c *conn) parkForHead() bool {
	fc, ok := c.nc.(*fdConn)
	if !ok || getPoller() == nil {
		return false
	}
	if closed, ready := c.readFirst(fc); closed || ready {
		return closed
	}
	switch c.park() {
	case parkDone:
		return true
	case parkEvent:
		c.unread = true
	}
	return false
}

// readFirst reads a fresh connection's first bytes into a pooled buffer
// (c.n of them) with one read that does not wait. closed: the read
// failed, and the connection is closed; ready false: nothing came yet.
func (c *conn) readFirst(fc *fdConn) (closed, ready bool) {
	c.pooled = bufPool.Get().(*[]byte)
	c.buf = *c.pooled
	n, err, ready := fc.tryRead(c.buf)
	if err != nil {
		c.close()
		return true, true
	}
	if ready {
		c.n, c.unread = n, n == len(c.buf)
	}
	return false, ready
}

// morePolled is more for a first head in the poller: it reads what the
// socket has when an event (or a read that filled the buffer) says there
// may be something, and parks otherwise. ok: bytes were read; polled
// false: not the poller's (a keep-alive connection, or one the poller
// refused), wait as any other.
func (c *conn) morePolled() (ok, polled bool) {
	if !c.pollable() {
		return false, false
	}
	fc := c.nc.(*fdConn)
	for {
		if c.unread {
			// Whatever made the socket readable until now is read below.
			c.state.Store(connOwned)
			c.makeRoom()
			n, err, again := fc.readNow(c.buf[c.n:])
			switch {
			case err != nil:
				c.close()
				return false, true
			case !again:
				c.n += n
				c.unread = c.n == len(c.buf) // more may be waiting
				return true, true
			}
			c.unread = false
		}
		switch c.park() {
		case parkDone:
			return false, true
		case parkRefused:
			return false, false
		}
		c.unread = true // its event fired before it parked
	}
}

// park results.
const (
	parkDone    = iota // parked (or closed): no longer this goroutine's
	parkEvent          // the socket turned readable meanwhile: read it
	parkRefused        // epoll refused the registration
)

// park registers the connection one-shot (or re-arms its spent
// registration) and parks it until c.waitUntil. The buffer goes back to
// the pool when nothing is left in it.
func (c *conn) park() int {
	if !thePoller.arm(c) {
		c.blocking = true
		return parkRefused
	}
	var until int64
	if !c.waitUntil.IsZero() {
		until = c.waitUntil.UnixNano()
	}
	c.until.Store(until)
	if c.off == c.n {
		c.off, c.n = 0, 0
		c.release() // a parked connection with nothing read holds no buffer
	}
	if !c.state.CompareAndSwap(connOwned, connParked) {
		c.state.Store(connOwned)
		return parkEvent
	}
	// Shutdown may have looked for parked connections just before.
	if c.srv.closing.Load() {
		c.unpark()
	}
	return parkDone
}

// arm registers c's socket one-shot, or re-arms its spent registration.
// Arming reports a socket already readable, so nothing that came before
// is missed.
func (p *poller) arm(c *conn) bool {
	fd := c.nc.(*fdConn).fd // c's owner holds the socket open
	p.mu.Lock()
	if fd >= len(p.slots) {
		p.slots = append(p.slots, make([]pollSlot, fd+1-len(p.slots))...)
	}
	sl := &p.slots[fd]
	sl.gen++
	sl.c = c
	c.parkFD, c.parkGen = fd, sl.gen
	p.mu.Unlock()
	op := syscall.EPOLL_CTL_ADD
	if c.registered {
		op = syscall.EPOLL_CTL_MOD
	}
	ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(fd), Pad: int32(c.parkGen)}
	if rawsys.EpollCtl(p.epfd, op, fd, &ev) != nil {
		p.forget(c)
		return false
	}
	c.registered = true
	return true
}

// forget clears c's slot.
func (p *poller) forget(c *conn) {
	p.mu.Lock()
	if c.parkFD < len(p.slots) && p.slots[c.parkFD].c == c {
		p.slots[c.parkFD].c = nil
	}
	p.mu.Unlock()
}

// unregister clears c's slot before its socket leaves the front
// (closed, hijacked, handed off). Its one-shot registration is spent or
// goes with the socket: no epoll_ctl.
func (c *conn) unregister() {
	if c.registered {
		thePoller.forget(c)
	}
}

// unpark closes a parked connection (Shutdown, its timeout).
func (c *conn) unpark() {
	if c.state.CompareAndSwap(connParked, connOwned) {
		c.close()
	}
}

// handle takes a batch of the poller's events.
func (p *poller) handle(events []syscall.EpollEvent) {
	var arr [64]*conn
	ready := arr[:0]
	p.mu.Lock()
	for _, ev := range events {
		fd := int(ev.Fd)
		if fd >= len(p.slots) {
			continue
		}
		if sl := &p.slots[fd]; sl.gen == uint32(ev.Pad) && sl.c != nil {
			ready = append(ready, sl.c)
			sl.c = nil // spent
		}
	}
	p.mu.Unlock()
	for i, c := range ready {
		ready[i] = nil
		c.wake()
	}
}

// wake serves a parked connection whose socket turned readable, or tells
// the goroutine about to park it that it did.
func (c *conn) wake() {
	for {
		switch c.state.Load() {
		case connParked:
			if c.state.CompareAndSwap(connParked, connOwned) {
				serving.Go(c.resumeFn)
				return
			}
		case connOwned:
			if c.state.CompareAndSwap(connOwned, connOwnedEvent) {
				return
			}
		default:
			return
		}
	}
}

func (p *poller) sweepLoop() {
	var due []*conn
	for {
		time.Sleep(time.Duration(sweepEvery.Load()))
		due = p.sweep(time.Now().UnixNano(), due[:0])
	}
}

// sweep closes the parked connections whose time is up at now; due is
// its scratch list, returned for the next sweep.
func (p *poller) sweep(now int64, due []*conn) []*conn {
	p.mu.Lock()
	for i := range p.slots {
		if c := p.slots[i].c; c != nil && c.state.Load() == connParked {
			if u := c.until.Load(); u != 0 && u <= now {
				due = append(due, c)
			}
		}
	}
	p.mu.Unlock()
	for i, c := range due {
		due[i] = nil
		if !c.state.CompareAndSwap(connParked, connOwned) {
			continue
		}
		if u := c.until.Load(); u == 0 || u > now {
			// Served and parked again since it was listed: put it back.
			if !c.state.CompareAndSwap(connOwned, connParked) {
				c.state.Store(connOwned)
				serving.Go(c.resumeFn)
			}
			continue
		}
		c.close()
	}
	return due
}

// Describe reports, for a test that lost a connection, what the front
// knows of each of its connections and what the kernel knows of their
// sockets: who has the connection (state), its slot in the poller, the
// bytes waiting on its socket, and its registration in the poller's
// epoll instance (/proc/self/fdinfo: armed or spent, and its
// generation), and whether that instance has events nobody took. It
// reads the connections' owner-only fields without their owners' order:
// a diagnostic, not for a server in use.
func (s *Server) Describe() string {
	var b strings.Builder
	p := getPoller()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var regs map[int]string
	if p != nil {
		regs = epollRegistrations(p.epfd)
		fmt.Fprintf(&b, "front epoll %d: %d registrations, events pending untaken: %v; sweep every %v\n",
			p.epfd, len(regs), pollReadable(p.epfd), time.Duration(sweepEvery.Load()))
	}
	fmt.Fprintf(&b, "%d connections tracked\n", len(conns))
	states := [...]string{connOwned: "owned", connOwnedEvent: "owned+event", connParked: "parked"}
	for _, c := range conns {
		st := strconv.Itoa(int(c.state.Load()))
		if i := c.state.Load(); int(i) < len(states) {
			st = states[i]
		}
		until := "none"
		if u := c.until.Load(); u != 0 {
			until = time.Duration(u - time.Now().UnixNano()).String()
		}
		fmt.Fprintf(&b, "conn %p: %s idle=%v until=%s", c, st, c.idle.Load(), until)
		fc, ok := c.nc.(*fdConn)
		if !ok {
			fmt.Fprintf(&b, " %T\n", c.nc)
			continue
		}
		fmt.Fprintf(&b, " fd=%d peer=%v", fc.fd, fc.peer)
		fc.mu.Lock()
		fmt.Fprintf(&b, " closed=%v promoted=%v waiter=%v", fc.closed, fc.file != nil, fc.waiter() != nil)
		fc.mu.Unlock()
		_ = fc.control(func(fd int) error {
			fmt.Fprintf(&b, " unread-in-socket=%d", socketUnread(fd))
			return nil
		})
		if p != nil {
			p.mu.Lock()
			if fc.fd < len(p.slots) {
				sl := p.slots[fc.fd]
				fmt.Fprintf(&b, " slot(mine=%v gen=%d)", sl.c == c, sl.gen)
			}
			p.mu.Unlock()
			fmt.Fprintf(&b, " epoll[%s]", regs[fc.fd])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// epollRegistrations reads an epoll instance's registrations from
// /proc/self/fdinfo, by descriptor: "events:... data:..." (a spent
// one-shot registration shows no event bits but EPOLLONESHOT's).
func epollRegistrations(epfd int) map[int]string {
	regs := make(map[int]string)
	raw, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(epfd))
	if err != nil {
		return regs
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != "tfd:" {
			continue
		}
		fd, _ := strconv.Atoi(f[1])
		regs[fd] += fmt.Sprintf("events:%s data:%s ", f[3], f[5])
	}
	return regs
}

// pollReadable reports whether fd is readable now (for an epoll instance:
// it holds events no epoll_wait took yet).
func pollReadable(fd int) bool {
	pfd := struct {
		fd             int32
		events, revent int16
	}{fd: int32(fd), events: 1} // POLLIN
	var ts syscall.Timespec
	n, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return e == 0 && n == 1
}

// socketUnread is how many bytes a socket holds unread (FIONREAD).
func socketUnread(fd int) int {
	var n int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); e != 0 {
		return -1
	}
	return int(n)
}
