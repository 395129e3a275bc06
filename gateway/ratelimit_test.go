package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
)

// slowRefill is a bucket that does not refill within a test: only its
// burst passes.
func slowRefill(burst int) *gateway.Throttling {
	return &gateway.Throttling{RateLimit: 0.0001, BurstLimit: burst}
}

func echoRoute(th *gateway.Throttling) gateway.Route {
	return gateway.Route{Integration: &integration.Config{Type: "mock"}, RouteResponseSelectionExpression: "$default", Throttling: th}
}

// sendAll sends each message, then reads one answer per message and
// returns them by text (the worker pool may answer out of order).
func sendAll(t *testing.T, c *websocket.Conn, msgs ...string) map[string]int {
	t.Helper()
	for _, m := range msgs {
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	for range msgs {
		got[readText(t, c)]++
	}
	return got
}

// throttledFrame checks that s is AWS's error frame with Too Many Requests
// for connection id.
func throttledFrame(t *testing.T, s, id string) {
	t.Helper()
	if !strings.HasPrefix(s, `{"message": "Too Many Requests", "connectionId":"`+id+`", "requestId":"`) {
		t.Fatalf("throttled answer %q, want AWS's error frame layout", s)
	}
	var f struct{ Message, ConnectionID, RequestID string }
	if err := json.Unmarshal([]byte(s), &f); err != nil || len(f.RequestID) != 16 {
		t.Fatalf("throttled frame %q: %v", s, err)
	}
}

// TestRouteThrottling: a burst past a route's bucket is answered with the
// Too Many Requests frame, one per refused message, the connection stays
// open, and other routes (unthrottled, or with a bucket of their own) are
// unaffected; the refusals are counted per route.
func TestRouteThrottling(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Throttling = slowRefill(2) // the stage's default: $default gets 2
	cfg.Routes["limited"] = echoRoute(slowRefill(3))
	cfg.Routes["roomy"] = echoRoute(&gateway.Throttling{RateLimit: 1000000, BurstLimit: 1000000})
	cfg.Routes["$default"] = echoRoute(nil)
	cfg.Routes["whoami"] = be.whoamiRoute() // the stage's default: 2
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	id := whoami(t, c)

	limited := `{"action":"limited"}`
	got := sendAll(t, c, limited, limited, limited, limited, limited)
	// Two throttled frames, each with its own requestId: three keys.
	if got[limited] != 3 || len(got) != 3 {
		t.Fatalf("5 messages to a route with a burst of 3 got %v, want 3 answers and 2 throttled frames", got)
	}
	for s := range got {
		if s != limited {
			throttledFrame(t, s, id)
		}
	}
	// Another route with a large bucket of its own is unaffected.
	roomy := `{"action":"roomy"}`
	if got := sendAll(t, c, roomy, roomy, roomy, roomy, roomy); got[roomy] != 5 {
		t.Fatalf("an unthrottled route answered %v", got)
	}
	// $default takes the stage's default: 2 pass.
	got = sendAll(t, c, "a", "a", "a", "a")
	if got["a"] != 2 || len(got) != 3 {
		t.Fatalf("$default with the stage's burst of 2 answered %v", got)
	}
	// The connection stayed open and the first route stays throttled.
	if s := readAfter(t, c, limited); !strings.Contains(s, "Too Many Requests") {
		t.Fatalf("after the burst the route answered %q", s)
	}
	counts := tg.gw.Throttled()
	if counts.Routes["limited"] != 3 || counts.Routes["$default"] != 2 || counts.Routes["roomy"] != 0 || counts.Connections != 0 {
		t.Fatalf("Throttled() = %+v, want limited 3, $default 2, roomy 0", counts)
	}
	if _, ok := counts.Routes["whoami"]; !ok {
		t.Fatalf("Throttled() has no whoami entry: %+v", counts)
	}
}

func readAfter(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	return readText(t, c)
}

// refusedDial dials and expects the handshake refused with status.
func refusedDial(t *testing.T, tg *testGateway, status int) string {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), nil)
	if err == nil {
		c.Close()
		t.Fatalf("dial succeeded, want %d", status)
	}
	if resp == nil {
		t.Fatalf("dial: %v, want HTTP %d", err, status)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("dial answered %d %s, want %d", resp.StatusCode, body, status)
	}
	return string(body)
}

// TestConnectionThrottling: connectionThrottling refuses handshakes past
// its burst with 429 {"message":"Too Many Requests"} before $connect runs,
// and counts them; open connections are unaffected.
func TestConnectionThrottling(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.ConnectionThrottling = slowRefill(2)
	cfg.Routes["$connect"] = be.route("/connect")
	cfg.Routes["echo"] = echoRoute(nil)
	tg := startGateway(t, cfg)
	a := tg.dial(t, nil)
	tg.dial(t, nil)
	if body := refusedDial(t, tg, http.StatusTooManyRequests); body != `{"message":"Too Many Requests"}` {
		t.Fatalf("throttled handshake body %q", body)
	}
	refusedDial(t, tg, http.StatusTooManyRequests)
	if n := be.count("/connect"); n != 2 {
		t.Fatalf("$connect ran %d times, want 2 (throttled handshakes never reach it)", n)
	}
	if got := readAfter(t, a, `{"action":"echo"}`); got != `{"action":"echo"}` {
		t.Fatalf("an open connection answered %q", got)
	}
	if c := tg.gw.Throttled(); c.Connections != 2 {
		t.Fatalf("Throttled() = %+v, want 2 connections", c)
	}
}

// TestConnectRouteThrottling: the $connect route's bucket (here the
// stage's default) refuses handshakes with 429 too, counted under
// $connect.
func TestConnectRouteThrottling(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Throttling = slowRefill(1)
	cfg.Routes["$connect"] = be.route("/connect")
	cfg.Routes["$disconnect"] = be.route("/disconnect")
	tg := startGateway(t, cfg)
	a := tg.dial(t, nil)
	refusedDial(t, tg, http.StatusTooManyRequests)
	_ = a.Close()
	be.waitEvents(t, "/disconnect", 1) // $disconnect is never throttled
	if c := tg.gw.Throttled(); c.Routes["$connect"] != 1 || c.Connections != 0 {
		t.Fatalf("Throttled() = %+v, want $connect 1", c)
	}
	if _, ok := tg.gw.Throttled().Routes["$disconnect"]; ok {
		t.Fatal("$disconnect has a bucket")
	}
}

// TestThrottlingConfig: the limits are range-checked and named by path.
func TestThrottlingConfig(t *testing.T) {
	cfg := baseConfig()
	cfg.Throttling = &gateway.Throttling{RateLimit: 0, BurstLimit: 0}
	cfg.ConnectionThrottling = &gateway.Throttling{RateLimit: 2e6, BurstLimit: 5}
	cfg.Routes["x"] = echoRoute(&gateway.Throttling{RateLimit: 1, BurstLimit: 2_000_000})
	cfg.Routes["$disconnect"] = gateway.Route{Integration: &integration.Config{Type: "mock"}, Throttling: slowRefill(1)}
	cfg.SetDefaults()
	err := cfg.Validate()
	for _, want := range []string{
		"throttling.rateLimit: must be above 0",
		"throttling.burstLimit: must be between 1 and 1000000, got 0",
		"connectionThrottling.rateLimit: must be between 0 and 1e+06, got 2e+06",
		`routes["x"].throttling.burstLimit: must be between 1 and 1000000, got 2000000`,
		`routes["$disconnect"].throttling: $disconnect cannot be throttled`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}
