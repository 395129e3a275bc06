package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"
)

// readMessage reads one message as a validating client (a browser) would:
// a text frame that is not UTF-8 fails the test, as it fails the browser's
// connection (1006).
func readMessage(t testing.TB, c *websocket.Conn) (int, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	typ, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ == websocket.TextMessage && !utf8.Valid(data) {
		t.Fatalf("text frame with invalid UTF-8 % x", data)
	}
	return typ, data
}

// TestInvalidUTF8Outbound: bytes that are not UTF-8, from a POST, a
// publish or a base64 route answer, reach the client as a binary frame,
// never as an invalid text frame; UTF-8 stays text (item 14).
func TestInvalidUTF8Outbound(t *testing.T) {
	bin := []byte{0xff, 0xfe, 'a', 0xc3}
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		if path == "/bin" {
			out, _ := json.Marshal(map[string]any{"statusCode": 200, "isBase64Encoded": true, "body": base64.StdEncoding.EncodeToString(bin)})
			return 200, string(out)
		}
		return echoEvent(path, ev)
	})
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	r := be.route("/bin")
	r.RouteResponseSelectionExpression = "$default"
	cfg.Routes["bin"] = r
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	id := whoami(t, c)
	tg.join(t, "g", id)
	api := tg.mgmt()

	want := func(how string, wantType int, wantData []byte) {
		t.Helper()
		typ, data := readMessage(t, c)
		if typ != wantType || !bytes.Equal(data, wantData) {
			t.Fatalf("%s: frame type %d % x, want type %d % x", how, typ, data, wantType, wantData)
		}
	}
	if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: bin}); err != nil {
		t.Fatal(err)
	}
	want("POST", websocket.BinaryMessage, bin)
	if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("héllo")}); err != nil {
		t.Fatal(err)
	}
	want("UTF-8 POST", websocket.TextMessage, []byte("héllo"))
	if d := tg.publish(t, "g", bin); d.Delivered != 1 {
		t.Fatalf("publish %+v", d)
	}
	want("publish", websocket.BinaryMessage, bin)
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"bin"}`)); err != nil {
		t.Fatal(err)
	}
	want("route answer", websocket.BinaryMessage, bin)
}

// TestOversizeRouteAnswer: a two-way answer over the 128 KB message limit
// is not sent; the client gets AWS's Internal server error frame and the
// connection stays open (item 16).
func TestOversizeRouteAnswer(t *testing.T) {
	sizes := map[string]int{"/exact": 131072, "/over": 131073, "/over64": 131073, "/huge": 6 << 20}
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		n, ok := sizes[path]
		if !ok {
			return echoEvent(path, ev)
		}
		body := strings.Repeat("a", n)
		b64 := path == "/over64"
		if b64 {
			body = base64.StdEncoding.EncodeToString([]byte(body))
		}
		out, _ := json.Marshal(map[string]any{"statusCode": 200, "isBase64Encoded": b64, "body": body})
		return 200, string(out)
	})
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	for p := range sizes {
		r := be.route(p)
		r.RouteResponseSelectionExpression = "$default"
		cfg.Routes[p[1:]] = r
	}
	tg := startGateway(t, cfg)
	d := websocket.Dialer{ReadBufferSize: 64 * 1024}
	c, _, err := d.Dial(tg.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadLimit(8 << 20) // so an oversized frame would arrive, not fail the client
	id := whoami(t, c)

	ask := func(action string) []byte {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"`+action+`"}`)); err != nil {
			t.Fatal(err)
		}
		_, data := readMessage(t, c)
		return data
	}
	if got := ask("exact"); len(got) != 131072 {
		t.Fatalf("131072-byte answer arrived as %d bytes", len(got))
	}
	for _, action := range []string{"over", "over64", "huge"} {
		got := ask(action)
		var m struct{ Message, ConnectionID string }
		if err := json.Unmarshal(got, &m); err != nil || m.Message != "Internal server error" || m.ConnectionID != id {
			t.Fatalf("%s: got %d bytes %.80q, want the Internal server error frame", action, len(got), got)
		}
	}
	if whoami(t, c) != id {
		t.Fatal("connection changed")
	}
}
