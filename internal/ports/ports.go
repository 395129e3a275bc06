// Package ports finds TCP ports for servers that must be told their
// port before they start (a NATS cluster's routes name each other's), in
// the bench and the tests.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// Reserve finds n free ports, the k-th on host(k), and holds them until
// release. The ports are drawn at random from below the kernel's
// ephemeral range, where no listener on port 0 and no outgoing
// connection's source port takes one between release and the server's
// bind (a port of that range let go could be handed out again at once);
// another process that picks its own ports may still take one then, so
// callers start again on other ports when a bind fails.
func Reserve(n int, host func(k int) string) (ports []int, release func(), err error) {
	var lns []net.Listener
	release = func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	low, high := 10000, EphemeralLow()
	if high-low < 1000 {
		low = 1024 // a wide ephemeral range: what is left below it
	}
	for k, tries := 0, 0; k < n; tries++ {
		if tries > 1000 {
			release()
			return nil, nil, fmt.Errorf("no free port on %s in %d-%d", host(k), low, high-1)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host(k), fmt.Sprint(low+rand.IntN(high-low))))
		if err != nil {
			continue // taken
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		k++
	}
	return ports, release, nil
}

// EphemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func EphemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 1024 {
		return 32768
	}
	return lo
}
