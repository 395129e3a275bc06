package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterStalledWatchRecreated: A's registry watcher stops delivering
// (as nats.go's ordered consumer does when it lived on a killed node's
// server: it recreated itself only after 10–20 s without activity, more
// across the stream's leader election). B renews its entry, A renews its
// own: A learned a revision its watch has not delivered, takes the watch
// for stalled and recreates it, and B's renewal reaches A. Without that,
// nothing more reached A through its watch.
func TestClusterStalledWatchRecreated(t *testing.T) {
	parallel(t)
	hubs := startHubs(t, embeddedConfigs(t, 3))
	a, b := hubs[0], hubs[1]
	before := a.PeerRev(b.Self())
	a.StallWatch()
	// Each renews until a renewal of its own goes through (one may time
	// out on a loaded machine).
	var rev uint64
	testenv.Eventually(t, 20*time.Second, func() error {
		if rev = b.Renew(); rev <= before {
			return fmt.Errorf("node %02x's entry is at revision %d (%d before)", b.Self(), rev, before)
		}
		return nil
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		if r := a.Renew(); r <= rev {
			return fmt.Errorf("node %02x's entry is at revision %d, before %02x's %d", a.Self(), r, b.Self(), rev)
		}
		return nil
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		if got := a.PeerRev(b.Self()); got < rev {
			return fmt.Errorf("node %02x holds revision %d of %02x's entry, want %d or later (watch recreated %d times)", a.Self(), got, b.Self(), rev, a.WatchRestarts())
		}
		return nil
	})
	if a.WatchRestarts() == 0 {
		t.Fatalf("node %02x's watch was not recreated", a.Self())
	}
}
