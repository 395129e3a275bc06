package dashboard_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/wsgate/wsgate/internal/dashboard"
)

func TestGuardPolicy(t *testing.T) {
	g := &dashboard.Guard{Listen: "127.0.0.1:8080", Hosts: []string{"demo.lan"}, Origins: []string{"https://tools.example.com"}}
	all := &dashboard.Guard{Listen: "0.0.0.0:8080"}
	hosts := []struct {
		g    *dashboard.Guard
		host string
		want bool
	}{
		{g, "127.0.0.1:8080", true},
		{g, "localhost:8080", true},
		{g, "LOCALHOST", true},
		{g, "app.localhost:8080", true},
		{g, "[::1]:8080", true},
		{g, "127.1.2.3:8080", true},
		{g, "demo.lan:8080", true},
		{g, "evil.example:8080", false}, // DNS rebinding: a foreign name for 127.0.0.1
		{g, "localhost.evil.example", false},
		{g, "192.168.1.5:8080", false},
		{g, "", false},
		{all, "192.168.1.5:8080", true},
		{all, "evil.example:8080", false},
	}
	for _, tc := range hosts {
		if got := tc.g.HostAllowed(tc.host); got != tc.want {
			t.Errorf("listen %s: HostAllowed(%q) = %v, want %v", tc.g.Listen, tc.host, got, tc.want)
		}
	}
	origins := []struct {
		origin, host string
		want         bool
	}{
		{"http://127.0.0.1:8080", "127.0.0.1:8080", true},     // the page itself
		{"http://localhost:3000", "127.0.0.1:8080", true},     // another local dev server
		{"http://demo.lan:8080", "demo.lan:8080", true},       // same origin by an allowed name
		{"https://tools.example.com", "127.0.0.1:8080", true}, // allowed by --allow-origin
		{"https://evil.example", "127.0.0.1:8080", false},     // any web site the user visits
		{"http://127.0.0.1.evil.example", "127.0.0.1:8080", false},
		{"null", "127.0.0.1:8080", false},
		{"file://", "127.0.0.1:8080", false},
	}
	for _, tc := range origins {
		if got := g.OriginAllowed(tc.origin, tc.host); got != tc.want {
			t.Errorf("OriginAllowed(%q, %q) = %v, want %v", tc.origin, tc.host, got, tc.want)
		}
	}
}

// TestGuardSnapshot serves the dashboard behind the guard on a real
// listener and asks for the snapshot as a rebinding page would (a foreign
// Host) and as a foreign page would (a foreign Origin).
func TestGuardSnapshot(t *testing.T) {
	db, _ := openDemoDB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &dashboard.Guard{Listen: ln.Addr().String()}
	srv := &http.Server{Handler: g.Wrap(dashboard.Handler(dashboard.Config{DB: db}))}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	get := func(host, origin string) int {
		req, err := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/snapshot", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		name, host, origin string
		want               int
	}{
		{"loopback IP", ln.Addr().String(), "", 200},
		{"localhost, same origin", "localhost:" + port, "http://localhost:" + port, 200},
		{"rebound name", "evil.example:" + port, "", 403},
		{"rebound name, same origin", "evil.example:" + port, "http://evil.example:" + port, 403},
		{"foreign page", ln.Addr().String(), "https://evil.example", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(tc.host, tc.origin); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}
