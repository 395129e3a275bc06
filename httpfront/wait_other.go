//go:build !linux

package httpfront

// serveWaiting is Linux only (wait_linux.go): elsewhere a keep-alive
// connection waits in more.
func (c *conn) serveWaiting() (done, waited bool) { return false, false }

// waitDups is Linux only: elsewhere no keep-alive wait holds a second
// descriptor.
type waitDups struct{}

func (*waitDups) setLimit(int) {}

// KeepAliveWaits is Linux only: elsewhere no keep-alive wait holds a
// second descriptor.
func (s *Server) KeepAliveWaits() (held, limit int64, fallbacks uint64) { return 0, 0, 0 }
