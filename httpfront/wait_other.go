//go:build !linux

package httpfront

// serveWaiting is Linux only (wait_linux.go): elsewhere a keep-alive
// connection waits in more.
func (c *conn) serveWaiting() (done, waited bool) { return false, false }
