//go:build !linux

package gateway

// poller is Linux only: elsewhere every connection has a blocking reader.
type poller struct{}

var thePoller *poller

func getPoller() *poller { return nil }

func (*poller) arm(*conn) bool { return false }

func (*poller) remove(*conn)   {}
func (*poller) add(*conn) bool { return false }
