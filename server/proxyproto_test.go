package server_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/server"
)

// connectRecorder is a $connect backend that keeps the events it gets.
type connectRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
}

func newConnectRecorder(t *testing.T) *connectRecorder {
	r := &connectRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev map[string]any
		_ = json.NewDecoder(req.Body).Decode(&ev)
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
		w.WriteHeader(200)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// last is the latest CONNECT event's sourceIp and X-Forwarded-For.
func (r *connectRecorder) last(t *testing.T) (sourceIP, xff string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		t.Fatal("no CONNECT event")
	}
	ev := r.events[len(r.events)-1]
	rc, _ := ev["requestContext"].(map[string]any)
	id, _ := rc["identity"].(map[string]any)
	h, _ := ev["headers"].(map[string]any)
	sourceIP, _ = id["sourceIp"].(string)
	xff, _ = h["X-Forwarded-For"].(string)
	return sourceIP, xff
}

// proxyConfig serves with proxyProtocol, TLS auto, and a $connect backend.
func proxyConfig(t *testing.T, rec *connectRecorder, trusted string) string {
	return interopConfig + "stateDir: " + t.TempDir() + "\nproxyProtocol: true\ntrustedProxies: [" + trusted + "]\n" +
		"routes:\n  echo: { integration: { type: mock }, routeResponseSelectionExpression: $default }\n" +
		"  $connect: { integration: { type: http, uri: \"" + rec.srv.URL + "\" } }\n"
}

