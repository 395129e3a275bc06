package cluster

import (
	"errors"
	"syscall"
)

// Winsock's codes, which the net package returns as they are (syscall's
// ECONNREFUSED is an invented value on Windows).
const (
	wsaeconnrefused = syscall.Errno(10061)
	wsaeconnreset   = syscall.WSAECONNRESET
)

// connRefused and connReset report whether err is a connect refused (no
// listener on the port) or a connection reset by its peer.
func connRefused(err error) bool {
	return errors.Is(err, wsaeconnrefused) || errors.Is(err, syscall.ECONNREFUSED)
}
func connReset(err error) bool {
	return errors.Is(err, wsaeconnreset) || errors.Is(err, syscall.ECONNRESET)
}
