package ports

import (
	"fmt"
	"net"
	"testing"
)

// TestReserve: the ports are below the ephemeral range, one on each
// host, held (another listener cannot take one) until release.
func TestReserve(t *testing.T) {
	nodeIP := func(k int) string { return fmt.Sprintf("127.0.0.%d", 11+k) }
	ports, release, err := Reserve(3, nodeIP)
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range ports {
		if p >= EphemeralLow() {
			t.Errorf("port %d is in the ephemeral range (from %d)", p, EphemeralLow())
		}
		if ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", nodeIP(k), p)); err == nil {
			ln.Close()
			t.Errorf("port %d on %s was not held", p, nodeIP(k))
		}
	}
	release()
}
