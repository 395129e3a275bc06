//go:build !linux

package httpfront

// parkForHead is Linux only: elsewhere a connection's goroutine waits
// for its first head.
func (c *conn) parkForHead() bool { return false }

func (c *conn) unpark() {}
