package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/sigv4"
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

// BenchmarkServerPostEscaped is BenchmarkServerPost as an AWS SDK sends
// it: the connection id's '=' as "%3D" (Go v2, botocore and JS v3 escape
// a path label so), and Amz-Sdk-Invocation-Id and Amz-Sdk-Request signed.
func BenchmarkServerPostEscaped(b *testing.B) {
	benchServerPost(b, func(id string) string { return strings.ReplaceAll(url.PathEscape(id), "=", "%3D") })
}

// BenchmarkServerPostHeapFloor is BenchmarkServerPost with heapFloorMiB
// 0 (Go's own GC pacing) and 64 (the default), twice each in turn: the
// floor's CPU per POST at saturation (BENCHMARKS.md, session 12).
func BenchmarkServerPostHeapFloor(b *testing.B) {
	for _, mib := range []int{0, 64, 0, 64} {
		b.Run(fmt.Sprintf("floor-%d", mib), func(b *testing.B) {
			benchServerPostWith(b, url.PathEscape, fmt.Sprintf("heapFloorMiB: %d\n", mib))
		})
	}
}

func benchServerPost(b *testing.B, escape func(string) string) { benchServerPostWith(b, escape, "") }

func benchServerPostWith(b *testing.B, escape func(string) string, extra string) {
	srv := benchServer(b, "auto", extra)
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
	target := "http://" + srv.Addr() + "/dev/@connections/" + escape(id)
	wire := signedWire(b, http.MethodPost, target, body)
	if strings.Contains(target, "%") {
		wire = sdkWire(b, target, body)
	}
	testenv.BenchPosts(b, srv.Addr(), wire, ws, 2+len(body))
}

// sdkWire is a POST signed as botocore signs one: its invocation headers
// signed with the rest.
func sdkWire(b *testing.B, target string, body []byte) []byte {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("User-Agent", "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.12")
	req.Header.Set("Amz-Sdk-Invocation-Id", "3b3a4c7e-5d4f-4a8e-9a3e-1f2b3c4d5e6f")
	req.Header.Set("Amz-Sdk-Request", "attempt=1")
	sum := sha256.Sum256(body)
	creds := sigv4.Credentials{AccessKeyID: "AKIDLOCAL", SecretAccessKey: "change-me"}
	if err := sigv4.Sign(req, creds, "execute-api", "us-east-1", time.Now(), hex.EncodeToString(sum[:])); err != nil {
		b.Fatal(err)
	}
	if !strings.Contains(req.Header.Get("Authorization"), "amz-sdk-invocation-id") {
		b.Fatalf("invocation id not signed: %s", req.Header.Get("Authorization"))
	}
	var w bytes.Buffer
	if err := req.Write(&w); err != nil {
		b.Fatal(err)
	}
	return w.Bytes()
}
