package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// rawDial opens a WebSocket with a hand-written handshake and keeps no
// buffers: the client side costs a socket and nothing else.
func rawDial(addr string) (net.Conn, error) { return rawDialHeader(addr, bareHandshake) }

// The header lines after Host of a bare handshake (wsgate-bench's
// clients) and of a browser's (Chromium's).
const (
	bareHandshake    = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	browserHandshake = "Connection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n" +
		"Upgrade: websocket\r\nOrigin: https://example.com\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Accept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
)

// rawDialHeader is rawDial with the given header lines after Host.
func rawDialHeader(addr, header string) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(nc, "GET /dev HTTP/1.1\r\nHost: %s\r\n%s\r\n", addr, header)
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

// BenchmarkHandshake: one WebSocket handshake without $connect (a bare
// client, the 101 read with a small buffer), then the client closes,
// served by the front (httpfront) as the server serves it.
func BenchmarkHandshake(b *testing.B) {
	benchHandshakes(b, startGatewayWith(b, baseConfig(), testLogger(b), true), bareHandshake)
}

// BenchmarkHandshakeBrowser: BenchmarkHandshake with the head a browser
// sends (Pragma, User-Agent, Origin, extensions).
func BenchmarkHandshakeBrowser(b *testing.B) {
	benchHandshakes(b, startGatewayWith(b, baseConfig(), testLogger(b), true), browserHandshake)
}

// BenchmarkPostToConnection: one signed PostToConnection on a keep-alive
// socket (the same signed request bytes each time, valid for the run),
// then the frame read by the connection's client. Both clients are bare
// sockets, so most allocations are the server's.
func BenchmarkPostToConnection(b *testing.B) {
	tg := startGateway(b, baseConfig())
	ws, err := rawDial(tg.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	var id string
	for id == "" {
		tg.gw.Hub().(hub.Registry).Each(func(c hub.Conn) bool { id = c.ID(); return false })
	}
	body := []byte(`{"action":"message","data":"hello from the backend"}`)
	req, err := http.NewRequest(http.MethodPost, "http://"+tg.addr+"/dev/@connections/"+url.PathEscape(id), bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req, sha256Hex(body), "execute-api", testRegion, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		b.Fatal(err)
	}
	testenv.BenchPosts(b, tg.addr, wire.Bytes(), ws, 2+len(body))
}
