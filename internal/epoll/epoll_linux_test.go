//go:build linux

package epoll

import (
	"syscall"
	"testing"
	"time"
)

// TestLoopDeliversEachReadiness: Loop, waiting in the runtime's poller,
// hands over an event each time a registered descriptor turns readable,
// also after it drained the previous batch and went back to waiting.
func TestLoopDeliversEachReadiness(t *testing.T) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(p[1])
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | 1<<30, Fd: int32(p[0])} // one-shot
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		t.Fatal(err)
	}
	got := make(chan int32, 16)
	go Loop(epfd, "test", func(events []syscall.EpollEvent) {
		for _, e := range events {
			got <- e.Fd
		}
	})
	var b [8]byte
	for i := range 3 {
		if _, err := syscall.Write(p[1], []byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case fd := <-got:
			if fd != int32(p[0]) {
				t.Fatalf("round %d: event for fd %d, want %d", i, fd, p[0])
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no event within 10 s", i)
		}
		if _, err := syscall.Read(p[0], b[:]); err != nil {
			t.Fatal(err)
		}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_MOD, p[0], &ev); err != nil {
			t.Fatal(err)
		}
	}
}
