//go:build linux

// Package epoll is the wait loop of the process's own epoll instances
// (the gateway's poller of idle WebSockets, the front's of connections
// waiting for a request head).
package epoll

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// Loop waits on epfd forever, on its goroutine (blocked in epoll_wait on
// its own thread), and hands each batch of events to handle. An error
// other than EINTR is a bug (EBADF, EFAULT, EINVAL): it panics, naming who.
func Loop(epfd int, who string, handle func([]syscall.EpollEvent)) {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			panic(who + ": epoll_wait: " + err.Error())
		}
		handle(events[:n])
	}
}

// Start runs the wait loop of epfd on a goroutine of its own that waits
// in the runtime's poller (epfd is itself registered there, edge
// triggered), not in a blocking epoll_wait: a batch of events wakes it as
// any goroutine waiting on a socket is woken, by a thread already in the
// scheduler, and the goroutines handle readies run on that thread as soon
// as the loop parks again. A thread blocked in epoll_wait instead holds
// its P while it waits (the runtime takes it back only after up to 10 ms
// when idle) and, woken, must get one back before the woken goroutines
// can run. Every registration of epfd must be edge-triggered or one-shot:
// the loop waits again once epoll_wait returns fewer events than it asked
// for, and a level-triggered entry still ready would not wake the
// runtime's poller again. false: epfd could not be registered there (the
// caller runs Loop instead).
func Start(epfd int, who string, handle func([]syscall.EpollEvent)) bool {
	if syscall.SetNonblock(epfd, true) != nil {
		return false
	}
	f := os.NewFile(uintptr(epfd), who+" epoll")
	if f.SetReadDeadline(time.Time{}) != nil { // not in the runtime's poller
		_ = syscall.SetNonblock(epfd, false)
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	go func() {
		events := make([]syscall.EpollEvent, 256)
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, err := syscall.EpollWait(int(fd), events, 0)
				if err != nil {
					if err == syscall.EINTR {
						continue
					}
					panic(who + ": epoll_wait: " + err.Error())
				}
				if n > 0 {
					handle(events[:n])
				}
				if n < len(events) {
					return false // drained: wait for the next event
				}
			}
		})
		// f is never closed (kept reachable here, so no finalizer closes
		// it either): an error is a bug.
		runtime.KeepAlive(f)
		panic(who + ": waiting in the runtime's poller: " + err.Error())
	}()
	return true
}
