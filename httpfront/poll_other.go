//go:build !linux

package httpfront

import (
	"net"
	"time"
)

// The poller is Linux only: elsewhere a connection's goroutine waits for
// its heads in the runtime's poller.

// connParked is a state no connection takes here.
const connParked = 2

func (c *conn) parkForHead() bool { return false }

func (c *conn) serveInline() bool { return false }

func (c *conn) goOn() {}

func (c *conn) morePolled() (ok, polled bool) { return false, false }

func (c *conn) unregister() {}

func (c *conn) unpark() {}

func lowerSweep(d time.Duration) {}

// peerString is nc.RemoteAddr().String().
func peerString(nc net.Conn) string { return nc.RemoteAddr().String() }

// Describe reports the front's connections, for a test that lost one
// (the poller's view: Linux only).
func (s *Server) Describe() string { return "" }

func growFDTable() {}
