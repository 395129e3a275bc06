// Package clienttest runs a real wsgate gateway on a loopback port for the
// tests of management clients (package client, wsgate's CLI): WebSocket
// clients dial it with gorilla/websocket and learn their connection id from
// a "whoami" route, and requests are signed with one static key.
package clienttest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
)

// The key the gateway accepts, and the region tests sign for.
const (
	AccessKeyID     = "AKIDCLIENTTEST"
	SecretAccessKey = "client-test-secret"
	Region          = "us-east-1"
)

// Gateway is a gateway serving stage "dev" on 127.0.0.1.
type Gateway struct {
	// Addr is host:port.
	Addr string
	// Endpoint is the management endpoint, http://Addr/dev.
	Endpoint string
}

// Credentials returns a provider of the key the gateway accepts.
func Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")
}

// Start starts a gateway; it is shut down when t ends. Messages
// {"action":"whoami"} are answered with the sender's connection id, by a
// real HTTP backend that reads it from the event; anything else is echoed
// by a mock integration.
func Start(t testing.TB) *Gateway {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			RequestContext struct {
				ConnectionID string `json:"connectionId"`
			} `json:"requestContext"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": 200, "body": ev.RequestContext.ConnectionID})
	}))
	t.Cleanup(backend.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{Addr: ln.Addr().String()}
	g.Endpoint = "http://" + g.Addr + "/dev"
	cfg := gateway.Config{
		Stage:       "dev",
		Credentials: []gateway.Credential{{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}},
		Routes: map[string]gateway.Route{
			"whoami":   {Integration: &integration.Config{Type: "http", URI: backend.URL}, RouteResponseSelectionExpression: "$default"},
			"$default": {Integration: &integration.Config{Type: "mock"}, RouteResponseSelectionExpression: "$default"},
		},
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ManagementEndpoint: g.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
	})
	return g
}

// Dial connects a WebSocket client with the given User-Agent and returns
// it with its connection id. It is closed when t ends.
func (g *Gateway) Dial(t testing.TB, userAgent string) (*websocket.Conn, string) {
	t.Helper()
	h := http.Header{}
	if userAgent != "" {
		h.Set("User-Agent", userAgent)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+g.Addr+"/dev", h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"whoami"}`)); err != nil {
		t.Fatal(err)
	}
	id := Read(t, c)
	if id == "" {
		t.Fatal("whoami answered no connection id")
	}
	return c, id
}

// Read returns the next text message c receives, failing t after 10s.
func Read(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("frame type %d, want text", typ)
	}
	return string(data)
}

// ReadClose reads until the server closes c and returns the close code.
func ReadClose(t testing.TB, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			t.Fatalf("want a close frame, got %v", err)
		}
	}
}
