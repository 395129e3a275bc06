//go:build unix

package server

import (
	"io"
	"net"
	"syscall"
)

// peekByte returns c's first byte without consuming it (MSG_PEEK, waiting
// in the runtime's poller under c's read deadline), and c itself, so a
// plaintext connection stays a *net.TCPConn. A connection that is not a
// socket is read and wrapped instead.
func peekByte(c net.Conn) (byte, net.Conn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return readByte(c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return readByte(c)
	}
	var (
		b       [1]byte
		n       int
		peekErr error
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return peekErr != syscall.EAGAIN && peekErr != syscall.EINTR
	})
	switch {
	case err != nil:
		return 0, c, err
	case peekErr != nil:
		return 0, c, peekErr
	case n == 0:
		return 0, c, io.EOF
	}
	return b[0], c, nil
}
