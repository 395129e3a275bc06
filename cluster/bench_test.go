package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// BenchmarkCrossNodeSend: a send from one embedded node to a connection on
// another, 16 in flight, with the nodes' own NATS connections in-process
// and over TCP. cpu-µs/op is the process's CPU (both nodes and both NATS
// servers) per send.
func BenchmarkCrossNodeSend(b *testing.B) {
	for _, inProcess := range []bool{true, false} {
		name := "tcp"
		if inProcess {
			name = "inprocess"
		}
		b.Run(name, func(b *testing.B) {
			cfgs := embeddedConfigs(b, 2)
			for i := range cfgs {
				cfgs[i].NATS.Embedded.InProcess = inProcess
			}
			hubs := startHubs(b, cfgs)
			c := hubtest.NewConn(hub.NewID(hubs[1].Self()), false)
			if err := hubs[1].Register(c); err != nil {
				b.Fatal(err)
			}
			msg := []byte(`{"t":0,"pad":"0123456789012345678901234567890123456789"}`)
			ctx := context.Background()
			b.SetParallelism(8) // 16 in flight on 2 cores
			cpu0 := testenv.ProcessCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := hubs[0].Send(ctx, c.ID(), hub.NewMessage(msg)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(hubs[0].CallsPerBatch(), "calls/batch")
			direct, _ := hubs[0].DirectCalls()
			b.ReportMetric(float64(direct)/float64(b.N), "direct/op")
		})
	}
}

// BenchmarkCrossNodeCallLatency: one send at a time from one embedded node
// to a connection on another (TCP to the nodes' NATS servers), 0.5 ms
// apart, as C1's POSTs at 1,000/s mostly are: p50-µs and p90-µs are a
// send's time (over the direct link once it has a connection open, else
// over NATS: direct/op tells). ns/op includes the pause.
func BenchmarkCrossNodeCallLatency(b *testing.B) {
	hubs := startHubs(b, embeddedConfigs(b, 2))
	c := hubtest.NewConn(hub.NewID(hubs[1].Self()), false)
	if err := hubs[1].Register(c); err != nil {
		b.Fatal(err)
	}
	msg := []byte(`{"t":0,"pad":"0123456789012345678901234567890123456789"}`)
	ctx := context.Background()
	for range 20 { // a direct connection opened, the paths warm
		if err := hubs[0].Send(ctx, c.ID(), hub.NewMessage(msg)); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	direct0, _ := hubs[0].DirectCalls()
	ds := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t := time.Now()
		if err := hubs[0].Send(ctx, c.ID(), hub.NewMessage(msg)); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t))
		time.Sleep(500 * time.Microsecond)
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(ds[len(ds)*9/10].Nanoseconds())/1e3, "p90-µs")
	direct, _ := hubs[0].DirectCalls()
	b.ReportMetric(float64(direct-direct0)/float64(len(ds)), "direct/op")
}

