package httpfront

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// benchHandler is the shape of the gateway's two hot requests: a POST
// whose body is read whole and answered 200 with no body, and an upgrade
// that hijacks the socket, writes a 101 and (here) closes it.
func benchHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		_, _ = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = nc.Close()
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, b); err != nil {
		panic(err)
	}
	w.WriteHeader(http.StatusOK)
}

// benchServe starts the front, or net/http alone, with benchHandler.
func benchServe(b *testing.B, front bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(benchHandler), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	shutdown := hs.Shutdown
	if front {
		fs := &Server{Fallback: hs}
		go func() { _ = fs.Serve(ln) }()
		shutdown = fs.Shutdown
	} else {
		go func() { _ = hs.Serve(ln) }()
	}
	b.Cleanup(func() { _ = shutdown(context.Background()) })
	return ln.Addr().String()
}

const benchPost = "POST /dev/@connections/Aa0Bb1Cc2Dd3Ee4%3D HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: aws-sdk-go-v2/1.30\r\n" +
	"Content-Length: 52\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/execute-api/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n" +
	"Content-Type: application/octet-stream\r\nX-Amz-Date: 20261129T000000Z\r\n\r\n" + `{"action":"message","data":"hello from the backend"}`

// BenchmarkPost: one keep-alive POST and its 200, front against net/http
// (the client is a bare socket; its allocations are the bufio reader's
// few). Allocations per op are the server's.
func BenchmarkPost(b *testing.B) {
	for _, front := range []bool{true, false} {
		b.Run(map[bool]string{true: "front", false: "net-http"}[front], func(b *testing.B) {
			addr := benchServe(b, front)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := io.WriteString(nc, benchPost); err != nil {
					b.Fatal(err)
				}
				readHead(b, br)
			}
		})
	}
}

// BenchmarkPostFresh: a fresh keep-alive connection's first two POSTs,
// then close: against BenchmarkPost (two of them), what a connection's
// first requests cost more.
func BenchmarkPostFresh(b *testing.B) {
	for _, front := range []bool{true, false} {
		b.Run(map[bool]string{true: "front", false: "net-http"}[front], func(b *testing.B) {
			addr := benchServe(b, front)
			b.ReportAllocs()
			for b.Loop() {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				br := bufio.NewReader(nc)
				for range 2 {
					if _, err := io.WriteString(nc, benchPost); err != nil {
						b.Fatal(err)
					}
					readHead(b, br)
				}
				nc.Close()
			}
		})
	}
}

// BenchmarkUpgrade: connect, a handshake-shaped GET, the hijacked 101,
// close: the per-connection cost of each server.
func BenchmarkUpgrade(b *testing.B) {
	get := "GET /dev HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	for _, front := range []bool{true, false} {
		b.Run(map[bool]string{true: "front", false: "net-http"}[front], func(b *testing.B) {
			addr := benchServe(b, front)
			b.ReportAllocs()
			for b.Loop() {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.WriteString(nc, get); err != nil {
					b.Fatal(err)
				}
				_, _ = io.ReadAll(nc)
				nc.Close()
			}
		})
	}
}

// readHead reads one response head with no body.
func readHead(b *testing.B, br *bufio.Reader) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\r\n" {
			return
		}
		if strings.HasPrefix(line, "HTTP/1.1 ") && !strings.HasPrefix(line, "HTTP/1.1 200") {
			b.Fatal(line)
		}
	}
}
