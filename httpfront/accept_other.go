//go:build !linux

package httpfront

import "net"

// rawAccepter is Linux only: elsewhere the front accepts with ln.Accept.
type rawAccepter struct{ waited bool }

func newRawAccepter(net.Listener, bool) *rawAccepter { return nil }

func (*rawAccepter) accept() (net.Conn, error) { panic("unreachable") }

func (*rawAccepter) close() {}

func (*rawAccepter) loop() *rawAccepter { panic("unreachable") }

func (*rawAccepter) acceptNow() (net.Conn, error) { panic("unreachable") }
