package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/httpfront"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
)

const (
	testKey    = "AKIDLOCAL"
	testSecret = "change-me"
	testRegion = "us-east-1"
)

// testGateway is a gateway served on a random loopback port.
type testGateway struct {
	gw    *gateway.Gateway
	srv   *http.Server
	front *httpfront.Server // set: the listener is served by the front, as in production
	addr  string
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WSGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func baseConfig() gateway.Config {
	return gateway.Config{
		Stage:       "dev",
		Credentials: []gateway.Credential{{AccessKeyID: testKey, SecretAccessKey: testSecret}},
		Routes:      map[string]gateway.Route{},
	}
}

func startGateway(t testing.TB, cfg gateway.Config) *testGateway {
	t.Helper()
	return startGatewayLogger(t, cfg, testLogger(t))
}

// startGatewayLog starts a gateway whose log (debug and up) a test reads.
func startGatewayLog(t testing.TB, cfg gateway.Config) (*testGateway, *testenv.Buffer) {
	t.Helper()
	var buf testenv.Buffer
	return startGatewayLogger(t, cfg, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))), &buf
}

func startGatewayLogger(t testing.TB, cfg gateway.Config, logger *slog.Logger) *testGateway {
	t.Helper()
	return startGatewayWith(t, cfg, logger, false)
}

// startGatewayWith starts a gateway served by net/http, or with front by
// httpfront as the server does: its sockets are then accepted raw on Linux
// (outside the runtime's poller until a write has to wait).
func startGatewayWith(t testing.TB, cfg gateway.Config, logger *slog.Logger, front bool) *testGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: logger, ManagementEndpoint: "http://" + ln.Addr().String() + "/dev"})
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{gw: gw, srv: &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}, addr: ln.Addr().String()}
	if front {
		// As the server sets it up: the bare upgrades on the accepting
		// goroutine.
		tg.front = &httpfront.Server{Fallback: tg.srv, DeferAccept: true, Inline: gw.Inline}
		go func() { _ = tg.front.Serve(ln) }()
	} else {
		go func() { _ = tg.srv.Serve(ln) }()
	}
	t.Cleanup(func() { tg.shutdown(t) })
	return tg
}

func (tg *testGateway) shutdown(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if tg.front != nil {
		_ = tg.front.Shutdown(ctx)
	}
	_ = tg.srv.Shutdown(ctx)
	if err := tg.gw.Shutdown(ctx); err != nil {
		t.Errorf("gateway shutdown: %v", err)
	}
}

func (tg *testGateway) wsURL(query string) string {
	u := "ws://" + tg.addr + "/dev"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dial connects a real WebSocket client (gorilla/websocket).
func (tg *testGateway) dial(t testing.TB, h http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// mgmt is aws-sdk-go-v2's management API client pointed at the gateway.
func (tg *testGateway) mgmt() *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String("http://" + tg.addr + "/dev"),
		Credentials:  credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
	})
}

// signed sends a raw management request signed with aws-sdk-go-v2's signer.
func (tg *testGateway) signed(t testing.TB, method, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+tg.addr+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256Hex(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req, sum, "execute-api", testRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// connectionID asks the gateway for the id of a fresh connection: the
// client sends "whoami" to a mock route that echoes requestContext.
func whoami(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"whoami"}`)); err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayWebsocketProxyRequest
	readJSON(t, c, &ev)
	if ev.RequestContext.ConnectionID == "" {
		t.Fatalf("whoami answered no connection id: %+v", ev)
	}
	return ev.RequestContext.ConnectionID
}

// readWait bounds a test client's wait for the next frame: long, since
// only a broken gateway reaches it, while a loaded machine (load average
// 60 on 2 cores, under -race) can take seconds to answer.
const readWait = 30 * time.Second

func readJSON(t testing.TB, c *websocket.Conn, v any) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(readWait))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}

func readText(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(readWait))
	typ, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("frame type %d, want text", typ)
	}
	return string(data)
}

// readClose reads until the server closes and returns its close code.
func readClose(t testing.TB, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(readWait))
	for {
		_, _, err := c.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code, ce.Text
			}
			t.Fatalf("want a close frame, got %v", err)
		}
	}
}

// backend is a real HTTP Lambda-proxy backend on loopback that records the
// events it receives and answers with what answer returns.
type backend struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events map[string][]json.RawMessage // by path
	answer func(path string, ev []byte) (status int, body string)
}

func newBackend(t testing.TB, answer func(path string, ev []byte) (int, string)) *backend {
	b := &backend{events: map[string][]json.RawMessage{}, answer: answer}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.events[r.URL.Path] = append(b.events[r.URL.Path], ev)
		b.mu.Unlock()
		answer := b.answer
		if answer == nil {
			answer = echoEvent
		}
		status, body := answer(r.URL.Path, ev)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) route(path string) gateway.Route {
	return gateway.Route{Integration: &integration.Config{Type: "http", URI: b.srv.URL + path}}
}

// waitEvents waits for n events at path and returns them.
func (b *backend) waitEvents(t testing.TB, path string, n int) []json.RawMessage {
	t.Helper()
	var got []json.RawMessage
	testenv.Eventually(t, 30*time.Second, func() error {
		b.mu.Lock()
		got = append([]json.RawMessage(nil), b.events[path]...)
		b.mu.Unlock()
		if len(got) < n {
			return fmt.Errorf("%d events at %s, want %d", len(got), path, n)
		}
		return nil
	})
	return got
}

// whoami is the backend path whose answer is the event itself, for a
// two-way route: a client learns its connection id by sending
// {"action":"whoami"}.
const whoamiPath = "/whoami"

func (b *backend) whoamiRoute() gateway.Route {
	r := b.route(whoamiPath)
	r.RouteResponseSelectionExpression = "$default"
	return r
}

func echoEvent(path string, ev []byte) (int, string) {
	if path != whoamiPath {
		return 200, ""
	}
	out, _ := json.Marshal(map[string]any{"statusCode": 200, "body": string(ev)})
	return 200, string(out)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func staticCreds(key, secret string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(key, secret, "")
}

// testBinDir holds test programs built once per test binary.
var testBinDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsgate-gateway-test-")
	if err != nil {
		panic(err)
	}
	testBinDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func (b *backend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.events[path])
}
