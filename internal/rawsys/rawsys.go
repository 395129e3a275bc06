//go:build unix

// Package rawsys makes the non-blocking system calls of the process's own
// sockets (accept4, read, write, writev, epoll_ctl on descriptors outside
// the runtime's poller) without entering the scheduler's system-call
// state. A call through package syscall tells the scheduler it may block:
// the first one after the process was idle wakes the runtime's monitor
// thread (sysmon), which then polls every 20 µs for a while, and the P
// counts as in a system call. These calls never block (the descriptors
// are non-blocking), so that bookkeeping buys nothing.
//
// Under the race detector the calls go through package syscall, whose
// annotations order a write before the read that sees its bytes; so do
// the calls made with Sys, on every build; and every call does outside
// Linux.
package rawsys

import (
	"io"
	"syscall"
	"unsafe"
)

// A Path is how a read or write enters the kernel.
type Path bool

const (
	// Raw is a raw system call, outside the scheduler's system-call state
	// (through package syscall under the race detector).
	Raw Path = false
	// Sys is a call through package syscall, in the scheduler's
	// system-call state: for a goroutine that writes a lot (the gateway's
	// flusher and writer goroutines), where raw writes made a burst of
	// group publishes cost 2.8-4x the server CPU per delivery: the
	// flushers wrote each frame as it came instead of several per writev
	// (BENCHMARKS.md, "Raw frame writes and bursts, session 7").
	Sys Path = true
)

// ReadNB is one read(2) of a non-blocking descriptor (Raw), retried while
// it is interrupted (EINTR). again is true when there is nothing to read
// yet (EAGAIN); a read of nothing is io.EOF.
func ReadNB(fd int, p []byte) (n int, again bool, err error) {
	n, again, err = nb(Raw, syscall.SYS_READ, fd, unsafe.Pointer(unsafe.SliceData(p)), len(p))
	if n == 0 && !again && err == nil {
		err = io.EOF
	}
	return n, again, err
}

// WriteNB is one write(2) of p to a non-blocking descriptor, retried while
// it is interrupted (EINTR). again is true when the socket takes nothing
// (EAGAIN).
func WriteNB(fd int, p []byte, path Path) (n int, again bool, err error) {
	return nb(path, syscall.SYS_WRITE, fd, unsafe.Pointer(unsafe.SliceData(p)), len(p))
}

// WritevNB is WriteNB with writev(2) of iov.
func WritevNB(fd int, iov []syscall.Iovec, path Path) (n int, again bool, err error) {
	return nb(path, syscall.SYS_WRITEV, fd, unsafe.Pointer(unsafe.SliceData(iov)), len(iov))
}

// nb is call retried while it is interrupted (EINTR); a descriptor that is
// not ready (EAGAIN) reports again, and n is 0 with again or an error.
func nb(path Path, trap uintptr, fd int, p unsafe.Pointer, n int) (int, bool, error) {
	for {
		m, err := call(path, trap, fd, p, n)
		switch err {
		case nil:
			return m, false, nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			return 0, true, nil
		default:
			return 0, false, err
		}
	}
}

// sys is read(2), write(2) or writev(2) (trap) of fd and the n bytes or
// iovecs at p, through package syscall: its Read and Write for the race
// detector's annotations.
func sys(trap uintptr, fd int, p unsafe.Pointer, n int) (int, error) {
	switch trap {
	case syscall.SYS_READ:
		return syscall.Read(fd, unsafe.Slice((*byte)(p), n))
	case syscall.SYS_WRITE:
		return syscall.Write(fd, unsafe.Slice((*byte)(p), n))
	}
	return result(syscall.Syscall(trap, uintptr(fd), uintptr(p), uintptr(n)))
}

// result is a system call's count, or its error.
func result(n, _ uintptr, e syscall.Errno) (int, error) {
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
