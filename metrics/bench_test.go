package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/accesslog"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/metrics"
)

// echoGateway serves a gateway with a two-way mock echo route and obs
// (nil: none) on a loopback port, and dials it.
func echoGateway(b *testing.B, obs gateway.Observer) *websocket.Conn {
	b.Helper()
	cfg := gateway.Config{
		Stage: "dev",
		Routes: map[string]gateway.Route{
			"echo": {Integration: &integration.Config{Type: "mock"}, RouteResponseSelectionExpression: "$default"},
		},
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = gw.Shutdown(ctx)
	})
	c, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/dev", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkEchoObserved is one message's round trip through a two-way
// mock route, with no observer, with metrics, and with metrics and an
// access log (to io.Discard): what observing a message costs.
func BenchmarkEchoObserved(b *testing.B) {
	accessLog := func(b *testing.B) gateway.Observer {
		l, err := accesslog.NewWriter(io.Discard, `{"requestId":"$context.requestId","routeKey":"$context.routeKey","status":"$context.status","latency":"$context.integrationLatency","ip":"$context.identity.sourceIp"}`, 4096, accesslog.Static{APIID: "local", Stage: "dev"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = l.Close() })
		return l
	}
	cases := []struct {
		name string
		obs  func(b *testing.B) gateway.Observer
	}{
		{"none", func(*testing.B) gateway.Observer { return nil }},
		{"metrics", func(*testing.B) gateway.Observer { return metrics.New([]string{"echo"}) }},
		{"metrics+accesslog", func(b *testing.B) gateway.Observer {
			return gateway.Observers{metrics.New([]string{"echo"}), accessLog(b)}
		}},
	}
	msg := []byte(`{"action":"echo","data":"0123456789abcdef0123456789abcdef"}`)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			c := echoGateway(b, tc.obs(b))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequest is what the metrics observer costs per message record.
func BenchmarkRequest(b *testing.B) {
	m := metrics.New([]string{"echo"})
	rec := gateway.Record{EventType: gateway.EventMessage, RouteKey: "echo", Status: 200, Outcome: gateway.OutcomeOK,
		Integrated: true, IntegrationLatency: 3 * time.Millisecond, IntegrationStatus: 200}
	b.ReportAllocs()
	for b.Loop() {
		m.Request(rec)
	}
}