// BenchmarkCrossNodeJoinLeave is C6 without the HTTP API: a join and a
// leave of group "jl" from one embedded node for a connection on another
// (TCP to the nodes' NATS servers); the group keeps one member throughout,
// as C6's group does under load, so no call subscribes. An op is one call
// (half a pair); cpu-µs/op is the process's CPU (both nodes and both NATS
// servers) per call. With 4 calls in flight a batch holds ~2 calls, with
// 16 ~7: the two give a batch's cost apart from a call's.
func BenchmarkCrossNodeJoinLeave(b *testing.B) {
	hubs := startHubs(b, embeddedConfigs(b, 2))
	ctx := context.Background()
	var conns []*countConn
	for range 65 {
		c := &countConn{id: hub.NewID(hubs[1].Self())}
		if err := hubs[1].Register(c); err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	if err := hubs[0].Join(ctx, "jl", conns[64].ID()); err != nil {
		b.Fatal(err)
	}
	for _, inFlight := range []int{4, 16} {
		b.Run(fmt.Sprintf("inflight-%d", inFlight), func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(inFlight / 2) // GOMAXPROCS 2
			calls0, batches0 := hubs[0].CallsOut()
			cpu0 := testenv.ProcessCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := conns[(next.Add(1)-1)%64].ID()
				for pb.Next() {
					err := hubs[0].Join(ctx, "jl", id)
					if err == nil && pb.Next() {
						err = hubs[0].Leave(ctx, "jl", id)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			calls, batches := hubs[0].CallsOut()
			b.ReportMetric(float64(calls-calls0)/float64(max(batches-batches0, 1)), "calls/batch")
		})
	}
}

// countConn counts what it is sent.
type countConn struct {
	id string
	n  atomic.Int64
}

func (c *countConn) ID() string              { return c.id }
func (c *countConn) Send(*hub.Message) error { c.n.Add(1); return nil }
func (c *countConn) Close(hub.CloseReason)   {}
func (c *countConn) Info() hub.Info          { return hub.Info{ConnectionID: c.id} }

// BenchmarkGroupPublish is C5 without the HTTP API: 256-byte publishes
// through the hub of each of 3 embedded nodes in turn, to 100 groups with
// one member on every node, 16 in flight; each op is one publish, and the
// benchmark ends when every member on every node got every message.
// cpu-µs/op is the process's CPU (3 nodes, 3 NATS servers) per publish,
// publishes/s the rate at which they reached all 3 nodes.
func BenchmarkGroupPublish(b *testing.B) {
	hubs := startHubs(b, embeddedConfigs(b, 3))
	const groups = 100
	ctx := context.Background()
	var members []*countConn
	for _, h := range hubs {
		for g := range groups {
			c := &countConn{id: hub.NewID(h.Self())}
			if err := h.Register(c); err != nil {
				b.Fatal(err)
			}
			if err := h.Join(ctx, fmt.Sprintf("g%d", g), c.ID()); err != nil {
				b.Fatal(err)
			}
			members = append(members, c)
		}
	}
	// Every node's interest in every group has reached every server.
	for g := range groups {
		testenv.Eventually(b, 20*time.Second, func() error {
			for _, h := range hubs {
				if _, err := h.Publish(ctx, fmt.Sprintf("g%d", g), hub.NewMessage([]byte("warm"))); err != nil {
					return err
				}
			}
			for i, c := range members {
				if i%groups == g && c.n.Load() == 0 {
					return fmt.Errorf("member %d of g%d got nothing yet", i, g)
				}
			}
			return nil
		})
	}
	received := func() (n int64) {
		for _, c := range members {
			n += c.n.Load()
		}
		return n
	}
	base := received()
	msg := make([]byte, 256)
	var next atomic.Int64
	b.SetParallelism(8) // 16 in flight on 2 cores
	cpu0, t0 := testenv.ProcessCPU(), time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := next.Add(1)
			h := hubs[k%int64(len(hubs))]
			if _, err := h.Publish(ctx, fmt.Sprintf("g%d", k%groups), hub.NewMessage(msg)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	want := base + int64(b.N)*int64(len(hubs))
	testenv.Eventually(b, 60*time.Second, func() error {
		if got := received(); got < want {
			return fmt.Errorf("%d of %d deliveries", got-base, want-base)
		}
		return nil
	})
	b.StopTimer()
	el := time.Since(t0)
	b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/el.Seconds(), "publishes/s")
}

// BenchmarkMembersPage is C7 without the HTTP API: the first 10 pages of
// 1,000 of a group of 30,000 members spread evenly over 3 embedded nodes,
// asked of node 1, one page at a time. cpu-µs/op is the process's CPU (3
// nodes, 3 NATS servers) per page; single is the same walk of one node's
// hub.Memory with 18,000 members.
func BenchmarkMembersPage(b *testing.B) {
	const members, page = 30000, 1000
	ctx := context.Background()
	walk := func(b *testing.B, r interface {
		Members(context.Context, string, hub.Page) ([]string, string, error)
	}) {
		after := ""
		cpu0 := testenv.ProcessCPU()
		b.ResetTimer()
		for i := range b.N {
			if i%10 == 0 {
				after = ""
			}
			ids, next, err := r.Members(ctx, "all", hub.Page{After: after, Limit: page})
			if err != nil || len(ids) != page {
				b.Fatalf("%d ids, %v", len(ids), err)
			}
			after = next
		}
		b.StopTimer()
		b.ReportMetric(float64((testenv.ProcessCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("single", func(b *testing.B) {
		m := hub.NewMemory(hub.Limits{})
		for range 18000 {
			c := &countConn{id: hub.NewID(1)}
			if err := m.Register(c); err != nil {
				b.Fatal(err)
			}
			if err := m.Join(ctx, "all", c.ID()); err != nil {
				b.Fatal(err)
			}
		}
		walk(b, m)
	})
	b.Run("cluster", func(b *testing.B) {
		hubs := startHubs(b, embeddedConfigs(b, 3))
		for i := range members {
			h := hubs[i%len(hubs)]
			c := &countConn{id: hub.NewID(h.Self())}
			if err := h.Register(c); err != nil {
				b.Fatal(err)
			}
			if err := h.Join(ctx, "all", c.ID()); err != nil {
				b.Fatal(err)
			}
		}
		// Node 1's heartbeats from the others count their members.
		testenv.Eventually(b, 20*time.Second, func() error {
			nodes, _ := hubs[0].Nodes(ctx)
			for _, n := range nodes {
				if n.Connections != members/len(hubs) {
					return fmt.Errorf("node %s: %d connections", n.ID, n.Connections)
				}
			}
			return nil
		})
		walk(b, hubs[0])
	})
}
