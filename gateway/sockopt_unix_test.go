//go:build unix

package gateway_test

import "syscall"

// setRcvbuf sets a socket's SO_RCVBUF, ignoring a failure.
func setRcvbuf(fd uintptr, n int) {
	_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
