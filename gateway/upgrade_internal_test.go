package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// upgradeHeader is a browser's handshake header as the front's parser
// keys it (canonical names).
var upgradeHeader = http.Header{
	"Connection":            {"Upgrade"},
	"Upgrade":               {"websocket"},
	"Sec-Websocket-Version": {"13"},
	"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	"Origin":                {"https://example.com"},
	"User-Agent":            {"Mozilla/5.0 (X11; Linux x86_64)"},
}

// TestHeaderValue: headerValue and headerHasToken read a canonical name
// as Get and Values do.
func TestHeaderValue(t *testing.T) {
	for _, k := range []string{"Connection", "Sec-Websocket-Key", "Origin", "Missing"} {
		if got, want := headerValue(upgradeHeader, k), upgradeHeader.Get(k); got != want {
			t.Errorf("headerValue(%q) = %q, want %q", k, got, want)
		}
	}
	h := http.Header{"Connection": {"keep-alive", " Upgrade ,x"}}
	if !headerHasToken(h, "Connection", "upgrade") || headerHasToken(h, "Connection", "close") {
		t.Error("headerHasToken misread a multi-value Connection")
	}
}

// BenchmarkUpgradeHeaders: the header reads of a bare handshake (upgrade,
// newSession), by canonical name ("index") and through Get and Values
// ("get", as before).
func BenchmarkUpgradeHeaders(b *testing.B) {
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !headerHasToken(upgradeHeader, "Connection", "upgrade") || !headerHasToken(upgradeHeader, "Upgrade", "websocket") ||
				headerValue(upgradeHeader, "Sec-Websocket-Version") != "13" || headerValue(upgradeHeader, "Sec-Websocket-Key") == "" ||
				headerValue(upgradeHeader, "Origin") == "" || headerValue(upgradeHeader, "User-Agent") == "" {
				b.Fatal("misread")
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		has := func(name, token string) bool {
			for _, v := range upgradeHeader.Values(name) {
				for more := true; more; {
					var t string
					t, v, more = strings.Cut(v, ",")
					if strings.EqualFold(strings.TrimSpace(t), token) {
						return true
					}
				}
			}
			return false
		}
		for b.Loop() {
			if !has("Connection", "upgrade") || !has("Upgrade", "websocket") ||
				upgradeHeader.Get("Sec-Websocket-Version") != "13" || upgradeHeader.Get("Sec-Websocket-Key") == "" ||
				upgradeHeader.Get("Origin") == "" || upgradeHeader.Get("User-Agent") == "" {
				b.Fatal("misread")
			}
		}
	})
}
