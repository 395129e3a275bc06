package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
)

// TestAllowedOrigins: with allowedOrigins set, a browser-like client whose
// Origin matches no entry is refused with 403 before $connect runs; a
// matching one and a client without Origin connect. Unset, every origin
// connects, as on API Gateway.
func TestAllowedOrigins(t *testing.T) {
	var connects atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connects.Add(1)
		_, _ = w.Write([]byte(`{"statusCode":200}`))
	}))
	defer backend.Close()
	cfg := baseConfig()
	cfg.Routes["$connect"] = gateway.Route{Integration: &integration.Config{Type: "http", URI: backend.URL + "/connect"}}
	open := startGateway(t, cfg)
	cfg.AllowedOrigins = []string{"https://app.example.com", "https://*.example.org", "http://localhost:*"}
	locked := startGateway(t, cfg)

	dial := func(tg *testGateway, origin string) int {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), h)
		if err == nil {
			c.Close()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatalf("dial with Origin %q: %v", origin, err)
		}
		return resp.StatusCode
	}
	cases := []struct {
		name   string
		tg     *testGateway
		origin string
		want   int
	}{
		{"open: foreign origin", open, "https://evil.example", 101},
		{"exact", locked, "https://app.example.com", 101},
		{"exact, other case", locked, "https://APP.example.com", 101},
		{"pattern", locked, "https://shop.example.org", 101},
		{"port pattern", locked, "http://localhost:5173", 101},
		{"no Origin: not a browser", locked, "", 101},
		{"foreign", locked, "https://evil.example", 403},
		{"other scheme", locked, "http://app.example.com", 403},
		{"suffix trick", locked, "https://app.example.com.evil.example", 403},
		{"null", locked, "null", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := connects.Load()
			if got := dial(tc.tg, tc.origin); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			if tc.want == 403 && connects.Load() != before {
				t.Fatal("$connect ran for a refused origin")
			}
		})
	}
}

func TestAllowedOriginsValidate(t *testing.T) {
	for _, bad := range []string{"app.example.com", "https://app.example.com/", "https://[", "https://a.example/path"} {
		cfg := baseConfig()
		cfg.AllowedOrigins = []string{"https://ok.example", bad}
		cfg.SetDefaults()
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "allowedOrigins[1]: ") {
			t.Errorf("allowedOrigins %q: Validate() = %v, want an allowedOrigins[1] error", bad, err)
		}
	}
}
