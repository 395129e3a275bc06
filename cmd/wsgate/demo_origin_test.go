package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/dashboardtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// startDemo runs what `wsgate demo` runs, on a random loopback port, until
// the test ends.
func startDemo(t *testing.T, o demoOptions) *demoApp {
	t.Helper()
	o.listen = "127.0.0.1:0"
	if o.db == "" {
		o.db = filepath.Join(t.TempDir(), "demo.db")
	}
	app, err := newDemo(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app.srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	go app.run(ctx)
	t.Cleanup(func() {
		cancel()
		sctx, c := context.WithTimeout(context.Background(), 30*time.Second)
		defer c()
		if err := app.srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		app.db.Close()
	})
	return app
}

// TestDemoRefusesForeignPages plays a browser on a foreign page with a
// real WebSocket client and HTTP requests: a foreign Origin, and a foreign
// Host (DNS rebinding, where the page is "same-origin" under the
// attacker's name), are refused on the WebSocket, the snapshot API and the
// management API; the demo's own page and --allow-origin are not.
func TestDemoRefusesForeignPages(t *testing.T) {
	app := startDemo(t, demoOptions{})
	addr := app.srv.Addr()
	_, port, _ := net.SplitHostPort(addr)
	rebound := "evil.example:" + port

	upgrade := func(addr, host, origin string) int {
		h := http.Header{}
		if host != "" {
			h.Set("Host", host)
		}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/demo", h)
		if err == nil {
			c.Close()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	get := func(path, host string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	cases := []struct {
		name         string
		host, origin string
		want         int
	}{
		{"the demo's page", "", "http://" + addr, 101},
		{"the page by localhost", "localhost:" + port, "http://localhost:" + port, 101},
		{"no Origin (not a browser)", "", "", 101},
		{"a foreign page", "", "https://evil.example", 403},
		{"DNS rebinding", rebound, "http://" + rebound, 403},
	}
	for _, tc := range cases {
		t.Run("websocket "+tc.name, func(t *testing.T) {
			if got := upgrade(addr, tc.host, tc.origin); got != tc.want {
				t.Fatalf("upgrade: status %d, want %d", got, tc.want)
			}
		})
	}
	if code, _ := get("/api/snapshot", addr); code != 200 {
		t.Fatalf("snapshot by the listen address: %d", code)
	}
	for _, path := range []string{"/api/snapshot", "/", "/demo/@connections"} {
		if code, body := get(path, rebound); code != 403 || !strings.Contains(body, "Host "+rebound) {
			t.Fatalf("%s with Host %s: %d %s, want 403 naming the Host", path, rebound, code, body)
		}
	}

	allowed := startDemo(t, demoOptions{allowOrigs: []string{"https://tools.example.com"}, allowHosts: []string{"demo.lan"}})
	_, port2, _ := net.SplitHostPort(allowed.srv.Addr())
	if got := upgrade(allowed.srv.Addr(), "", "https://tools.example.com"); got != 101 {
		t.Fatalf("--allow-origin: status %d", got)
	}
	if got := upgrade(allowed.srv.Addr(), "demo.lan:"+port2, "http://demo.lan:"+port2); got != 101 {
		t.Fatalf("--allow-host: status %d", got)
	}
}

// TestDemoForeignPageInChromium: headless Chromium, told that evil.test is
// 127.0.0.1, opens a page of http://evil.test that tries the demo's
// WebSocket (refused), the same page from a loopback origin (allowed), and
// the demo's snapshot under the rebound name evil.test (refused).
func TestDemoForeignPageInChromium(t *testing.T) {
	testenv.LookPath(t, "chromium", "apt-get install -y chromium")
	app := startDemo(t, demoOptions{})
	_, port, _ := net.SplitHostPort(app.srv.Addr())
	page := fmt.Sprintf(`<!doctype html><title>foreign</title><script>
window.result = "pending";
const ws = new WebSocket("ws://127.0.0.1:%s/demo");
ws.onopen = () => { window.result = "open"; ws.close(); };
ws.onerror = () => { if (window.result === "pending") window.result = "refused"; };
</script>`, port)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	foreign := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = foreign.Serve(ln) }()
	t.Cleanup(func() { foreign.Close() })
	_, foreignPort, _ := net.SplitHostPort(ln.Addr().String())

	ctx, cancel := dashboardtest.Open(t, "about:blank", chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1"))
	defer cancel()
	ctx, cancelWait := context.WithTimeout(ctx, 60*time.Second)
	defer cancelWait()
	result := func(url string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
			t.Fatalf("navigate %s: %v", url, err)
		}
		var got string
		testenv.Eventually(t, 30*time.Second, func() error {
			var err error
			if got, err = chromedp.Run(ctx, chromedp.Evaluate[string](`window.result`)); err != nil {
				return err
			}
			if got == "pending" {
				return fmt.Errorf("still pending")
			}
			return nil
		})
		return got
	}
	if got := result("http://evil.test:" + foreignPort + "/"); got != "refused" {
		t.Fatalf("a page of http://evil.test opened the demo's WebSocket: %s", got)
	}
	if got := result("http://127.0.0.1:" + foreignPort + "/"); got != "open" {
		t.Fatalf("a loopback page could not open the demo's WebSocket: %s", got)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://evil.test:"+port+"/api/snapshot")); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "Forbidden") || strings.Contains(body, "columns") {
		t.Fatalf("the snapshot under a rebound name: %q", body)
	}
}
