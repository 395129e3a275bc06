//go:build linux

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
// annotations order a write before the read that sees its bytes.
package rawsys

import (
	"syscall"
	"unsafe"
)

// Writev is writev(2) of iov.
func Writev(fd uintptr, iov []syscall.Iovec) (int, error) {
	if raceEnabled {
		return WritevSys(fd, iov)
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// WritevSys is writev(2) of iov through package syscall, in the
// scheduler's system-call state: for a goroutine that writes a lot (the
// gateway's flusher), where the raw call measured worse.
func WritevSys(fd uintptr, iov []syscall.Iovec) (int, error) {
	n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Write is write(2).
func Write(fd int, p []byte) (int, error) {
	if raceEnabled || len(p) == 0 {
		return syscall.Write(fd, p)
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// Read is read(2).
func Read(fd int, p []byte) (int, error) {
	if raceEnabled || len(p) == 0 {
		return syscall.Read(fd, p)
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
