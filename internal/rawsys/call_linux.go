//go:build linux

package rawsys

import (
	"syscall"
	"unsafe"
)

// call is read(2), write(2) or writev(2) (trap) of fd and the n bytes or
// iovecs at p: a raw system call, or through package syscall (sys) for
// Sys and under the race detector.
func call(path Path, trap uintptr, fd int, p unsafe.Pointer, n int) (int, error) {
	if path == Sys || raceEnabled {
		return sys(trap, fd, p, n)
	}
	return result(syscall.RawSyscall(trap, uintptr(fd), uintptr(p), uintptr(n)))
}
