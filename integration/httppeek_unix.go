//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package integration

// leanClients: the lean http client runs here (it needs sockIO.open).
const leanClients = true
