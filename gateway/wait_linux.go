//go:build linux

package gateway

import (
	"net"
	"syscall"
)

// waitReadable parks the goroutine in the runtime's poller until the socket
// is readable (data, EOF or an error), without reading: MSG_PEEK of one
// byte into the goroutine's stack. Sockets that are not syscall.Conn (TLS,
// pipes in tests) return at once and are read directly.
func waitReadable(nc net.Conn) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc.Read(readable)
}

// readable is waitReadable's callback (a function, not a closure: nothing
// escapes). A socket error or EOF counts as readable: the read that
// follows reports it.
func readable(fd uintptr) bool {
	var b [1]byte
	_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return e != syscall.EAGAIN && e != syscall.EINTR // not readable yet: let the poller wait
}
