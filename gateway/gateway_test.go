package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
)

var idRe = regexp.MustCompile(`^[A-Za-z0-9_-]{15}=$`)

// TestLifecycle covers a connection's whole life through aws-sdk-go-v2's
// management client: CONNECT, MESSAGE and DISCONNECT events with AWS's
// fields, PostToConnection, GetConnection, DeleteConnection and 410 after.
func TestLifecycle(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.StageVariables = map[string]string{"env": "test"}
	cfg.Routes["$connect"] = be.route("/connect")
	cfg.Routes["$disconnect"] = be.route("/disconnect")
	cfg.Routes["$default"] = be.route("/default")
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)

	h := http.Header{"User-Agent": {"wsgate-test/1.0"}, "X-Custom": {"a"}}
	c, _, err := websocket.DefaultDialer.Dial(tg.wsURL("token=abc&x=1&x=2"), h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var conn events.APIGatewayWebsocketProxyRequest
	raw := be.waitEvents(t, "/connect", 1)[0]
	if err := json.Unmarshal(raw, &conn); err != nil {
		t.Fatal(err)
	}
	rc := conn.RequestContext
	id := rc.ConnectionID
	if !idRe.MatchString(id) || !idRe.MatchString(rc.RequestID) || rc.RequestID != rc.ExtendedRequestID {
		t.Fatalf("ids: connection %q request %q extended %q", id, rc.RequestID, rc.ExtendedRequestID)
	}
	if rc.EventType != "CONNECT" || rc.RouteKey != "$connect" || rc.MessageDirection != "IN" || rc.Stage != "dev" || rc.APIID != "local" {
		t.Fatalf("connect context: %+v", rc)
	}
	if rc.MessageID != nil {
		t.Fatalf("CONNECT carries messageId %v", rc.MessageID)
	}
	if rc.Identity.SourceIP != "127.0.0.1" || rc.Identity.UserAgent != "wsgate-test/1.0" {
		t.Fatalf("identity %+v", rc.Identity)
	}
	if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.RequestTime); err != nil {
		t.Fatalf("requestTime %q: %v", rc.RequestTime, err)
	}
	if d := rc.RequestTimeEpoch - rc.ConnectedAt; d < 0 || d > 5 {
		t.Fatalf("requestTimeEpoch %d vs connectedAt %d", rc.RequestTimeEpoch, rc.ConnectedAt)
	}
	if conn.Headers["X-Custom"] != "a" || conn.Headers["Sec-WebSocket-Key"] == "" || conn.Headers["Sec-WebSocket-Version"] != "13" ||
		conn.Headers["X-Forwarded-For"] != "127.0.0.1" || !strings.HasPrefix(conn.Headers["X-Amzn-Trace-Id"], "Root=1-") || conn.Headers["Host"] != tg.addr {
		t.Fatalf("connect headers %v", conn.Headers)
	}
	for _, absent := range []string{"Connection", "Upgrade", "Content-Length"} {
		if _, ok := conn.Headers[absent]; ok {
			t.Fatalf("CONNECT event has %s", absent)
		}
	}
	if conn.QueryStringParameters["token"] != "abc" || strings.Join(conn.MultiValueQueryStringParameters["x"], ",") != "1,2" {
		t.Fatalf("query %v %v", conn.QueryStringParameters, conn.MultiValueQueryStringParameters)
	}
	if conn.StageVariables["env"] != "test" || conn.Body != "" || conn.IsBase64Encoded {
		t.Fatalf("connect event: %s", raw)
	}
	var top map[string]any
	_ = json.Unmarshal(raw, &top)
	if _, ok := top["body"]; ok {
		t.Fatalf("CONNECT event has a body field: %s", raw)
	}

	// A message to $default: MESSAGE event, no headers, connect-time identity.
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"nothing-matches","n":1}`)); err != nil {
		t.Fatal(err)
	}
	raw = be.waitEvents(t, "/default", 1)[0]
	var msg events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(raw, &msg)
	top = nil
	_ = json.Unmarshal(raw, &top)
	for _, absent := range []string{"headers", "multiValueHeaders", "queryStringParameters"} {
		if _, ok := top[absent]; ok {
			t.Fatalf("MESSAGE event has %s: %s", absent, raw)
		}
	}
	mrc := msg.RequestContext
	if mrc.EventType != "MESSAGE" || mrc.RouteKey != "$default" || msg.Body != `{"action":"nothing-matches","n":1}` ||
		mrc.ConnectionID != id || mrc.ConnectedAt != rc.ConnectedAt || mrc.Identity != rc.Identity {
		t.Fatalf("message event: %s", raw)
	}
	if mid, _ := mrc.MessageID.(string); !idRe.MatchString(mid) {
		t.Fatalf("messageId %v", mrc.MessageID)
	}

	// The management API through aws-sdk-go-v2.
	ctx := context.Background()
	api := tg.mgmt()
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("hello from the SDK")}); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, c); got != "hello from the SDK" {
		t.Fatalf("client got %q", got)
	}
	info, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(info.Identity.SourceIp) != "127.0.0.1" || aws.ToString(info.Identity.UserAgent) != "wsgate-test/1.0" ||
		info.ConnectedAt.UnixMilli() != rc.ConnectedAt || info.LastActiveAt.Before(*info.ConnectedAt) {
		t.Fatalf("GetConnection: %+v %+v", info, info.Identity)
	}
	if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if code, _ := readClose(t, c); code != 1000 {
		t.Fatalf("close code %d after DeleteConnection", code)
	}
	raw = be.waitEvents(t, "/disconnect", 1)[0]
	var disc events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(raw, &disc)
	drc := disc.RequestContext
	if drc.EventType != "DISCONNECT" || drc.RouteKey != "$disconnect" || drc.ConnectionID != id || drc.DisconnectStatusCode != 1000 ||
		disc.Headers["x-api-key"] != "" || disc.Headers["Host"] != tg.addr || len(disc.Headers) != 4 || len(disc.MultiValueHeaders) != 4 {
		t.Fatalf("disconnect event: %s", raw)
	}
	_, err = api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
	var gone *types.GoneException
	if !errors.As(err, &gone) {
		t.Fatalf("post after delete: %v, want GoneException", err)
	}
	_, err = api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if !errors.As(err, &gone) {
		t.Fatalf("get after delete: %v, want GoneException", err)
	}
}

// TestConnectRoute covers $connect's answers: a refusal with its status,
// headers on the 101, failures and the absent route.
func TestConnectRoute(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantProto  string
	}{
		{"empty 200 accepts", 200, "", 101, ""},
		{"proxy 200 with subprotocol", 200, `{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"chat.v1"}}`, 101, "chat.v1"},
		{"proxy 401 refuses", 200, `{"statusCode":401,"body":"no"}`, 401, ""},
		{"proxy 403 refuses", 200, `{"statusCode":403}`, 403, ""},
		{"backend 500 refuses", 500, `boom`, 500, ""},
		{"malformed answer refuses", 200, `[1,2]`, 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newBackend(t, func(string, []byte) (int, string) { return tt.status, tt.body })
			cfg := baseConfig()
			cfg.Routes["$connect"] = be.route("/connect")
			tg := startGateway(t, cfg)
			d := websocket.Dialer{Subprotocols: []string{"chat.v1"}}
			c, resp, err := d.Dial(tg.wsURL(""), nil)
			if tt.wantStatus == 101 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				if c.Subprotocol() != tt.wantProto {
					t.Fatalf("subprotocol %q, want %q", c.Subprotocol(), tt.wantProto)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("handshake accepted")
			}
			if resp == nil || resp.StatusCode != tt.wantStatus {
				t.Fatalf("handshake: %v, want status %d", err, tt.wantStatus)
			}
		})
	}
	t.Run("no $connect route accepts", func(t *testing.T) {
		tg := startGateway(t, baseConfig())
		tg.dial(t, nil)
	})
	t.Run("timeout refuses with 504", func(t *testing.T) {
		release := make(chan struct{})
		be := newBackend(t, func(string, []byte) (int, string) { <-release; return 200, "" })
		defer close(release)
		cfg := baseConfig()
		r := be.route("/connect")
		r.Integration.TimeoutMillis = 100
		cfg.Routes["$connect"] = r
		tg := startGateway(t, cfg)
		_, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), nil)
		if err == nil || resp == nil || resp.StatusCode != 504 {
			t.Fatalf("dial: %v %v, want 504", err, resp)
		}
	})
}

// TestPostDuringConnect: a backend posting to the connecting id from inside
// $connect gets 410, as on AWS.
func TestPostDuringConnect(t *testing.T) {
	var tg *testGateway
	postErr := make(chan error, 1)
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		if path == "/connect" {
			var e events.APIGatewayWebsocketProxyRequest
			_ = json.Unmarshal(ev, &e)
			_, err := tg.mgmt().PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{
				ConnectionId: aws.String(e.RequestContext.ConnectionID), Data: []byte("too early")})
			postErr <- err
		}
		return 200, ""
	})
	cfg := baseConfig()
	cfg.Routes["$connect"] = be.route("/connect")
	tg = startGateway(t, cfg)
	tg.dial(t, nil)
	var gone *types.GoneException
	if err := <-postErr; !errors.As(err, &gone) {
		t.Fatalf("post during $connect: %v, want GoneException", err)
	}
}

// TestRouteSelection: custom routes, $default fallback, non-JSON, the
// Forbidden frame, one-way and two-way responses and error frames.
func TestRouteSelection(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		switch path {
		case "/send":
			return 200, `{"statusCode":200,"body":"sent"}`
		case "/oneway":
			return 200, `{"statusCode":200,"body":"dropped"}`
		case "/fail":
			return 502, "bad gateway"
		case "/slow":
			<-release
		}
		return echoEvent(path, ev)
	})
	cfg := baseConfig()
	cfg.Routes["send"] = gateway.Route{Integration: &integration.Config{Type: "http", URI: be.srv.URL + "/send"}, RouteResponseSelectionExpression: "$default"}
	cfg.Routes["oneway"] = be.route("/oneway")
	cfg.Routes["fail"] = be.route("/fail")
	slow := be.route("/slow")
	slow.Integration.TimeoutMillis = 100
	cfg.Routes["slow"] = slow
	cfg.Routes["echo"] = gateway.Route{Integration: &integration.Config{Type: "mock"}, RouteResponseSelectionExpression: "$default"}
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	id := whoami(t, c)

	send := func(s string) {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"action":"send"}`)
	if got := readText(t, c); got != "sent" {
		t.Fatalf("two-way route answered %q", got)
	}
	send(`{"action":"echo","x":"y"}`)
	if got := readText(t, c); got != `{"action":"echo","x":"y"}` {
		t.Fatalf("mock echo answered %q", got)
	}
	// One-way: the body is dropped; the next answer proves nothing came.
	send(`{"action":"oneway"}`)
	be.waitEvents(t, "/oneway", 1)
	send(`{"action":"send"}`)
	if got := readText(t, c); got != "sent" {
		t.Fatalf("after a one-way route got %q", got)
	}
	// No $default: unmatched and non-JSON messages get the Forbidden frame.
	for _, m := range []string{`{"action":"nope"}`, `not json`, `{"action":"SEND"}`, `{"action":"$connect"}`} {
		send(m)
		got := readText(t, c)
		wantPrefix := `{"message": "Forbidden", "connectionId":"` + id + `", "requestId":"`
		if !strings.HasPrefix(got, wantPrefix) {
			t.Fatalf("%s answered %q, want the Forbidden frame", m, got)
		}
	}
	send(`{"action":"fail"}`)
	if got := readText(t, c); !strings.HasPrefix(got, `{"message": "Internal server error", "connectionId":"`+id+`"`) {
		t.Fatalf("failing integration answered %q", got)
	}
	send(`{"action":"slow"}`)
	if got := readText(t, c); !strings.HasPrefix(got, `{"message": "Endpoint request timed out", "connectionId":"`+id+`"`) {
		t.Fatalf("slow integration answered %q", got)
	}
	// The connection is still open after every error.
	send(`{"action":"send"}`)
	if got := readText(t, c); got != "sent" {
		t.Fatalf("after errors got %q", got)
	}
}

