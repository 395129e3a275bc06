//go:build linux

// Package epoll is the wait loop of the process's own epoll instances
// (the gateway's poller of idle WebSockets, the front's of connections
// waiting for a request head).
package epoll

import (
	"os"
	"sync"
	"syscall"

	"github.com/wsgate/wsgate/internal/rawsys"
)

// Loop waits on epfd forever, on its goroutine, and hands each batch of
// events to handle. An error other than EINTR is a bug (EBADF, EFAULT,
// EINVAL): it panics, naming who.
//
// The goroutine waits in the runtime's poller, where epfd itself is
// registered (an epoll instance is readable while events are ready), and
// takes the events with non-blocking epoll_waits. A thread blocked in
// epoll_wait instead holds its P in a system call until the runtime's
// monitor takes it back, which keeps that monitor waking every 20 µs and
// costs a hand-off of the P at each wake-up.
//
// Every registration of epfd must be edge-triggered or one-shot: the loop
// waits again as soon as an epoll_wait returns fewer events than it asked
// for (without a last one that returns none), and epfd, registered edge
// triggered in the runtime's poller, turns readable again only when an
// event is added to its ready list; a level-triggered entry still ready
// would not wake it.
func Loop(epfd int, who string, handle func([]syscall.EpollEvent)) {
	events := make([]syscall.EpollEvent, 256)
	if rc := pollable(epfd, who); rc != nil {
		_ = rc.Read(func(fd uintptr) bool {
			for {
				n, err := rawsys.EpollWaitNow(int(fd), events)
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
					return false // drained: wait in the runtime's poller
				}
			}
		})
		// Only an epfd the runtime's poller refused gets here: wait in
		// epoll_wait instead.
	}
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

// files keeps the os.Files wrapping the epoll instances reachable: the
// instances live as long as the process, and a collected File would close
// its descriptor.
var (
	filesMu sync.Mutex
	files   []*os.File
)

// pollable registers epfd in the runtime's poller; nil if it cannot.
func pollable(epfd int, who string) syscall.RawConn {
	if syscall.SetNonblock(epfd, true) != nil {
		return nil
	}
	f := os.NewFile(uintptr(epfd), who+" epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	filesMu.Lock()
	files = append(files, f)
	filesMu.Unlock()
	return rc
}
