//go:build !windows

package cluster

import (
	"errors"
	"syscall"
)

// connRefused and connReset report whether err is a connect refused (no
// listener on the port) or a connection reset by its peer.
func connRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
func connReset(err error) bool   { return errors.Is(err, syscall.ECONNRESET) }
