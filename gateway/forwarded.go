package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the networks whose forwarding headers (and PROXY protocol
// headers, in the server) wsgate believes: trustedProxies.
type Proxies []netip.Prefix

// ParseProxies reads trustedProxies entries: CIDRs ("10.0.0.0/8",
// "fd00::/8") or single addresses ("127.0.0.1", "::1").
func ParseProxies(entries []string) (Proxies, error) {
	var out Proxies
	var errs []error
	for _, s := range entries {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("%q: want a CIDR (10.0.0.0/8) or an address (10.0.0.1)", s))
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

// Contains reports whether a is in one of the networks. An IPv4 address
// mapped into IPv6 (::ffff:10.0.0.1) counts as the IPv4 address.
func (p Proxies) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// Forwarding headers wsgate reads from trusted proxies.
const (
	headerXFF       = "X-Forwarded-For"
	headerForwarded = "Forwarded"
)

// client is the client of a handshake as API Gateway would have seen it,
// had the client connected to it directly: what the trusted proxies in
// between report, the TCP peer when there are none.
type client struct {
	// sourceIP is requestContext.identity.sourceIp: the right-most address
	// in the forwarding chain that is not a trusted proxy.
	sourceIP string
	// forwardedFor is the X-Forwarded-For the event carries: the chain up
	// to and including sourceIP (what the client sent, then its address),
	// as API Gateway appends the address it sees.
	forwardedFor string
	// proto and port are X-Forwarded-Proto and X-Forwarded-Port; host
	// is the Host the client asked for. Empty: taken from the request.
	proto, port, host string
	// viaProxy is set when the peer is a trusted proxy: its forwarding
	// headers are not the client's and stay out of the event.
	viaProxy bool
}

// client works out who the handshake's client is. Forwarding headers are
// read only when the TCP peer (after the PROXY protocol, in the server)
// is in trustedProxies; then the chain is walked from the right, over
// trusted proxies, to the first address that is not one. An entry that is
// not an address ("unknown", an obfuscated name) stops the walk: the
// trusted hop that wrote it is the client.
func (g *Gateway) client(r *http.Request) client {
	peer := remoteIP(r.RemoteAddr)
	pa, err := netip.ParseAddr(peer)
	if err == nil && !pa.Is4() {
		// An IPv4 address parses only in its canonical form; IPv6 text
		// may not be, and an IPv4-mapped one is taken as IPv4.
		pa = pa.Unmap()
		peer = pa.String()
	}
	if err != nil || !g.proxies.Contains(pa) {
		return client{sourceIP: peer, forwardedFor: appendChain(r.Header[headerXFF], peer)}
	}
	c := client{viaProxy: true}
	var hops []hop
	if g.cfg.ForwardedHeader == headerForwarded {
		hops = forwardedHops(r.Header[headerForwarded])
	} else {
		hops = xffHops(r.Header[headerXFF])
		c.proto = lastValue(r.Header["X-Forwarded-Proto"])
		c.port = lastValue(r.Header["X-Forwarded-Port"])
		c.host = lastValue(r.Header["X-Forwarded-Host"])
	}
	hops = append(hops, hop{text: peer, addr: pa, ok: true})
	k := len(hops) - 1
	for k > 0 && hops[k].ok && g.proxies.Contains(hops[k].addr) && hops[k-1].ok {
		k--
	}
	texts := make([]string, k+1)
	for i, h := range hops[:k+1] {
		texts[i] = h.text
	}
	c.sourceIP = hops[k].addr.String()
	c.forwardedFor = strings.Join(texts, ", ")
	if g.cfg.ForwardedHeader == headerForwarded {
		// The element that names the client was written by the proxy
		// it connected to, which saw its scheme and Host.
		c.proto, c.host = hops[k].proto, hops[k].host
	}
	switch strings.ToLower(c.proto) {
	case "http", "https":
		c.proto = strings.ToLower(c.proto)
	default:
		c.proto = ""
	}
	if !validPort(c.port) {
		c.port = ""
	}
	return c
}

// hop is one entry of a forwarding chain.
type hop struct {
	text        string // as written (without brackets or port, when an address)
	addr        netip.Addr
	ok          bool // text is an address
	proto, host string
}

// xffHops splits X-Forwarded-For values ("a, b", over any number of
// header lines) into hops.
func xffHops(values []string) []hop {
	var out []hop
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, parseHop(e))
			}
		}
	}
	return out
}

// forwardedHops reads RFC 7239 Forwarded elements: for=, proto= and host=
// of each element, over any number of header lines.
func forwardedHops(values []string) []hop {
	var out []hop
	for _, v := range values {
		for _, elem := range splitQuoted(v, ',') {
			h := hop{text: "unknown"}
			for _, pair := range splitQuoted(elem, ';') {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					continue
				}
				val = unquote(strings.TrimSpace(val))
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "for":
					p := parseHop(val)
					h.text, h.addr, h.ok = p.text, p.addr, p.ok
				case "proto":
					h.proto = val
				case "host":
					h.host = val
				}
			}
			out = append(out, h)
		}
	}
	return out
}

// parseHop reads one address: "192.0.2.1", "192.0.2.1:4711", "2001:db8::1",
// "[2001:db8::1]:4711" (RFC 7239 for= values); anything else is kept as
// text, not an address.
func parseHop(s string) hop {
	if a, err := netip.ParseAddr(s); err == nil {
		return hop{text: a.Unmap().String(), addr: a.Unmap(), ok: true}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return hop{text: ap.Addr().Unmap().String(), addr: ap.Addr().Unmap(), ok: true}
	}
	if h, ok := strings.CutPrefix(s, "["); ok {
		if h, ok = strings.CutSuffix(h, "]"); ok {
			if a, err := netip.ParseAddr(h); err == nil {
				return hop{text: a.Unmap().String(), addr: a.Unmap(), ok: true}
			}
		}
	}
	return hop{text: s}
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote removes an RFC 7230 quoted-string's quotes and escapes.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// lastValue is the right-most entry of a comma-separated header (the one
// the nearest proxy wrote), "" when there is none.
func lastValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	v := values[len(values)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// appendChain is X-Forwarded-For as API Gateway forwards it: what the
// client sent, then the address it connected from.
func appendChain(values []string, addr string) string {
	if len(values) == 0 {
		return addr
	}
	var b strings.Builder
	for _, h := range xffHops(values) {
		b.WriteString(h.text)
		b.WriteString(", ")
	}
	b.WriteString(addr)
	return b.String()
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// remoteIP is the address part of a host:port.
func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
