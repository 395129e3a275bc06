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
	var b [1]byte
	n, err := peek(c, b[:])
	switch {
	case err == errNoPeek:
		return readByte(c)
	case err != nil:
		return 0, c, err
	case n == 0:
		return 0, c, io.EOF
	}
	return b[0], c, nil
}

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
