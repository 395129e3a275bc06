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
	var peekErr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if e == syscall.EAGAIN || e == syscall.EINTR {
			return false // not readable yet: let the poller wait
		}
		peekErr = e // nil (data or EOF) or a socket error the read will report
		return true
	})
	if err != nil {
		return err
	}
	_ = peekErr
	return nil
}
