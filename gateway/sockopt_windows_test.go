package gateway_test

import "syscall"

// setRcvbuf sets a socket's SO_RCVBUF, ignoring a failure.
func setRcvbuf(fd uintptr, n int) {
	_ = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