// TestNonJSONGoesToDefault: with a $default route, non-JSON reaches it.
func TestNonJSONGoesToDefault(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["$default"] = be.route("/default")
	cfg.Routes["hello"] = be.route("/hello")
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	_ = c.WriteMessage(websocket.TextMessage, []byte("hello"))
	ev := be.waitEvents(t, "/default", 1)[0]
	var e events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(ev, &e)
	if e.Body != "hello" || e.RequestContext.RouteKey != "$default" {
		t.Fatalf("event %s", ev)
	}
}

// TestLimits: frame and message size, binary frames, invalid UTF-8.
func TestLimits(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["$default"] = be.route("/default")
	cfg.Routes["$disconnect"] = be.route("/disconnect")
	tg := startGateway(t, cfg)

	t.Run("32 KB frame is fine", func(t *testing.T) {
		d := websocket.Dialer{WriteBufferSize: 256 * 1024}
		c, _, err := d.Dial(tg.wsURL(""), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 32*1024)); err != nil {
			t.Fatal(err)
		}
		be.waitEvents(t, "/default", 1)
	})
	cases := []struct {
		name string
		send func(c *websocket.Conn) error
		code int
	}{
		{"frame over 32 KB", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 32*1024+1))
		}, 1009},
		{"message over 128 KB in fragments", func(c *websocket.Conn) error {
			// Fragments of at most 32 KB, 144 KB in all.
			chunk := bytes.Repeat([]byte("b"), 16*1024)
			w, err := c.NextWriter(websocket.TextMessage)
			if err != nil {
				return err
			}
			for i := 0; i < 9; i++ {
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			return w.Close()
		}, 1009},
		{"binary frame", func(c *websocket.Conn) error { return c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}) }, 1003},
		{"invalid UTF-8", func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, []byte{0xff, 0xfe, 'a'}) }, 1007},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A large write buffer makes gorilla send each message as one
			// frame (by default it fragments at 4 KB).
			d := websocket.Dialer{WriteBufferSize: 256 * 1024}
			c, _, err := d.Dial(tg.wsURL(""), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = tc.send(c) // the server may close while we write
			if code, _ := readClose(t, c); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			testenv.Eventually(t, 10*time.Second, func() error {
				for _, raw := range be.waitEvents(t, "/disconnect", 1) {
					var e events.APIGatewayWebsocketProxyRequest
					_ = json.Unmarshal(raw, &e)
					if e.RequestContext.DisconnectStatusCode == int64(tc.code) {
						return nil
					}
				}
				return fmt.Errorf("no $disconnect with code %d", tc.code)
			})
		})
	}
}

