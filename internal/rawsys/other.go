//go:build unix && !linux

package rawsys

import (
	"syscall"
	"unsafe"
)

// Read is read(2), through package syscall.
func Read(fd int, p []byte) (int, error) { return syscall.Read(fd, p) }

// Write is write(2), through package syscall.
func Write(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }

// Writev is writev(2) of iov, through package syscall.
func Writev(fd uintptr, iov []syscall.Iovec) (int, error) {
	n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// WritevSys is Writev: every call here goes through package syscall.
func WritevSys(fd uintptr, iov []syscall.Iovec) (int, error) { return Writev(fd, iov) }

// PeekEmpty reports whether a socket has nothing to read and no error
// (a MSG_PEEK|MSG_DONTWAIT recv that would block).
func PeekEmpty(fd int) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN
}
