//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package integration

import (
	"syscall"

	"github.com/wsgate/wsgate/internal/rawsys"
)

// leanClients: the lean http client runs here (it needs peekOpen).
const leanClients = true

// peekOpen reports whether an idle connection has nothing to read and no
// error, with a non-blocking MSG_PEEK: a backend that closed it has sent
// EOF.
func peekOpen(rc syscall.RawConn) bool {
	alive := false
	err := rc.Read(func(fd uintptr) bool {
		alive = rawsys.PeekEmpty(int(fd))
		return true // never wait
	})
	return err == nil && alive
}