// TestLimitsFragmented128KB: a 128 KB message in 32 KB frames is accepted.
func TestLimitsFragmented128KB(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["$default"] = be.route("/default")
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	w, _ := c.NextWriter(websocket.TextMessage)
	for i := 0; i < 4; i++ {
		_, _ = w.Write(bytes.Repeat([]byte("c"), 32*1024))
	}
	_ = w.Close()
	ev := be.waitEvents(t, "/default", 1)[0]
	var e events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(ev, &e)
	if len(e.Body) != 128*1024 {
		t.Fatalf("body of %d bytes", len(e.Body))
	}
}

// TestBinaryBase64Option: binaryFrames: base64 delivers binary messages.
func TestBinaryBase64Option(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.BinaryFrames = "base64"
	cfg.Routes["$default"] = be.route("/default")
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	_ = c.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2, 0xff})
	var e events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(be.waitEvents(t, "/default", 1)[0], &e)
	if e.Body != "AAEC/w==" || !e.IsBase64Encoded || e.RequestContext.RouteKey != "$default" {
		t.Fatalf("event %+v", e)
	}
}

// TestClientClose: $disconnect reports the client's close code, and 1005
// with AWS's reason when the close frame had none.
func TestClientClose(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["$disconnect"] = be.route("/disconnect")
	tg := startGateway(t, cfg)

	c := tg.dial(t, nil)
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
	readClose(t, c)
	c2 := tg.dial(t, nil)
	_ = c2.WriteMessage(websocket.CloseMessage, []byte{})
	readClose(t, c2)
	c3 := tg.dial(t, nil)
	_ = c3.UnderlyingConn().Close() // no close frame at all

	evs := be.waitEvents(t, "/disconnect", 3)
	got := map[int64]string{}
	for _, raw := range evs {
		var e events.APIGatewayWebsocketProxyRequest
		_ = json.Unmarshal(raw, &e)
		got[e.RequestContext.DisconnectStatusCode] = *e.RequestContext.DisconnectReason
	}
	if got[4001] != "bye" || got[1005] != "Client-side close frame status not set" {
		t.Fatalf("disconnect codes/reasons %v", got)
	}
	if _, ok := got[1006]; !ok {
		t.Fatalf("no 1006 for a dropped socket: %v", got)
	}
}

