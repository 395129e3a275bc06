package cluster_test

import (
	"strings"
	"testing"

	"github.com/wsgate/wsgate/cluster"
)

// TestConfigIsolation: nodeTimeoutMillis < isolationSeconds < leaseSeconds,
// and the default isolation follows a short lease down.
func TestConfigIsolation(t *testing.T) {
	parallel(t)
	base := func() cluster.Config {
		return cluster.Config{Node: cluster.NodeConfig{Name: "n"}, NATS: cluster.NATSConfig{URL: "nats://127.0.0.1:4222"}}
	}
	for _, tc := range []struct {
		name      string
		edit      func(*cluster.Config)
		isolation int
		err       string
	}{
		{"defaults", func(*cluster.Config) {}, 15, ""},
		{"short lease", func(c *cluster.Config) { c.LeaseSeconds = 5 }, 4, ""},
		{"isolation not below the lease", func(c *cluster.Config) { c.LeaseSeconds, c.IsolationSeconds = 10, 10 }, 10, "leaseSeconds: must be longer than isolationSeconds (10 s), got 10 s"},
		{"isolation not above the node timeout", func(c *cluster.Config) { c.IsolationSeconds = 3 }, 3, "isolationSeconds: must be longer than nodeTimeoutMillis (3000 ms), got 3 s"},
		{"lease too short for the node timeout", func(c *cluster.Config) { c.LeaseSeconds = 3 }, 2, "isolationSeconds: must be longer than nodeTimeoutMillis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			c.SetDefaults()
			if c.IsolationSeconds != tc.isolation {
				t.Errorf("isolationSeconds = %d, want %d", c.IsolationSeconds, tc.isolation)
			}
			err := c.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Validate: %v, want %q", err, tc.err)
			}
		})
	}
}
