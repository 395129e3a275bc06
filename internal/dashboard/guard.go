package dashboard

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Guard keeps other web sites away from the demo. A browser lets any page
// the user visits open a WebSocket to 127.0.0.1 (the Origin header is the
// only sign of where it came from), and through DNS rebinding (a name of
// the attacker's that resolves to 127.0.0.1) even read the demo's JSON
// API as if it were same-origin; the Host header then carries the
// attacker's name. So Guard admits a request only when:
//
//   - its Host is a name of this machine: localhost (or *.localhost), a
//     loopback IP, the listen address's host, any IP literal when the
//     demo listens on all addresses (0.0.0.0 or ::), or one of Hosts; and
//   - its Origin, when it has one (browsers always send it on a WebSocket
//     upgrade), is the page's own origin (same scheme-less host and port as
//     Host), a loopback origin (http://localhost:3000, http://127.0.0.1:5173),
//     an origin whose host is one of Hosts, or one of Origins.
//
// Everything else is answered 403. Clients that are not browsers send no
// Origin and are judged by Host alone.
type Guard struct {
	// Listen is the demo's listen address, e.g. "127.0.0.1:8080".
	Listen string
	// Hosts are further host names or IPs (no port) the demo may be
	// reached by, e.g. a LAN name: allowed as Host and as Origin host.
	Hosts []string
	// Origins are further origins allowed to connect, e.g.
	// "https://tools.example.com".
	Origins []string
}

// Wrap returns h behind the guard.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.HostAllowed(r.Host) {
			forbid(w, "Host "+r.Host+" is not a name of this demo (start it with --allow-host to add one)")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !g.OriginAllowed(o, r.Host) {
			forbid(w, "Origin "+o+" may not use this demo (start it with --allow-origin to add one)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// forbid answers 403 with the reason, so that a user who reached the demo
// by a name it does not know learns which flag to add.
func forbid(w http.ResponseWriter, why string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": "Forbidden: " + why})
}

// HostAllowed reports whether a Host header (host or host:port) names
// this demo.
func (g *Guard) HostAllowed(hostport string) bool {
	host := hostOnly(hostport)
	if host == "" {
		return false
	}
	if isLocal(host) || g.extraHost(host) {
		return true
	}
	listen := hostOnly(g.Listen)
	if host == listen {
		return true
	}
	// Listening on every address, the demo is reached by any of the
	// machine's IPs; an IP literal cannot be rebound, only names can.
	ip := net.ParseIP(listen)
	return (listen == "" || ip != nil && ip.IsUnspecified()) && net.ParseIP(host) != nil
}

// OriginAllowed reports whether a page of origin may use the demo reached
// at host (the request's Host).
func (g *Guard) OriginAllowed(origin, host string) bool {
	for _, o := range g.Origins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
		return false // "null" (a file or a sandboxed frame) and garbage
	}
	return strings.EqualFold(u.Host, host) || isLocal(hostOnly(u.Host)) || g.extraHost(hostOnly(u.Host))
}

func (g *Guard) extraHost(host string) bool {
	for _, h := range g.Hosts {
		if strings.EqualFold(hostOnly(h), host) {
			return true
		}
	}
	return false
}

// hostOnly is the lower-case host of host:port, [v6]:port, host or v6.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		hostport = h
	}
	return strings.ToLower(strings.Trim(hostport, "[]"))
}

// isLocal reports whether host is localhost, a *.localhost name (which
// browsers resolve to loopback themselves) or a loopback IP.
func isLocal(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