// TestPing: a ping is answered with a pong carrying the same payload.
func TestPing(t *testing.T) {
	tg := startGateway(t, baseConfig())
	c := tg.dial(t, nil)
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	_ = c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second))
	go func() { _, _, _ = c.ReadMessage() }()
	select {
	case s := <-pong:
		if s != "are you there" {
			t.Fatalf("pong %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong")
	}
}

// TestIdleAndMaxDuration: both close with 1001 and fire $disconnect, a
// step of the wall clock back (clock.go: they run on the monotonic
// clock) notwithstanding.
func TestIdleAndMaxDuration(t *testing.T) {
	for _, tc := range []struct {
		name     string
		idle, mx int
		step     time.Duration
	}{{"idle", 1, 3600, 0}, {"max duration", 3600, 1, 0},
		{"idle, wall clock stepped back", 1, 3600, -3 * time.Hour}, {"max duration, wall clock stepped back", 3600, 1, -3 * time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t, nil)
			cfg := baseConfig()
			cfg.IdleTimeoutSeconds, cfg.MaxConnectionSeconds = tc.idle, tc.mx
			cfg.Routes["$disconnect"] = be.route("/disconnect")
			tg := startGateway(t, cfg)
			c := tg.dial(t, nil)
			t.Cleanup(gateway.StepWall(tc.step))
			if code, _ := readClose(t, c); code != 1001 {
				t.Fatalf("close code %d, want 1001", code)
			}
			var e events.APIGatewayWebsocketProxyRequest
			_ = json.Unmarshal(be.waitEvents(t, "/disconnect", 1)[0], &e)
			if e.RequestContext.DisconnectStatusCode != 1001 {
				t.Fatalf("disconnect code %d", e.RequestContext.DisconnectStatusCode)
			}
		})
	}
}

