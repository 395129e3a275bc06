//go:build !linux

package gateway

import "net"

// waitReadable returns at once where the MSG_PEEK wait is not implemented;
// the pooled reader is then held while the connection waits.
func waitReadable(net.Conn) error { return nil }
