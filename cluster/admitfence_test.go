package cluster_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// TestClusterFenceAfterAdmission: a client whose upgrade S admitted (and
// minted its id) before S fenced, and whose $connect answered only once S
// had taken its byte back (the same byte, a new incarnation), is closed
// with 1012 as soon as it registers, as the fence's other clients were:
// the other nodes may have answered 410 for its id meanwhile. The
// $connect backend holds the upgrade there. Before, the connection
// registered live under the new incarnation (its id's byte is the node's
// again, and the node no longer moving).
func TestClusterFenceAfterAdmission(t *testing.T) {
	parallel(t)
	var mu sync.Mutex
	var hold bool
	held, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hold
		hold = false
		mu.Unlock()
		if h {
			close(held)
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(backend.Close)
	cfgs := embeddedConfigs(t, 2)
	srvs := startServersWith(t, cfgs, func(c *server.Config) {
		c.Routes["$connect"] = gateway.Route{Integration: &integration.Config{Type: "http", URI: backend.URL + "/connect"}}
	})
	s := srvs[1]
	sh := s.Cluster()
	self := sh.Self()

	mu.Lock()
	hold = true
	mu.Unlock()
	type dialed struct {
		ws  *websocket.Conn
		err error
	}
	got := make(chan dialed, 1)
	go func() {
		ws, _, err := websocket.DefaultDialer.Dial(s.WebSocketURLs()[0], nil)
		got <- dialed{ws, err}
	}()
	select {
	case <-held: // admitted, its id minted, its $connect under way
	case d := <-got:
		t.Fatalf("the upgrade ended before its $connect was held: %v", d.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the upgrade's $connect did not reach the backend")
	}

	sh.FenceNow("test: a fence while an upgrade's $connect runs")
	testenv.Eventually(t, 60*time.Second, func() error {
		if sh.Fenced() != 1 {
			return fmt.Errorf("S fenced %d times, want 1", sh.Fenced())
		}
		if _, ok := sh.Admit(); !ok {
			return errors.New("S is still fencing")
		}
		return nil
	})
	if sh.Self() != self || sh.Moves() != 0 {
		t.Fatalf("S on byte %d (was %d), moved %d times: want its byte taken back", sh.Self(), self, sh.Moves())
	}

	letGo()
	var d dialed
	select {
	case d = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the upgrade did not end once its $connect answered")
	}
	if d.err != nil {
		t.Fatalf("the upgrade: %v, want it accepted (then closed)", d.err)
	}
	defer d.ws.Close()
	_ = d.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := d.ws.ReadMessage(); !websocket.IsCloseError(err, 1012) {
		t.Fatalf("the client admitted before the fence: %v, want close 1012", err)
	}

	// A client admitted after the fence stays.
	ws, id := dial(t, s)
	if err := srvs[0].Hub().Send(t.Context(), id, hub.NewMessage([]byte("after"))); err != nil {
		t.Fatalf("a post to the client admitted after the fence: %v", err)
	}
	if got := read(t, ws); got != "after" {
		t.Fatalf("the client admitted after the fence got %q", got)
	}
}
