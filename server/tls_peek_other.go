//go:build !unix

package server

import "net"

// peekByte reads c's first byte and gives it back through a wrapper.
func peekByte(c net.Conn) (byte, net.Conn, error) { return readByte(c) }

// peek cannot look ahead without consuming here.
func peek(net.Conn, []byte) (int, error) { return 0, errNoPeek }
