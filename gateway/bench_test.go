package gateway_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
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
