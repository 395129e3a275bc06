package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// rawDial opens a WebSocket with a hand-written handshake and keeps no
// buffers: the client side costs a socket and nothing else.
func rawDial(addr string) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(nc, "GET /dev HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	if err != nil {
		nc.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(nc, 512), nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return nc, nil
}

// BenchmarkIdleConn reports the Go heap, stack and goroutines per idle
// connection: 2,000 connections opened with a bare handshake, then two
// GCs. The clients are in the process, so their sockets (a net.Conn each,
// ~300 B) are counted too; wsgate-bench's idle scenario measures the
// server alone.
func BenchmarkIdleConn(b *testing.B) {
	tg := startGateway(b, baseConfig())
	const n = 2000
	var ms0, ms1 runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		g0 := runtime.NumGoroutine()
		conns := make([]net.Conn, 0, n)
		for range n {
			nc, err := rawDial(tg.addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, nc)
		}
		for tg.gw.Connections() < n {
			time.Sleep(time.Millisecond)
		}
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(ms1.HeapInuse-ms0.HeapInuse)/n, "heapB/conn")
		b.ReportMetric(float64(ms1.StackInuse-ms0.StackInuse)/n, "stackB/conn")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/conn")
		for _, nc := range conns {
			nc.Close()
		}
		for tg.gw.Connections() > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
