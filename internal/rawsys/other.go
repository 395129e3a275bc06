//go:build unix && !linux

package rawsys

import (
	"syscall"
	"unsafe"
)

// call is read(2), write(2) or writev(2) (trap) of fd and the n bytes or
// iovecs at p, through package syscall on every path here.
func call(_ Path, trap uintptr, fd int, p unsafe.Pointer, n int) (int, error) {
	return sys(trap, fd, p, n)
}

// PeekEmpty reports whether a socket has nothing to read and no error
// (a MSG_PEEK|MSG_DONTWAIT recv that would block).
func PeekEmpty(fd int) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN
}
