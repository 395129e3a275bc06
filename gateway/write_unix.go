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
func writeFD(fd uintptr, bufs [][]byte, skip int, iov *iovecs) (int, error) {
	var (
		n   int
		err error
	)
	if len(bufs) == 1 {
		n, err = syscall.Write(int(fd), bufs[0][skip:])
	} else {
		n, err = writev(fd, bufs, skip, iov)
	}
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return 0, nil
	}
	return max(n, 0), err
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
	n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	clear(iov) // no references to the frames left in the pool
	*scratch = iov[:0]
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
