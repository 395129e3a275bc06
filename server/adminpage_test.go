package server_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/dashboardtest"
	"github.com/wsgate/wsgate/server"
)

// pageRows reads the connection ids the admin page lists.
func pageRows(ctx context.Context) ([]string, error) {
	return dashboardtest.Eval[[]string](ctx, `[...document.querySelectorAll("#connections tbody tr")].map(r => r.dataset.id)`)
}

// waitPage polls the page until cond holds for the listed ids.
func waitPage(t *testing.T, ctx context.Context, what string, cond func(ids []string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var ids []string
	var err error
	for time.Now().Before(deadline) {
		if ids, err = pageRows(ctx); err == nil && cond(ids) {
			return
		}
		<-time.After(50 * time.Millisecond) // polling the page, not waiting for an event
	}
	status, _ := dashboardtest.Eval[string](ctx, `document.getElementById("status").textContent`)
	t.Fatalf("the admin page never showed %s; last rows %v, error %v, status %q", what, ids, err, status)
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestAdminPage: in headless Chromium the admin page shows a client that
// connects and drops it when it disconnects; its Disconnect button closes
// another client as DeleteConnection does; a request without the
// credentials is refused.
func TestAdminPage(t *testing.T) {
	srv := startServer(t, interopConfig+`admin: { listen: "127.0.0.1:0" }
routes:
  subscribe: { groups: { join: "$request.body.group", allow: [orders] }, routeResponseSelectionExpression: "$default" }
`)
	resp, err := http.Get("http://" + srv.AdminAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the page without credentials: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.AdminAddr()+"/api/disconnect?id=x", nil)
	req.SetBasicAuth("AKIDLOCAL", "change-me")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a disconnect without X-Wsgate-Admin: %v %v, want 403", resp, err)
	}

	ctx, _ := dashboardtest.Open(t, "http://AKIDLOCAL:change-me@"+srv.AdminAddr()+"/")
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	first := dial(t, srv)
	if err := first.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","group":"orders"}`)); err != nil {
		t.Fatal(err)
	}
	read(t, first)
	firstID := onlyConnection(t, srv)
	waitPage(t, ctx, "the connected client", func(ids []string) bool { return contains(ids, firstID) })
	// The page may show the connection one refresh before its group:
	// poll until both are there or the deadline passes.
	var groups, count string
	for deadline := time.Now().Add(15 * time.Second); ; {
		var err error
		if groups, err = dashboardtest.Eval[string](ctx, `document.querySelector("#groups tbody").textContent`); err != nil {
			t.Fatal(err)
		}
		if count, err = dashboardtest.Eval[string](ctx, `document.getElementById("conn-count").textContent`); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(groups, "orders") && count == "1" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(groups, "orders") || count != "1" {
		t.Errorf("groups %q, count %q; want orders and 1", groups, count)
	}
	if hidden, err := dashboardtest.Eval[bool](ctx, `document.getElementById("cluster").hidden`); err != nil || !hidden {
		t.Errorf("a single node's page shows the cluster nodes section (hidden %v, %v)", hidden, err)
	}

	if *updateAdminScreenshot {
		adminScreenshot(t, ctx, srv)
	}

	first.Close()
	waitPage(t, ctx, "the client gone", func(ids []string) bool { return len(ids) == 0 })

	second := dial(t, srv)
	secondID := onlyConnection(t, srv)
	waitPage(t, ctx, "the second client", func(ids []string) bool { return contains(ids, secondID) })
	if err := chromedp.Do(ctx, chromedp.Click(fmt.Sprintf(`button[data-id=%q]`, secondID))); err != nil {
		t.Fatal(err)
	}
	code, reason := closeOf(t, second)
	if code != 1000 || reason != "Connection deleted" {
		t.Errorf("the button closed the client with %d %q, want 1000 Connection deleted", code, reason)
	}
	waitPage(t, ctx, "the disconnected client gone", func(ids []string) bool { return len(ids) == 0 })
}

var updateAdminScreenshot = flag.Bool("update-admin-screenshot", false, "write the admin page's screenshot to internal/adminui/screenshot.png")

// adminScreenshot connects a few more clients, sends messages for a few
// seconds so the charts have a history, and takes the README's picture.
func adminScreenshot(t *testing.T, ctx context.Context, srv *server.Server) {
	var clients []*websocket.Conn
	for i := range 6 {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", http.Header{"User-Agent": {fmt.Sprintf("app/2.%d (iPhone; iOS 18)", i)}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // messages at a varying rate, until the picture is taken
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(10+(i/20%4)*15) * time.Millisecond):
			}
			c := clients[i%len(clients)]
			if c.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","group":"orders"}`)) != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	<-time.After(20 * time.Second) // the charts gather a history
	err := dashboardtest.Screenshot(ctx, "../internal/adminui/screenshot.png")
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.Close()
	}
}

// closeOf reads until the server's close frame and returns its code and
// reason.
func closeOf(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code, ce.Text
		}
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
	}
}
