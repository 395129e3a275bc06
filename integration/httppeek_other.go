//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package integration

// leanClients: elsewhere the http integration keeps net/http's client.
const leanClients = false
