package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/natstest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// startNATS runs a standalone NATS server with JetStream on loopback: the
// external mode's NATS.
func startNATS(t *testing.T) string { return natstest.Start(t) }

func externalConfig(url, name string) cluster.Config {
	c := cluster.Config{Name: "ext", Node: cluster.NodeConfig{Name: name}, NATS: cluster.NATSConfig{URL: url}, RequestTimeoutMillis: 5000}
	c.SetDefaults()
	c.SettleSeconds = 0
	return c
}

// TestClusterNodeByte: 10 nodes started at once on an external NATS get
// distinct bytes; a static byte held by a live node refuses the second
// start with who holds it; a node that left gracefully frees its byte at
// once (its ids answer 410 everywhere) and the same name gets it back.
func TestClusterNodeByte(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	var cfgs []cluster.Config
	for i := range 10 {
		cfgs = append(cfgs, externalConfig(url, fmt.Sprintf("node-%d", i)))
	}
	hubs := startHubs(t, cfgs)
	seen := map[byte]string{}
	for i, h := range hubs {
		if prev, ok := seen[h.Self()]; ok {
			t.Fatalf("byte %d held by %s and node-%d", h.Self(), prev, i)
		}
		seen[h.Self()] = fmt.Sprintf("node-%d", i)
	}

	static := externalConfig(url, "intruder")
	static.Node.ID = cluster.NodeID(fmt.Sprint(hubs[0].Self()))
	_, err := cluster.Start(static, cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()})
	if err == nil || !strings.Contains(err.Error(), "is held by node-0") {
		t.Fatalf("static start on a held byte: %v", err)
	}

	// node-9 leaves: its connection's id answers 410 from another node
	// without waiting for any grace, and node-9 restarted gets its byte.
	last := hubs[9]
	c := hubtest.NewConn(hub.NewID(last.Self()), false)
	if err := last.Register(c); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := hubs[0].Send(ctx, c.ID(), hub.NewMessage([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	b := last.Self()
	if err := last.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := hubs[0].Send(ctx, c.ID(), hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
			return fmt.Errorf("send after the owner left: %v", err)
		}
		return nil
	})
	again, err := cluster.Start(cfgs[9], cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Self() != b {
		t.Fatalf("restarted node-9 got byte %d, had %d", again.Self(), b)
	}
	if err := hubs[0].Send(ctx, c.ID(), hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
		t.Fatalf("an id of the old incarnation: %v, want ErrGone", err)
	}
}

// TestExternalConformance: the hub conformance suite on three nodes of an
// external NATS server.
func TestExternalConformance(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	var cfgs []cluster.Config
	for i := range 3 {
		cfgs = append(cfgs, externalConfig(url, fmt.Sprintf("e%d", i)))
	}
	hubs := startHubs(t, cfgs)
	var nodes []hubtest.Node
	for _, h := range hubs {
		nodes = append(nodes, hubtest.Node{Hub: h, Byte: h.Self()})
	}
	hubtest.Run(t, nodes)
}
