package bench

import (
	"fmt"
	"net"
	"testing"
)

// TestReservePorts: the route ports are below the ephemeral range, one on
// each node's address, held (another listener cannot take one) until
// release.
func TestReservePorts(t *testing.T) {
	ports, release, err := reservePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range ports {
		if p >= ephemeralLow() {
			t.Errorf("port %d is in the ephemeral range (from %d)", p, ephemeralLow())
		}
		if ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", nodeIP(k), p)); err == nil {
			ln.Close()
			t.Errorf("port %d on %s was not held", p, nodeIP(k))
		}
	}
	release()
}