// TestManagementErrors: AWS's status codes and error types on the wire.
func TestManagementErrors(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	id := whoami(t, c)
	esc := strings.ReplaceAll(id, "=", "%3D")

	resp, _ := tg.signed(t, "POST", "/dev/%40connections/"+esc, []byte("via %40"))
	if resp.StatusCode != 200 {
		t.Fatalf("POST with %%40: %d", resp.StatusCode)
	}
	if got := readText(t, c); got != "via %40" {
		t.Fatalf("got %q", got)
	}
	resp, _ = tg.signed(t, "POST", "/dev/@connections/"+id, []byte("raw ="))
	if resp.StatusCode != 200 || readText(t, c) != "raw =" {
		t.Fatalf("POST with a raw '=': %d", resp.StatusCode)
	}
	resp, body := tg.signed(t, "POST", "/dev/@connections/"+esc, bytes.Repeat([]byte("x"), 131073))
	if resp.StatusCode != 413 || resp.Header.Get("x-amzn-ErrorType") != "PayloadTooLargeException" || !strings.Contains(string(body), "131072") {
		t.Fatalf("oversize POST: %d %s %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
	}
	resp, _ = tg.signed(t, "POST", "/dev/@connections/"+esc, bytes.Repeat([]byte("x"), 131072))
	if resp.StatusCode != 200 {
		t.Fatalf("131072-byte POST: %d", resp.StatusCode)
	}
	resp, body = tg.signed(t, "POST", "/dev/@connections/AAAAAAAAAAAAAAA%3D", []byte("x"))
	if resp.StatusCode != 410 || resp.Header.Get("x-amzn-ErrorType") != "GoneException" || !json.Valid(body) {
		t.Fatalf("unknown id: %d %s", resp.StatusCode, body)
	}
	resp, _ = tg.signed(t, "POST", "/prod/@connections/"+esc, []byte("x"))
	if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "ForbiddenException" {
		t.Fatalf("wrong stage: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	// Unsigned and badly signed requests.
	r, _ := http.Post("http://"+tg.addr+"/dev/@connections/"+esc, "text/plain", strings.NewReader("x"))
	if r.StatusCode != 403 || r.Header.Get("x-amzn-ErrorType") == "" {
		t.Fatalf("unsigned: %d %q", r.StatusCode, r.Header.Get("x-amzn-ErrorType"))
	}
	r.Body.Close()
	bad := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region: testRegion, BaseEndpoint: aws.String("http://" + tg.addr + "/dev"),
		Credentials: staticCreds(testKey, "wrong-secret"),
	})
	_, err := bad.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" || !strings.Contains(ae.ErrorMessage(), "The Canonical String for this request should have been") {
		t.Fatalf("bad secret: %v, want InvalidSignatureException with the canonical string", err)
	}
}

