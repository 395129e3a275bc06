//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package integration

import "syscall"

// leanClients: elsewhere the http integration keeps net/http's client.
const leanClients = false

func peekOpen(syscall.RawConn) bool { return false }
