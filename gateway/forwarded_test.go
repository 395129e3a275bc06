package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/wsgate/wsgate/gateway"
)

// TestForwardedHeaders: a real client sends forwarding headers as a proxy
// in front of wsgate would. They are believed only from trustedProxies;
// sourceIp is the right-most address that is not a trusted proxy, and
// X-Forwarded-For is the chain up to it, as API Gateway appends what it
// sees to what the client sent.
func TestForwardedHeaders(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		header  string // forwardedHeader
		send    http.Header
		// want: sourceIp, X-Forwarded-For, -Proto, -Port, Host and domainName
		ip, xff, proto, port, host string
		absent                     []string // headers that must not reach the event
	}{
		{
			name: "no trusted proxies: the peer, and what it sent is kept before it",
			send: http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}, "Forwarded": {"for=198.51.100.1"}},
			ip:   "127.0.0.1", xff: "203.0.113.9, 127.0.0.1", proto: "http", port: "", host: "",
		},
		{
			name: "peer not trusted", trusted: []string{"10.0.0.0/8"},
			send: http.Header{"X-Forwarded-For": {"203.0.113.9"}},
			ip:   "127.0.0.1", xff: "203.0.113.9, 127.0.0.1", proto: "http",
		},
		{
			name: "trusted peer, the next hop is the client", trusted: []string{"127.0.0.1"},
			send: http.Header{"X-Forwarded-For": {"203.0.113.9, 10.0.0.2"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"chat.example.com"}, "X-Real-Ip": {"10.0.0.2"}},
			ip:   "10.0.0.2", xff: "203.0.113.9, 10.0.0.2", proto: "https", port: "443", host: "chat.example.com",
			absent: []string{"X-Forwarded-Host", "X-Real-Ip"},
		},
		{
			name: "a chain of trusted proxies, over two header lines", trusted: []string{"127.0.0.1", "10.0.0.0/8"},
			send: http.Header{"X-Forwarded-For": {"198.51.100.7, 203.0.113.9", "10.1.2.3"}, "X-Forwarded-Proto": {"http, https"}, "X-Forwarded-Port": {"8443"}},
			ip:   "203.0.113.9", xff: "198.51.100.7, 203.0.113.9", proto: "https", port: "8443",
		},
		{
			name: "an entry that is no address stops the walk", trusted: []string{"127.0.0.1", "10.0.0.0/8"},
			send: http.Header{"X-Forwarded-For": {"203.0.113.9, unknown, 10.0.0.5"}},
			ip:   "10.0.0.5", xff: "203.0.113.9, unknown, 10.0.0.5", proto: "http",
		},
		{
			name: "all trusted: the left-most", trusted: []string{"127.0.0.0/8", "10.0.0.0/8"},
			send: http.Header{"X-Forwarded-For": {"10.0.0.9, 10.0.0.5"}},
			ip:   "10.0.0.9", xff: "10.0.0.9", proto: "http",
		},
		{
			name: "RFC 7239 Forwarded; a forged X-Forwarded-For is not read", trusted: []string{"127.0.0.1", "2001:db8::/32"}, header: "Forwarded",
			send: http.Header{
				"Forwarded":       {`for=203.0.113.9;proto=https;host=chat.example.com, for="[2001:db8::7]:4711";proto=http`},
				"X-Forwarded-For": {"192.0.2.66"},
			},
			ip: "203.0.113.9", xff: "203.0.113.9", proto: "https", port: "443", host: "chat.example.com",
			absent: []string{"Forwarded"},
		},
		{
			name: "Forwarded with an IPv6 client", trusted: []string{"127.0.0.1"}, header: "Forwarded",
			send: http.Header{"Forwarded": {`For="[2001:db8:cafe::17]:4711"`}},
			ip:   "2001:db8:cafe::17", xff: "2001:db8:cafe::17", proto: "http",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t, nil)
			cfg := baseConfig()
			cfg.TrustedProxies = tc.trusted
			cfg.ForwardedHeader = tc.header
			cfg.Routes["$connect"] = be.route("/connect")
			cfg.Routes["whoami"] = be.whoamiRoute()
			tg := startGateway(t, cfg)
			c := tg.dial(t, tc.send)
			id := whoami(t, c)

			var ev events.APIGatewayWebsocketProxyRequest
			if err := json.Unmarshal(be.waitEvents(t, "/connect", 1)[0], &ev); err != nil {
				t.Fatal(err)
			}
			host := tc.host
			if host == "" {
				host = tg.addr
			}
			port := tc.port
			if port == "" {
				port = tg.addr[strings.LastIndexByte(tg.addr, ':')+1:]
			}
			h := ev.Headers
			if ev.RequestContext.Identity.SourceIP != tc.ip || h["X-Forwarded-For"] != tc.xff || h["X-Forwarded-Proto"] != tc.proto ||
				h["X-Forwarded-Port"] != port || h["Host"] != host || ev.RequestContext.DomainName != host {
				t.Fatalf("sourceIp %q, X-Forwarded-For %q, -Proto %q, -Port %q, Host %q, domainName %q; want %q, %q, %q, %q, %q",
					ev.RequestContext.Identity.SourceIP, h["X-Forwarded-For"], h["X-Forwarded-Proto"], h["X-Forwarded-Port"], h["Host"],
					ev.RequestContext.DomainName, tc.ip, tc.xff, tc.proto, port, host)
			}
			for _, k := range tc.absent {
				if _, ok := h[k]; ok {
					t.Errorf("the event carries the proxy's %s: %q", k, h[k])
				}
			}
			// Every later event and GetConnection carry the same identity.
			out, err := tg.mgmt().GetConnection(context.Background(), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(out.Identity.SourceIp); got != tc.ip {
				t.Fatalf("GetConnection sourceIp %q, want %q", got, tc.ip)
			}
		})
	}
}

// TestTrustedProxiesConfig: entries are CIDRs or addresses.
func TestTrustedProxiesConfig(t *testing.T) {
	p, err := gateway.ParseProxies([]string{"10.0.0.0/8", "::1", "192.0.2.1"})
	if err != nil || len(p) != 3 {
		t.Fatalf("ParseProxies = %v, %v", p, err)
	}
	cfg := baseConfig()
	cfg.TrustedProxies = []string{"10.0.0.0/33", "localhost"}
	cfg.ForwardedHeader = "X-Real-IP"
	cfg.SetDefaults()
	err = cfg.Validate()
	for _, want := range []string{`trustedProxies: "10.0.0.0/33": want a CIDR`, `"localhost": want a CIDR`, `forwardedHeader: "X-Real-IP": want X-Forwarded-For or Forwarded`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}
