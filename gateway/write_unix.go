//go:build unix

package gateway

import (
	"syscall"
	"unsafe"
)

// iovecs is writeFD's scratch for writev's buffers.
type iovecs = []syscall.Iovec

// writeFD is one non-blocking write(2) of bufs, less the first skip bytes
// of bufs[0], or writev(2) when there are several. A socket that is full
// (EAGAIN) or a write interrupted before it wrote (EINTR) reports 0 bytes
// and no error: the caller queues the rest for its writer goroutine.
//
// The calls are raw syscalls, made without telling the scheduler: the
// socket is non-blocking, so they never sleep, and a fan-out makes
// thousands back to back. Through syscall.Write, each one that ran past
// the runtime's 20 µs mark (a loopback write runs the receiver's side of
// TCP too) had its P handed to another thread; the raw calls measured
// less server CPU per delivery in 3 of 4 alternating pairs (BENCHMARKS.md).
func writeFD(fd uintptr, bufs [][]byte, skip int, iov *iovecs) (int, error) {
	var (
		n   int
		err error
	)
	if len(bufs) == 1 {
		b := bufs[0][skip:]
		r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		n = int(r)
		if errno != 0 {
			err = errno
		}
	} else {
		n, err = writev(fd, bufs, skip, iov)
	}
	if err != nil {
		if err == syscall.EAGAIN || err == syscall.EINTR {
			err = nil
		}
		return 0, err
	}
	return n, nil
}

// writev writes bufs, less the first skip bytes of bufs[0], with one
// writev(2).
func writev(fd uintptr, bufs [][]byte, skip int, scratch *iovecs) (int, error) {
	iov := (*scratch)[:0]
	for i, b := range bufs {
		if i == 0 {
			b = b[skip:]
		}
		if len(b) > 0 {
			v := syscall.Iovec{Base: unsafe.SliceData(b)}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
	}
	if len(iov) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	clear(iov) // no references to the frames left in the pool
	*scratch = iov[:0]
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
