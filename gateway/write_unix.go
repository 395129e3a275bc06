//go:build unix

package gateway

import "syscall"

// writeFD is one non-blocking write(2) of b to fd. A socket that is full
// (EAGAIN) or a write interrupted before it wrote (EINTR) reports 0 bytes
// and no error: the caller queues the frame for its writer goroutine.
func writeFD(fd uintptr, b []byte) (int, error) {
	n, err := syscall.Write(int(fd), b)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return 0, nil
	}
	return n, err
}
