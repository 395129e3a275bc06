package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// BenchmarkShutdownDrain times what DrainGroups (the first step of a
// node's graceful shutdown in the cluster, before its clients close)
// costs, per call, with every peer answering and with 1 and 3 live peers
// that do not answer (a registry entry up and a subscription on its .d
// subject that never replies: a peer that hangs, or is cut off and not
// yet declared gone). It then times the node's Close once (close-ms): the
// registry entry's delete and the connections. Run:
//
//	go test -run '^$' -bench BenchmarkShutdownDrain -benchtime 5x ./cluster
func BenchmarkShutdownDrain(b *testing.B) {
	for _, silent := range []int{0, 1, 3} {
		b.Run(fmt.Sprintf("silent=%d", silent), func(b *testing.B) {
			cfgs := patient(embeddedConfigs(b, 3))
			for i := range cfgs {
				cfgs[i].RequestTimeoutMillis = 1000 // the default: what a silent peer costs
			}
			hubs := startHubs(b, cfgs)
			a := hubs[0]
			if silent > 0 {
				addSilentPeers(b, cfgs[1], hubs[1].ClientURL(), a, silent)
			}
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				a.DrainGroups(ctx)
			}
			b.StopTimer()
			start := time.Now()
			_ = a.Close()
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "close-ms")
		})
	}
}

// addSilentPeers writes n registry entries up (bytes 200 on) and
// subscribes each one's .d subject through cfg's NATS server (at url)
// without ever answering, then waits until a sees them all.
func addSilentPeers(b *testing.B, cfg cluster.Config, url string, a *cluster.Hub, n int) {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "WSGATE_"+cfg.Name+"_NODES")
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		nb := byte(200 + i)
		if _, err := nc.Subscribe(fmt.Sprintf("wsg.%s.n.%s.d", cfg.Name, hub.NodeHex(nb)), func(*nats.Msg) {}); err != nil {
			b.Fatal(err)
		}
		v, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("silent%d", i), "inc": fmt.Sprintf("silent%d", i), "state": "up", "renewed": time.Now().UnixMilli()})
		if _, err := kv.Put(ctx, "node."+hub.NodeHex(nb), v); err != nil {
			b.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	testenv.Eventually(b, 20*time.Second, func() error {
		if got := a.LiveNodes(); got != 3+n {
			return fmt.Errorf("A sees %d live nodes, want %d", got, 3+n)
		}
		return nil
	})
}

// BenchmarkRestartNode times a graceful restart of one node of three
// (Close, then Start with the same config: the byte taken back), per
// restart, and Start's part of it (start-ms): what a node's start-up order
// costs. Run:
//
//	go test -run '^$' -bench BenchmarkRestartNode -benchtime 5x ./cluster
func BenchmarkRestartNode(b *testing.B) {
	cfgs := patient(embeddedConfigs(b, 3))
	hubs := startHubs(b, cfgs)
	c := hubs[2]
	self := c.Self()
	var starting time.Duration
	b.ResetTimer()
	for range b.N {
		_ = c.Close()
		start := time.Now()
		h, err := cluster.Start(cfgs[2], cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()})
		starting += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if h.Self() != self {
			b.Fatalf("restarted with byte %d, had %d", h.Self(), self)
		}
		c = h
	}
	b.StopTimer()
	b.ReportMetric(float64(starting.Microseconds())/1000/float64(b.N), "start-ms")
	_ = c.Close()
}