// TestBackPressure: a client that never reads fills its queue; POSTs then
// answer 429 LimitExceededException while another client is unaffected.
func TestBackPressure(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.OutboundQueueFrames = 8
	cfg.SlowConsumerSeconds = 3600
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	frozen := tg.dial(t, nil)
	frozenID := whoami(t, frozen)
	healthy := tg.dial(t, nil)
	healthyID := whoami(t, healthy)

	api := tg.mgmt()
	ctx := context.Background()
	big := bytes.Repeat([]byte("z"), 128*1024)
	var limited *types.LimitExceededException
	testenv.Eventually(t, 30*time.Second, func() error {
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(frozenID), Data: big})
		if errors.As(err, &limited) {
			return nil
		}
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return errors.New("still accepted")
	})
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(healthyID), Data: []byte("fine")}); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, healthy); got != "fine" {
		t.Fatalf("healthy got %q", got)
	}
}

// TestShutdown: every connection is closed with 1001 and gets $disconnect.
func TestShutdown(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["$disconnect"] = be.route("/disconnect")
	tg := startGateway(t, cfg)
	var cs []*websocket.Conn
	for i := 0; i < 5; i++ {
		cs = append(cs, tg.dial(t, nil))
	}
	done := make(chan struct{})
	go func() { tg.shutdown(t); close(done) }()
	for _, c := range cs {
		if code, _ := readClose(t, c); code != 1001 {
			t.Fatalf("close code %d at shutdown", code)
		}
	}
	<-done
	evs := be.waitEvents(t, "/disconnect", 5)
	for _, raw := range evs {
		var e events.APIGatewayWebsocketProxyRequest
		_ = json.Unmarshal(raw, &e)
		if e.RequestContext.DisconnectStatusCode != 1001 {
			t.Fatalf("disconnect %s", raw)
		}
	}
	if tg.gw.Connections() != 0 {
		t.Fatalf("%d connections left", tg.gw.Connections())
	}
}

// TestNotWebSocket: a plain GET of the stage answers 426.
func TestNotWebSocket(t *testing.T) {
	tg := startGateway(t, baseConfig())
	r, err := http.Get("http://" + tg.addr + "/dev")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 426 {
		t.Fatalf("status %d", r.StatusCode)
	}
}

