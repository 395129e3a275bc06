package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
)

// stalledBackend accepts TCP connections, reads whatever arrives and never
// answers: a backend that hangs. It counts the connections it accepted.
type stalledBackend struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	closed   bool // close ran: a connection accepted since is closed at once
}

func newStalledBackend(t testing.TB) *stalledBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &stalledBackend{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			if b.closed {
				b.mu.Unlock()
				_ = c.Close()
				return
			}
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	return b
}

// close ends the stall: every pending request fails at once.
func (b *stalledBackend) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	b.closed = true
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
}

func (b *stalledBackend) route() gateway.Route {
	return gateway.Route{Integration: &integration.Config{
		Type: "http", URI: "http://" + b.ln.Addr().String() + "/", TimeoutMillis: 60000, MaxConnsPerHost: 2,
	}}
}

// TestThrottleStalledBackend: against a backend that never answers, the
// gateway keeps exactly maxInflight invocations running, answers every
// other message with AWS's throttling frame, and opens no more than
// maxConnsPerHost connections to the backend.
func TestThrottleStalledBackend(t *testing.T) {
	const (
		sockets     = 10
		perSocket   = 4
		maxInflight = 8
	)
	be := newStalledBackend(t)
	cfg := baseConfig()
	cfg.MaxInflight = maxInflight
	cfg.MaxInflightPerConnection = perSocket
	cfg.Routes["$default"] = be.route()
	tg := startGateway(t, cfg)
	t.Cleanup(be.close) // runs before the gateway's shutdown

	var throttled atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, sockets)
	for i := range conns {
		conns[i] = tg.dial(t, nil)
	}
	for _, c := range conns {
		for range perSocket {
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"work"}`)); err != nil {
				t.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				var f struct{ Message, ConnectionID, RequestID string }
				if json.Unmarshal(data, &f) != nil || f.Message != "Too Many Requests" || f.ConnectionID == "" || f.RequestID == "" {
					t.Errorf("unexpected frame %s", data)
					continue
				}
				throttled.Add(1)
			}
		}()
	}
	want := int64(sockets*perSocket - maxInflight)
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := throttled.Load(); n != want || tg.gw.Inflight() != maxInflight {
			return fmt.Errorf("%d throttled (want %d), %d in flight (want %d)", n, want, tg.gw.Inflight(), maxInflight)
		}
		if n := be.accepted.Load(); n != 2 {
			return fmt.Errorf("backend accepted %d connections, want maxConnsPerHost 2", n)
		}
		return nil
	})
	// Nothing more arrives while the backend stalls: a new message is
	// throttled too, and the bound on backend connections holds. It comes
	// from a new connection: one whose own maxInflightPerConnection slots
	// are taken is not read from until one frees (backpressure, not a
	// throttling answer).
	extra := tg.dial(t, nil)
	if err := extra.WriteMessage(websocket.TextMessage, []byte(`{"action":"more"}`)); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, extra); !strings.HasPrefix(got, `{"message": "Too Many Requests"`) {
		t.Fatalf("a message past the bound answered %s", got)
	}
	if n := be.accepted.Load(); n > 2 {
		t.Fatalf("backend accepted %d connections, want at most 2", n)
	}
	if n := tg.gw.Inflight(); n > maxInflight {
		t.Fatalf("%d in flight, bound %d", n, maxInflight)
	}
	// Clients first: once the backend closes, the stalled calls fail and
	// their "Internal server error" frames would race the readers' end.
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
	be.close()
}

// TestThrottleConnect: a handshake that finds the gateway's in-flight bound
// full is refused with 429 {"message":"Too Many Requests"}.
func TestThrottleConnect(t *testing.T) {
	be := newStalledBackend(t)
	cfg := baseConfig()
	cfg.MaxInflight = 2
	cfg.MaxInflightPerConnection = 1
	cfg.Routes["$connect"] = be.route()
	cfg.Routes["$default"] = gateway.Route{Integration: &integration.Config{Type: "mock"}}
	tg := startGateway(t, cfg)
	t.Cleanup(be.close)

	for range 2 { // two handshakes hang in $connect
		go func() {
			c, _, err := websocket.DefaultDialer.Dial(tg.wsURL(""), nil)
			if err == nil {
				_ = c.Close()
			}
		}()
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := tg.gw.Inflight(); n != 2 {
			return fmt.Errorf("%d in flight, want 2", n)
		}
		return nil
	})
	_, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third handshake: %v, %+v; want 429", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `{"message":"Too Many Requests"}` {
		t.Fatalf("body %s", body)
	}
}

// TestThrottleConfig: the new bounds are range-checked.
func TestThrottleConfig(t *testing.T) {
	tests := []struct {
		name string
		edit func(*gateway.Config)
	}{
		{"maxInflight too small", func(c *gateway.Config) { c.MaxInflight = 1 }},
		{"maxInflight too large", func(c *gateway.Config) { c.MaxInflight = 1000001 }},
		{"per connection not below the gateway bound", func(c *gateway.Config) { c.MaxInflight = 8; c.MaxInflightPerConnection = 8 }},
		{"integration maxInflight negative", func(c *gateway.Config) {
			c.Routes["$default"] = gateway.Route{Integration: &integration.Config{Type: "mock", MaxInflight: -1}}
		}},
		{"maxConnsPerHost too large", func(c *gateway.Config) {
			c.Routes["$default"] = gateway.Route{Integration: &integration.Config{Type: "http", URI: "http://127.0.0.1:1/", MaxConnsPerHost: 70000}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Routes["$default"] = gateway.Route{Integration: &integration.Config{Type: "mock"}}
			tc.edit(&cfg)
			cfg.SetDefaults()
			if err := cfg.Validate(); err == nil {
				t.Fatal("config accepted")
			}
		})
	}
}
