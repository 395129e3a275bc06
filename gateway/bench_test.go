package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
)

// BenchmarkPublish measures one group publish, from the POST to the last
// member having read the frame, with real WebSocket clients (in this
// process, so they share the 2 cores with the gateway).
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			be := newBackend(b, func(string, []byte) (int, string) { return 200, `{"statusCode":200,"groups":["all"]}` })
			cfg := baseConfig()
			cfg.Routes["$connect"] = be.route("/connect")
			tg := startGateway(b, cfg)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				c := tg.dial(b, nil)
				go func() {
					for {
						_ = c.SetReadDeadline(time.Now().Add(time.Minute))
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
						wg.Done()
					}
				}()
			}
			payload := bytes.Repeat([]byte("x"), 100)
			b.ResetTimer()
			for b.Loop() {
				wg.Add(n)
				d := tg.publish(b, "all", payload)
				if d.Delivered != n {
					b.Fatalf("delivered %d", d.Delivered)
				}
				wg.Wait()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkEcho is one message's round trip through a two-way mock route
// with a real WebSocket client: the per-message path (reader, route
// selection, event, integration, answer).
func BenchmarkEcho(b *testing.B) {
	cfg := baseConfig()
	cfg.Routes["echo"] = gateway.Route{Integration: &integration.Config{Type: "mock"}, RouteResponseSelectionExpression: "$default"}
	tg := startGateway(b, cfg)
	c := tg.dial(b, nil)
	msg := []byte(`{"action":"echo","data":"0123456789abcdef0123456789abcdef"}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEchoConns: n clients each send a message to a two-way mock
// route and wait for its answer, back to back, all at once: the read
// turns' linger with n active connections, below and above the number
// that may linger at once (128 a core: lingerBound).
func BenchmarkEchoConns(b *testing.B) {
	for _, n := range []int{64, 512} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cfg := baseConfig()
			cfg.Routes["echo"] = gateway.Route{Integration: &integration.Config{Type: "mock"}, RouteResponseSelectionExpression: "$default"}
			tg := startGatewayWith(b, cfg, testLogger(b), true)
			cs := make([]*websocket.Conn, n)
			for i := range cs {
				cs[i] = tg.dial(b, nil)
			}
			msg := []byte(`{"action":"echo","data":"0123456789abcdef0123456789abcdef"}`)
			var left atomic.Int64
			left.Store(int64(b.N))
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
							b.Error(err)
							return
						}
						if _, _, err := c.ReadMessage(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkRoute measures the route round trip: one client sends a message
// that route selection sends to a two-way route, and reads the answer. The
// mock route echoes the body; the http route calls a loopback backend.
func BenchmarkRoute(b *testing.B) {
	for _, kind := range []string{"mock", "http"} {
		b.Run(kind, func(b *testing.B) {
			cfg := baseConfig()
			switch kind {
			case "mock":
				cfg.Routes["sendmessage"] = gateway.Route{Integration: &integration.Config{Type: "mock"}, RouteResponseSelectionExpression: "$default"}
			case "http":
				be := newBackend(b, func(string, []byte) (int, string) { return 200, `{"statusCode":200,"body":"ok"}` })
				cfg.Routes["sendmessage"] = be.route("/send")
				cfg.Routes["sendmessage"] = gateway.Route{Integration: cfg.Routes["sendmessage"].Integration, RouteResponseSelectionExpression: "$default"}
			}
			tg := startGateway(b, cfg)
			c := tg.dial(b, nil)
			msg := []byte(`{"action":"sendmessage","data":"hello world, this is a chat message"}`)
			b.ResetTimer()
			for b.Loop() {
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					b.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkFanout measures the gateway's fan-out path alone: a publish
// through the hub (no HTTP, no SigV4) to n members whose clients are bare
// sockets that read and discard (no frame parsing, no allocations), so
// the allocations reported are the gateway's. single waits for every
// member to have the frame before the next publish; burst publishes 20
// back to back and waits for all of them.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000} {
		for _, burst := range []int{1, 20} {
			name := fmt.Sprintf("%d/single", n)
			if burst > 1 {
				name = fmt.Sprintf("%d/burst", n)
			}
			b.Run(name, func(b *testing.B) { benchFanout(b, n, burst) })
		}
	}
}

func benchFanout(b *testing.B, n, burst int) {
	tg := startGateway(b, baseConfig())
	var (
		got    atomic.Int64
		target atomic.Int64
		done   = make(chan struct{}, 1)
	)
	for range n {
		nc, err := rawDial(tg.addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = nc.Close() })
		go func() {
			buf := make([]byte, 4096)
			for {
				k, err := nc.Read(buf)
				if err != nil {
					return
				}
				if got.Add(int64(k)) == target.Load() {
					done <- struct{}{}
				}
			}
		}()
	}
	h := tg.gw.Hub()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); h.Len() < n; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d connections registered", h.Len(), n)
		}
		time.Sleep(time.Millisecond)
	}
	h.Each(func(c hub.Conn) bool {
		if err := h.Join(ctx, "all", c.ID()); err != nil {
			b.Fatal(err)
		}
		return true
	})
	payload := bytes.Repeat([]byte("x"), 100)
	frameLen := int64(2 + len(payload))
	b.ReportAllocs()
	cpu0 := testenv.ProcessCPU()
	b.ResetTimer()
	for b.Loop() {
		target.Add(int64(n*burst) * frameLen)
		for range burst {
			if d, err := h.Publish(ctx, "all", hub.NewMessage(payload)); err != nil || d.Delivered != n {
				b.Fatalf("delivered %d, %v", d.Delivered, err)
			}
		}
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("received %d of %d bytes", got.Load(), target.Load())
		}
	}
	b.ReportMetric(float64(n*burst)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(testenv.ProcessCPU()-cpu0)/float64(n*burst*b.N), "cpu-ns/delivery")
}

// BenchmarkHandshakeConnect: one WebSocket handshake with an http $connect
// (a loopback backend in this process that answers 200 with no body), then
// the client closes. The backend's CPU and allocations are in the figures.
func BenchmarkHandshakeConnect(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	cfg := baseConfig()
	cfg.Routes["$connect"] = gateway.Route{Integration: &integration.Config{Type: "http", URI: srv.URL + "/connect"}}
	benchHandshakes(b, startGatewayWith(b, cfg, testLogger(b), true), bareHandshake)
}

// benchHandshakes opens and closes one connection per iteration, sending
// the header lines given after Host. cpu-ns/handshake is the process's
// CPU (the gateway, its clients and any backend in the process).
func benchHandshakes(b *testing.B, tg *testGateway, header string) {
	b.ReportAllocs()
	cpu0 := testenv.ProcessCPU()
	for b.Loop() {
		nc, err := rawDialHeader(tg.addr, header)
		if err != nil {
			b.Fatal(err)
		}
		_ = nc.Close()
	}
	b.ReportMetric(float64(testenv.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/handshake")
}
