//go:build unix

package server

import (
	"io"
	"net"
	"syscall"
)

// peek copies the bytes that have arrived on c (at least one, waiting for
// it under c's read deadline; at most len(b)) into b without consuming
// them. errNoPeek: c is not a socket.
func peek(c net.Conn, b []byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errNoPeek
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, errNoPeek
	}
	var (
		n       int
		peekErr error
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, peekErr = syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return peekErr != syscall.EAGAIN && peekErr != syscall.EINTR
	})
	switch {
	case err != nil:
		return 0, err
	case peekErr != nil:
		return 0, peekErr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
