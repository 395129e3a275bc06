package gateway

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// checkOriginPattern validates one allowedOrigins entry: "*", or
// scheme://host[:port] where host (and port) may hold path.Match
// wildcards, with nothing after the authority, as browsers send Origin.
func checkOriginPattern(p string) error {
	if p == "*" {
		return nil
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q: %v", p, err)
	}
	scheme, host, ok := strings.Cut(p, "://")
	if !ok || scheme == "" || host == "" || strings.ContainsAny(host, "/?#@") {
		return fmt.Errorf("%q: want an origin such as https://app.example.com or https://*.example.com (scheme://host[:port], no path)", p)
	}
	return nil
}

// originAllowed reports whether an upgrade with this Origin header may
// proceed: always with no allowedOrigins or no Origin (not a browser), else
// when an entry matches it, case-insensitively.
func (l *live) originAllowed(origin string) bool {
	if len(l.cfg.AllowedOrigins) == 0 || origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err != nil || u.Scheme == "" || u.Host == "" {
		return false // "null" (a sandboxed page or a file) and garbage
	}
	origin = strings.ToLower(origin)
	for _, p := range l.cfg.AllowedOrigins {
		if ok, _ := path.Match(strings.ToLower(p), origin); ok || p == "*" {
			return true
		}
	}
	return false
}
