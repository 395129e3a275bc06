package server_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// benchServer starts a server with tls.mode off or auto: either way the
// front serves plaintext.
func benchServer(b *testing.B, mode, extra string) *server.Server {
	cfg, err := server.ParseConfig([]byte(interopConfig + "stateDir: " + b.TempDir() + "\ntls: { mode: " + mode + " }\n" + extra))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(*cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

func benchHandshake(addr string) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(nc, "GET /dev HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	if err == nil {
		var resp *http.Response
		resp, err = http.ReadResponse(bufio.NewReaderSize(nc, 512), nil)
		if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	if err != nil {
		nc.Close()
	}
	return nc, err
}

// BenchmarkServerHandshake: a bare WebSocket handshake and close through
// the whole server (the front, the gateway), TLS off and on the sniffing
// port. The client is a bare socket: most allocations are the server's.
func BenchmarkServerHandshake(b *testing.B) {
	for _, mode := range []string{"off", "auto"} {
		b.Run("tls-"+mode, func(b *testing.B) {
			srv := benchServer(b, mode, "")
			b.ReportAllocs()
			for b.Loop() {
				nc, err := benchHandshake(srv.Addr())
				if err != nil {
					b.Fatal(err)
				}
				_ = nc.Close()
			}
		})
	}
}

// BenchmarkServerPost: one signed PostToConnection on a keep-alive socket
// through the whole server, then the frame read by the connection's
// client (gateway's BenchmarkPostToConnection, with the front in front).
func BenchmarkServerPost(b *testing.B) { benchServerPost(b, url.PathEscape) }

// BenchmarkServerPostEscaped is BenchmarkServerPost with the connection
// id's '=' sent as "%3D", as the AWS SDKs (Go v2, botocore, JS v3) escape
// a path label.
func BenchmarkServerPostEscaped(b *testing.B) {
	benchServerPost(b, func(id string) string { return strings.ReplaceAll(url.PathEscape(id), "=", "%3D") })
}

func benchServerPost(b *testing.B, escape func(string) string) {
	srv := benchServer(b, "auto", "")
	ws, err := benchHandshake(srv.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	var id string
	for id == "" {
		srv.Hub().(hub.Registry).Each(func(c hub.Conn) bool { id = c.ID(); return false })
	}
	body := []byte(`{"action":"message","data":"hello from the backend"}`)
	wire := signedWire(b, http.MethodPost, "http://"+srv.Addr()+"/dev/@connections/"+escape(id), body)
	testenv.BenchPosts(b, srv.Addr(), wire, ws, 2+len(body))
}