// proxyV1 is a version 1 header for a client at src.
func proxyV1(src string) []byte {
	ap := netip.MustParseAddrPort(src)
	fam := "TCP4"
	dst := "192.0.2.200"
	if ap.Addr().Is6() {
		fam, dst = "TCP6", "2001:db8::200"
	}
	return []byte("PROXY " + fam + " " + ap.Addr().String() + " " + dst + " " + itoa(int(ap.Port())) + " 443\r\n")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// proxyV2 is a version 2 PROXY header for a client at src, with a TLV
// (AWS's VPC endpoint id, type 0xEA) as load balancers send; local makes
// it a LOCAL command (a health check) with no address.
func proxyV2(src string, local bool) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	if local {
		return append(b, 0x20, 0x00, 0, 0)
	}
	ap := netip.MustParseAddrPort(src)
	var addrs []byte
	fam := byte(0x11)
	if ap.Addr().Is4() {
		a := ap.Addr().As4()
		d := netip.MustParseAddr("192.0.2.200").As4()
		addrs = append(append(addrs, a[:]...), d[:]...)
	} else {
		fam = 0x21
		a := ap.Addr().As16()
		d := netip.MustParseAddr("2001:db8::200").As16()
		addrs = append(append(addrs, a[:]...), d[:]...)
	}
	addrs = binary.BigEndian.AppendUint16(addrs, ap.Port())
	addrs = binary.BigEndian.AppendUint16(addrs, 443)
	tlv := append([]byte{0xEA, 0, 23, 0x01}, "vpce-08d2bf15fac5001c9"...)
	body := append(addrs, tlv...)
	b = append(b, 0x21, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// proxyDialer dials addr and writes header first, as a load balancer
// does, before the client's own bytes (TLS or HTTP).
func proxyDialer(addr string, header []byte, tlsCfg *tls.Config) *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		TLSClientConfig:  tlsCfg,
		NetDial: func(network, _ string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err != nil {
				return nil, err
			}
			if _, err := c.Write(header); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
}

// TestProxyProtocol: behind a load balancer that sends the PROXY protocol
// (v1 and v2, in front of plaintext and TLS on the one port), events and
// GetConnection carry the client's address; a trusted peer's forwarding
// headers are then read from the address the header named.
func TestProxyProtocol(t *testing.T) {
	rec := newConnectRecorder(t)
	srv := startServer(t, proxyConfig(t, rec, `"127.0.0.1", "10.0.0.0/8"`))
	pool := rootPool(t, srv.CACertPath())
	cases := []struct {
		name, url string
		header    []byte
		hdr       http.Header
		ip, xff   string
	}{
		{"v1 TCP4, ws", "ws://" + srv.Addr() + "/dev", proxyV1("203.0.113.7:50123"), nil, "203.0.113.7", "203.0.113.7"},
		{"v1 TCP6, wss", "wss://" + srv.Addr() + "/dev", proxyV1("[2001:db8::7]:50123"), nil, "2001:db8::7", "2001:db8::7"},
		{"v2 TCP4 with a TLV, wss", "wss://" + srv.Addr() + "/dev", proxyV2("198.51.100.4:4000", false), nil, "198.51.100.4", "198.51.100.4"},
		{"v2 TCP6, ws", "ws://" + srv.Addr() + "/dev", proxyV2("[2001:db8::9]:4000", false), nil, "2001:db8::9", "2001:db8::9"},
		{"v2 LOCAL keeps the peer", "ws://" + srv.Addr() + "/dev", proxyV2("", true), nil, "127.0.0.1", "127.0.0.1"},
		{"v1 UNKNOWN keeps the peer", "ws://" + srv.Addr() + "/dev", []byte("PROXY UNKNOWN\r\n"), nil, "127.0.0.1", "127.0.0.1"},
		{
			"a trusted proxy behind the load balancer", "ws://" + srv.Addr() + "/dev", proxyV1("10.0.0.9:1234"),
			http.Header{"X-Forwarded-For": {"192.0.2.1, 203.0.113.50"}}, "203.0.113.50", "192.0.2.1, 203.0.113.50",
		},
		{
			"an untrusted client's X-Forwarded-For is kept, not believed", "ws://" + srv.Addr() + "/dev", proxyV1("203.0.113.7:1"),
			http.Header{"X-Forwarded-For": {"192.0.2.1"}}, "203.0.113.7", "192.0.2.1, 203.0.113.7",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := proxyDialer(srv.Addr(), tc.header, &tls.Config{RootCAs: pool})
			c, resp, err := d.Dial(tc.url, tc.hdr)
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			defer c.Close()
			echo(t, c, "hi") // the bytes after the header reached the gateway intact
			if ip, xff := rec.last(t); ip != tc.ip || xff != tc.xff {
				t.Fatalf("CONNECT event sourceIp %q, X-Forwarded-For %q; want %q, %q", ip, xff, tc.ip, tc.xff)
			}
			id := onlyConnection(t, srv)
			info, err := srv.Hub().Info(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.SourceIP; got != tc.ip {
				t.Fatalf("connection sourceIp %q, want %q", got, tc.ip)
			}
			c.Close()
			connectionIDs(t, srv, 0)
		})
	}
}

// TestProxyProtocolRefusals: a trusted peer must send a valid header (the
// connection is closed otherwise); an untrusted peer's header is never
// read, so its address cannot be forged, and it is served without one.
func TestProxyProtocolRefusals(t *testing.T) {
	rec := newConnectRecorder(t)
	srv := startServer(t, proxyConfig(t, rec, `"127.0.0.1"`))
	for name, header := range map[string][]byte{
		"no header":             nil,
		"bad v1 address":        []byte("PROXY TCP4 203.0.113.300 192.0.2.1 1 2\r\n"),
		"v1 family mismatch":    []byte("PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n"),
		"v1 without CRLF":       []byte("PROXY TCP4 203.0.113.3 192.0.2.1 1 2\n"),
		"v1 line too long":      []byte("PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"),
		"v2 bad version":        append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x31, 0x11, 0, 12),
		"v2 length over bound":  append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0xff, 0xff),
		"v2 short address":      append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0, 4, 1, 2, 3, 4),
		"v1 leading-zero ports": []byte("PROXY TCP4 203.0.113.3 192.0.2.1 01 2\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			d := proxyDialer(srv.Addr(), header, nil)
			c, _, err := d.Dial("ws://"+srv.Addr()+"/dev", nil)
			if err == nil {
				c.Close()
				t.Fatal("the handshake succeeded")
			}
		})
	}

	// An untrusted peer: served directly, its PROXY line is no HTTP.
	rec2 := newConnectRecorder(t)
	srv2 := startServer(t, proxyConfig(t, rec2, `"10.0.0.0/8"`))
	c, err := net.Dial("tcp", srv2.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(append(proxyV1("203.0.113.7:1"), "GET /dev HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"...))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, _ := io.ReadAll(io.LimitReader(c, 12))
	if !strings.HasPrefix(string(status), "HTTP/1.1 400") {
		t.Fatalf("an untrusted peer's PROXY header answered %q, want 400", status)
	}
	ws := dialWS(t, "ws://"+srv2.Addr()+"/dev")
	defer ws.Close()
	echo(t, ws, "direct")
	if ip, _ := rec2.last(t); ip != "127.0.0.1" {
		t.Fatalf("a direct client's sourceIp %q", ip)
	}
}

