//go:build linux

// Package epoll is the wait loop of the process's own epoll instances
// (the gateway's poller of idle WebSockets, the front's of connections
// waiting for their first head).
package epoll

import "syscall"

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