// TestAgedConnection: after the writer goroutine has run (a frame larger
// than the socket's send buffer), a connection older than
// writeTimeoutSeconds still gets its next frame. The writer must not leave
// its deadline behind for the inline write path.
func TestAgedConnection(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.WriteTimeoutSeconds = 1
	cfg.SendBufferBytes = 4096
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	id := whoami(t, c)
	api := tg.mgmt()
	ctx := context.Background()
	big := bytes.Repeat([]byte("b"), 128*1024)
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: big}); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, c); len(got) != len(big) {
		t.Fatalf("got %d bytes", len(got))
	}
	// The connection ages past the write timeout: the point of the test,
	// so a plain sleep.
	time.Sleep(1500 * time.Millisecond)
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("still here")}); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, c); got != "still here" {
		t.Fatalf("aged connection got %q", got)
	}
}

// masked encodes a client frame of under 126 bytes (masked, key 1 2 3 4).
func masked(first byte, payload string) []byte {
	mask := []byte{1, 2, 3, 4}
	b := []byte{first, 0x80 | byte(len(payload))}
	b = append(b, mask...)
	for i := range len(payload) {
		b = append(b, payload[i]^mask[i%4])
	}
	return b
}

// TestProtocolErrors: frames that break RFC 6455 close with 1002.
func TestProtocolErrors(t *testing.T) {
	tg := startGateway(t, baseConfig())
	cases := map[string][]byte{
		"reserved bit":           masked(0x80|0x40|0x1, "x"),
		"unmasked client frame":  {0x81, 0x01, 'x'},
		"reserved opcode":        masked(0x80|0x3, "x"),
		"continuation first":     masked(0x80, "x"), // FIN, opcode 0
		"fragmented control":     masked(0x09, "x"),
		"close with bad code":    masked(0x88, "\x03\xe7"), // 999
		"close with 1-byte body": masked(0x88, "\x03"),
		// A 64-bit length must have its most significant bit clear.
		"length with MSB set": {0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
	}
	// Reserved control opcodes 0xB-0xF (issue 13, item 15).
	for op := byte(0xb); op <= 0xf; op++ {
		cases[fmt.Sprintf("reserved control opcode %#x", op)] = masked(0x80|op, "")
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			c := tg.dial(t, nil)
			if _, err := c.UnderlyingConn().Write(frame); err != nil {
				t.Fatal(err)
			}
			if code, _ := readClose(t, c); code != 1002 {
				t.Fatalf("close code %d, want 1002", code)
			}
		})
	}
}

// TestFragmentsAcrossReadTurns: an idle connection waits in the poller
// with no buffer; a message whose fragments arrive in separate read turns
// (a ping answered in between) is still assembled whole.
func TestFragmentsAcrossReadTurns(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["$default"] = be.route("/default")
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	go func() { _, _, _ = c.ReadMessage() }()
	nc := c.UnderlyingConn()
	if _, err := nc.Write(masked(0x01, "frag")); err != nil { // text, not final
		t.Fatal(err)
	}
	if _, err := nc.Write(masked(0x89, "between")); err != nil { // ping, between fragments
		t.Fatal(err)
	}
	select {
	case s := <-pong:
		if s != "between" {
			t.Fatalf("pong %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong")
	}
	if _, err := nc.Write(masked(0x80, "mented")); err != nil { // continuation, final
		t.Fatal(err)
	}
	var e events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(be.waitEvents(t, "/default", 1)[0], &e)
	if e.Body != "fragmented" {
		t.Fatalf("body %q", e.Body)
	}
}

// TestCloseUnanswered: a client that neither reads nor answers our close
// frame is dropped after closeWait although its connection is idle (no
// read pending): $disconnect fires.
func TestCloseUnanswered(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.IdleTimeoutSeconds = 1
	cfg.Routes["$disconnect"] = be.route("/disconnect")
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil) // never reads, never answers
	var e events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(be.waitEvents(t, "/disconnect", 1)[0], &e)
	if e.RequestContext.DisconnectStatusCode != 1001 {
		t.Fatalf("disconnect code %d", e.RequestContext.DisconnectStatusCode)
	}
	_ = c
}
