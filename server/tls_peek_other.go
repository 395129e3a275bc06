//go:build !unix

package server

import "net"

// peek cannot look ahead without consuming here.
func peek(net.Conn, []byte) (int, error) { return 0, errNoPeek }
