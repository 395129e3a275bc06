package cluster_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
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
			cpu0 := cpuTime()
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
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
