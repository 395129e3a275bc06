package cluster

import (
	"net"
	"testing"

	"github.com/wsgate/wsgate/hub"
)

// TestEmbeddedInProcess: with an embedded server the node's own
// connections are TCP to the client listener by default, and in-memory
// pipes with nats.embedded.inProcess: true.
func TestEmbeddedInProcess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		inProcess bool
		wantPipe  bool
	}{
		{"default", false, false},
		{"inProcess", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{
				Name: "inproc",
				Node: NodeConfig{Name: "n1"},
				NATS: NATSConfig{Embedded: &EmbeddedConfig{
					Listen:    "127.0.0.1:0",
					InProcess: tc.inProcess,
					StoreDir:  t.TempDir(),
				}},
				RequestTimeoutMillis: 10000,
			}
			cfg.SetDefaults()
			cfg.SettleSeconds = 0
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			h, err := Start(cfg, Options{Memory: hub.NewMemory(hub.Limits{})})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.Close() })
			for role, nc := range map[string]interface{ ConnectedAddr() string }{"ctl": h.ctl, "data": h.data} {
				addr := nc.ConnectedAddr()
				_, _, splitErr := net.SplitHostPort(addr)
				if isPipe := splitErr != nil; isPipe != tc.wantPipe {
					t.Errorf("%s connection is connected to %q; want in-process %v", role, addr, tc.wantPipe)
				}
			}
		})
	}
}
