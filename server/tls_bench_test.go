package server_test

import (
	"crypto/tls"
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkConnect: a WebSocket connect, one echo and a close, plaintext
// with TLS off (no sniffing), and plaintext and TLS on a sniffing port.
func BenchmarkConnect(b *testing.B) {
	for _, tc := range []struct{ name, mode, scheme string }{
		{"ws-tls-off", "off", "ws"}, {"ws-tls-auto", "auto", "ws"}, {"wss-tls-auto", "auto", "wss"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := benchServer(b, tc.mode, "routes:\n  echo: { integration: { type: mock }, routeResponseSelectionExpression: $default }\n")
			d := websocket.Dialer{}
			if tc.scheme == "wss" {
				d.TLSClientConfig = &tls.Config{RootCAs: rootPoolTB(b, srv.CACertPath())}
			}
			url := tc.scheme + "://" + srv.Addr() + "/dev"
			msg := []byte(`{"action":"echo"}`)
			b.ResetTimer()
			for b.Loop() {
				c, _, err := d.Dial(url, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