func dialWS(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestProxyProtocolConfig: the header is only read from trusted proxies,
// so proxyProtocol needs them.
func TestProxyProtocolConfig(t *testing.T) {
	_, err := server.ParseConfig([]byte("proxyProtocol: true\n"))
	if err == nil || !strings.Contains(err.Error(), "proxyProtocol: needs trustedProxies") {
		t.Fatalf("ParseConfig = %v", err)
	}
}

// TestProxyProtocolTLSModes: the PROXY header (v1 and v2) comes before
// TLS whatever tls.mode says: TLS only (on) and plaintext only (off). With
// tls.mode on, a plaintext request after the header is answered 400, as
// without proxyProtocol.
func TestProxyProtocolTLSModes(t *testing.T) {
	for _, mode := range []string{"on", "off"} {
		t.Run(mode, func(t *testing.T) {
			rec := newConnectRecorder(t)
			srv := startServer(t, proxyConfig(t, rec, `"127.0.0.1"`)+"tls: { mode: "+mode+" }\n")
			url, cfg := "ws://"+srv.Addr()+"/dev", (*tls.Config)(nil)
			if mode == "on" {
				url, cfg = "wss://"+srv.Addr()+"/dev", &tls.Config{RootCAs: rootPool(t, srv.CACertPath())}
			}
			for version, header := range map[string][]byte{"v1": proxyV1("192.0.2.76:9"), "v2": proxyV2("192.0.2.77:9", false)} {
				c, _, err := proxyDialer(srv.Addr(), header, cfg).Dial(url, nil)
				if err != nil {
					t.Fatalf("%s: %v", version, err)
				}
				echo(t, c, mode+" "+version)
				c.Close()
				want := map[string]string{"v1": "192.0.2.76", "v2": "192.0.2.77"}[version]
				if ip, _ := rec.last(t); ip != want {
					t.Fatalf("%s: sourceIp %q, want %s", version, ip, want)
				}
			}
			if mode != "on" {
				return
			}
			c, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = c.Write(append(proxyV1("192.0.2.78:9"), "GET /dev/@connections/x HTTP/1.1\r\nHost: x\r\n\r\n"...))
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(answer), "HTTP/1.0 400") || !strings.Contains(string(answer), "HTTPS") {
				t.Fatalf("plaintext after the header with tls.mode on: %q, want 400 ... HTTPS", answer)
			}
		})
	}
}

// TestProxyHeaderWaitIsReadHeaderTimeout: a trusted peer whose PROXY
// header stops half way is closed once readHeaderTimeoutSeconds (1 s here)
// has passed, in every tls.mode; tls.mode on used to wait a fixed 10 s.
func TestProxyHeaderWaitIsReadHeaderTimeout(t *testing.T) {
	for _, mode := range []string{"on", "auto", "off"} {
		t.Run(mode, func(t *testing.T) {
			rec := newConnectRecorder(t)
			srv := startServer(t, proxyConfig(t, rec, `"127.0.0.1"`)+"readHeaderTimeoutSeconds: 1\ntls: { mode: "+mode+" }\n")
			for name, part := range map[string][]byte{"v1": []byte("PROXY TCP4 192.0.2"), "v2": proxyV2("192.0.2.79:9", false)[:14], "nothing": nil} {
				c, err := net.Dial("tcp", srv.Addr())
				if err != nil {
					t.Fatal(err)
				}
				_, _ = c.Write(part)
				// Far past the configured 1 s, short of the old 10 s.
				_ = c.SetReadDeadline(time.Now().Add(8 * time.Second))
				_, err = io.ReadAll(c)
				c.Close()
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("%s: the connection is still open 8 s after its header stopped", name)
				}
			}
		})
	}
}
