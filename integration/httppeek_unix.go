//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package integration

import "syscall"

// leanClients: the lean http client runs here (it needs peekOpen).
const leanClients = true

// peekOpen reports whether an idle connection has nothing to read and no
// error, with a non-blocking MSG_PEEK: a backend that closed it has sent
// EOF.
func peekOpen(rc syscall.RawConn) bool {
	alive := false
	err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN
		return true // never wait
	})
	return err == nil && alive
}
