//go:build linux

package gateway

import (
	"sync"
	"syscall"

	"github.com/wsgate/wsgate/internal/epoll"
	"github.com/wsgate/wsgate/internal/rawsys"
)

// poller watches idle connections' sockets for readability with one epoll
// instance of its own, so an idle plain-TCP connection has no goroutine:
// its socket is registered level-triggered and one-shot, and when it turns
// readable (data, EOF or an error) the connection's read turn runs on a
// pooled goroutine (conn.readable), which reads what is there and re-arms
// the registration. The runtime's own poller keeps the socket too (its
// reads and writes still park in it); the two epoll instances are
// independent.
//
// One poller serves the whole process, started with the first connection
// and never stopped: one goroutine, blocked in epoll_wait on its own
// thread.
type poller struct {
	epfd int

	mu    sync.Mutex
	slots []pollSlot // by file descriptor
}

// pollSlot is the connection registered under a descriptor. gen tells a
// stale event (for a connection whose descriptor was closed and reused
// since epoll_wait returned it) from a current one.
type pollSlot struct {
	c   *conn
	gen uint32
}

var (
	pollOnce   sync.Once
	thePoller  *poller // nil where epoll could not be set up
	pollEvents = uint32(syscall.EPOLLIN | syscall.EPOLLRDHUP | epollOneShot)
)

const epollOneShot = 1 << 30 // EPOLLONESHOT; syscall's constant is negative on some ports

// getPoller returns the process's poller, nil if epoll is unavailable
// (then connections keep a reader goroutine each).
func getPoller() *poller {
	pollOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		thePoller = &poller{epfd: fd}
		go thePoller.run()
	})
	return thePoller
}

// add registers c's socket, armed. It reports false if the socket is
// already closed or epoll refused it; the caller then reads c with a
// goroutine.
func (p *poller) add(c *conn) bool { return p.ctl(c, syscall.EPOLL_CTL_ADD) }

// arm re-enables c's one-shot registration after a read turn. Level
// triggered: bytes that arrived during the turn fire it at once.
func (p *poller) arm(c *conn) bool { return p.ctl(c, syscall.EPOLL_CTL_MOD) }

// remove forgets c's registration; called before the socket is closed,
// while its descriptor is still c's. No epoll_ctl: closing the socket
// (its only descriptor) takes it out of the epoll set, and an event that
// fires before then finds no connection in the slot and is dropped.
func (p *poller) remove(c *conn) { p.ctl(c, syscall.EPOLL_CTL_DEL) }

// ctl runs epoll_ctl on c's descriptor inside RawConn.Control, which keeps
// the descriptor open (and so c's) meanwhile; false if it is closed or
// epoll_ctl failed.
func (p *poller) ctl(c *conn, op int) bool {
	o := pollOps.Get().(*pollOp)
	o.p, o.c, o.op, o.ok = p, c, op, false
	_ = c.rc.Control(o.fn)
	ok := o.ok
	o.p, o.c = nil, nil
	pollOps.Put(o)
	return ok
}

// pollOp is one ctl call, pooled with its callback bound once (a closure
// handed to Control escapes: an allocation per read turn).
type pollOp struct {
	p  *poller
	c  *conn
	op int
	ok bool
	fn func(fd uintptr)
}

var pollOps = sync.Pool{New: func() any {
	o := &pollOp{}
	o.fn = o.do
	return o
}}

func (o *pollOp) do(fd uintptr) {
	p, c := o.p, o.c
	switch o.op {
	case syscall.EPOLL_CTL_ADD:
		p.mu.Lock()
		if int(fd) >= len(p.slots) {
			p.slots = append(p.slots, make([]pollSlot, int(fd)+1-len(p.slots))...)
		}
		s := &p.slots[fd]
		s.gen++
		s.c = c
		c.pollGen = s.gen
		p.mu.Unlock()
	case syscall.EPOLL_CTL_DEL:
		p.mu.Lock()
		if int(fd) < len(p.slots) && p.slots[fd].c == c {
			p.slots[fd].c = nil
		}
		p.mu.Unlock()
		o.ok = true
		return
	}
	ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(fd), Pad: int32(c.pollGen)}
	o.ok = rawsys.EpollCtl(p.epfd, o.op, int(fd), &ev) == nil
	if !o.ok && o.op == syscall.EPOLL_CTL_ADD {
		p.mu.Lock()
		p.slots[fd].c = nil
		p.mu.Unlock()
	}
}

func (p *poller) run() {
	ready := make([]*conn, 0, 256)
	epoll.Loop(p.epfd, "gateway", func(events []syscall.EpollEvent) {
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events {
			fd := int(ev.Fd)
			if fd < len(p.slots) && p.slots[fd].c != nil && p.slots[fd].gen == uint32(ev.Pad) {
				ready = append(ready, p.slots[fd].c)
			}
		}
		p.mu.Unlock()
		for i, c := range ready {
			c.readable()
			ready[i] = nil
		}
	})
}
