//go:build unix

package server

import "syscall"

// setKeepAlive turns SO_KEEPALIVE on for a listening socket; the sockets
// it accepts inherit it.
func setKeepAlive(fd uintptr) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
}
