package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestPublishBatch: POST /{stage}/@groups publishes each message to its
// group in order and answers one delivery per message; a malformed batch
// is refused whole, before anything is published.
func TestPublishBatch(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	var cs []*websocket.Conn
	for _, g := range []string{"a", "b"} {
		c := tg.dial(t, nil)
		tg.join(t, g, whoami(t, c))
		cs = append(cs, c)
	}

	body := `{"messages":[{"group":"a","data":"a1"},{"group":"b","data":"b1"},{"group":"nobody","data":"x"},{"group":"a","data":"a2 ✓"}]}`
	resp, b := tg.signed(t, "POST", "/dev/@groups", []byte(body))
	if resp.StatusCode != 200 {
		t.Fatalf("batch: %d %s", resp.StatusCode, b)
	}
	var out struct {
		Results []delivery `json:"results"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out.Results) != "[{1 0} {1 0} {0 0} {1 0}]" {
		t.Fatalf("results %s", b)
	}
	for _, want := range []string{"a1", "a2 ✓"} {
		if got := readText(t, cs[0]); got != want {
			t.Fatalf("member of a got %q, want %q", got, want)
		}
	}
	if got := readText(t, cs[1]); got != "b1" {
		t.Fatalf("member of b got %q", got)
	}

	many := `{"messages":[` + strings.Repeat(`{"group":"a","data":""},`, 1000) + `{"group":"a","data":""}]}`
	for _, bad := range []string{
		`{"messages":[]}`,
		`{"messages":[{"group":"a","data":"ok"},{"group":"..","data":"x"}]}`,
		`{"messages":[{"group":"a","data":"ok"},{"group":"a"}]}`,
		`[{"group":"a","data":"x"}]`,
		many,
	} {
		resp, b := tg.signed(t, "POST", "/dev/@groups", []byte(bad))
		if resp.StatusCode != 400 || resp.Header.Get("x-amzn-ErrorType") != "BadRequestException" {
			t.Fatalf("%.60s: %d %s", bad, resp.StatusCode, b)
		}
	}
	// Nothing of the refused batches reached a member: the next frame is
	// this one.
	tg.publish(t, "a", []byte("after"))
	if got := readText(t, cs[0]); got != "after" {
		t.Fatalf("member of a got %q after refused batches", got)
	}
	if resp, b := tg.signed(t, "GET", "/dev/@groups", nil); resp.StatusCode != 404 {
		t.Fatalf("GET @groups: %d %s", resp.StatusCode, b)
	}
}
