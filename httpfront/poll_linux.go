//go:build linux

package httpfront

import (
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/epoll"
	"github.com/wsgate/wsgate/internal/rawsys"
)

// headPoller holds the connections the front accepted before their first
// bytes came, with no goroutine and no read buffer, in one epoll instance
// of its own: each socket registered one-shot, and when it turns readable
// the connection is served on a fresh goroutine (conn.resume), its head
// read directly (the socket is an fdConn, not in the runtime's poller).
// Waiting in the runtime's poller instead would cost an fcntl, an
// epoll_ctl ADD and, at close, a DEL per connection (fdConn.promote).
//
// The registration is left in the epoll set once it fired (it is
// disabled, one-shot): closing the socket drops it, and a WebSocket the
// connection becomes is registered in the gateway's poller, a separate
// instance. One poller serves the process: one goroutine in epoll_wait.
type headPoller struct {
	epfd  int
	mu    sync.Mutex
	slots []headSlot // by descriptor
}

// headSlot is the connection parked under a descriptor; gen tells a stale
// event from a current one.
type headSlot struct {
	c   *conn
	gen uint32
}

var (
	headPollOnce  sync.Once
	theHeadPoller *headPoller // nil where epoll could not be set up
)

const headPollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | 1<<30 // EPOLLONESHOT

func getHeadPoller() *headPoller {
	headPollOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		theHeadPoller = &headPoller{epfd: fd}
		go theHeadPoller.run()
	})
	return theHeadPoller
}

// parkForHead reads the first bytes of a fresh connection directly and,
// when none have come yet, parks it in the head poller. true: the
// connection is no longer this goroutine's (parked, or closed after an
// error); false: serve it now (c.n bytes are read, or the socket waits
// in the runtime's poller as any other).
func (c *conn) parkForHead() bool {
	fc, ok := c.nc.(*fdConn)
	if !ok {
		return false
	}
	p := getHeadPoller()
	if p == nil {
		return false
	}
	c.pooled = bufPool.Get().(*[]byte)
	c.buf = *c.pooled
	n, err, ready := fc.tryRead(c.buf)
	switch {
	case err != nil:
		c.close()
		return true
	case ready:
		c.n = n
		return false
	}
	c.release() // a parked connection holds no buffer
	c.parked.Store(true)
	var added bool
	_ = fc.control(func(fd int) error {
		added = p.add(c, fd, c.srv.headerTimeout())
		return nil
	})
	if added || !c.parked.CompareAndSwap(true, false) {
		return true // parked, or the header timeout already took it
	}
	return false // epoll refused it: serve it, waiting as any other
}

// add registers c under fd, armed, with its header timeout d (none when
// 0); false: epoll refused it (the timer is stopped).
func (p *headPoller) add(c *conn, fd int, d time.Duration) bool {
	p.mu.Lock()
	if fd >= len(p.slots) {
		p.slots = append(p.slots, make([]headSlot, fd+1-len(p.slots))...)
	}
	sl := &p.slots[fd]
	sl.gen++
	sl.c = c
	c.parkFD, c.parkGen = fd, sl.gen
	if d > 0 {
		c.parkTimer = time.AfterFunc(d, c.headTimeout)
	}
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: headPollEvents, Fd: int32(fd), Pad: int32(c.parkGen)}
	if rawsys.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) != nil {
		p.forget(c).Stop()
		return false
	}
	return true
}

// forget clears c's slot (its registration is spent, or goes with the
// socket) and returns its header timer, to stop.
func (p *headPoller) forget(c *conn) stopper {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.parkFD < len(p.slots) && p.slots[c.parkFD].c == c {
		p.slots[c.parkFD].c = nil
	}
	if c.parkTimer == nil {
		return noTimer{}
	}
	return c.parkTimer
}

type stopper interface{ Stop() bool }

type noTimer struct{}

func (noTimer) Stop() bool { return false }

// headTimeout closes a connection whose first head did not start within
// the header timeout.
func (c *conn) headTimeout() {
	if c.parked.CompareAndSwap(true, false) {
		theHeadPoller.forget(c)
		c.close()
	}
}

// unpark closes a parked connection (Shutdown).
func (c *conn) unpark() {
	if c.parked.CompareAndSwap(true, false) {
		theHeadPoller.forget(c).Stop()
		c.close()
	}
}

func (p *headPoller) run() {
	ready := make([]*conn, 0, 256)
	epoll.Loop(p.epfd, "httpfront", func(events []syscall.EpollEvent) {
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events {
			if fd := int(ev.Fd); fd < len(p.slots) && p.slots[fd].gen == uint32(ev.Pad) && p.slots[fd].c != nil {
				ready = append(ready, p.slots[fd].c)
			}
		}
		p.mu.Unlock()
		for i, c := range ready {
			ready[i] = nil
			if c.parked.CompareAndSwap(true, false) {
				p.forget(c).Stop()
				serving.Go(c.resume)
			}
		}
	})
}
