package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestShutdownRace: a connection whose $connect finishes while Shutdown
// runs does not escape it: it is refused (503) or closed with 1001, and
// Shutdown leaves no connection open (item 19).
func TestShutdownRace(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	be := newBackend(t, func(path string, _ []byte) (int, string) {
		if path == "/connect" {
			close(arrived)
			<-release
		}
		return 200, ""
	})
	cfg := baseConfig()
	cfg.Routes["$connect"] = be.route("/connect")
	tg := startGateway(t, cfg)

	type dialed struct {
		c    *websocket.Conn
		resp *http.Response
		err  error
	}
	dial := make(chan dialed, 1)
	go func() {
		c, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), nil)
		dial <- dialed{c, resp, err}
	}()
	<-arrived
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- tg.gw.Shutdown(ctx)
	}()
	// Shutdown has begun once a new upgrade is refused.
	testenv.Eventually(t, 10*time.Second, func() error {
		_, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), nil)
		if err != nil && resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
			return nil
		}
		return fmt.Errorf("upgrade during shutdown: %v", err)
	})
	close(release)
	d := <-dial
	switch {
	case d.err != nil:
		if d.resp == nil || d.resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("racing upgrade: %v, want 503 or a 1001 close", d.err)
		}
	default:
		defer d.c.Close()
		if code, _ := readClose(t, d.c); code != 1001 {
			t.Fatalf("racing connection closed with %d, want 1001", code)
		}
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if n := tg.gw.Connections(); n != 0 {
		t.Fatalf("%d connections open after shutdown", n)
	}
}

// TestShutdownDuringHandshakes: handshakes whose $connect call starts while
// Shutdown begins are each refused (503) or closed (1001), and Shutdown
// waits for their calls: run under -race, a call counted from zero while
// Shutdown already waited on the count was a data race.
func TestShutdownDuringHandshakes(t *testing.T) {
	be := newBackend(t, func(string, []byte) (int, string) { return 200, "" })
	cfg := baseConfig()
	cfg.Routes["$connect"] = be.route("/connect")
	for round := range 20 {
		tg := startGateway(t, cfg)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), nil)
					if err != nil {
						if resp == nil || resp.StatusCode == http.StatusServiceUnavailable {
							return // shut down: refused, or the listener is gone
						}
						t.Errorf("round %d: handshake: %v (%d)", round, err, resp.StatusCode)
						return
					}
					_ = c.Close()
				}
			}()
		}
		// Shutdown starts while handshakes are under way.
		testenv.Eventually(t, 10*time.Second, func() error {
			if be.count("/connect") < (round+1)*4 {
				return fmt.Errorf("%d $connect calls so far", be.count("/connect"))
			}
			return nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := tg.gw.Shutdown(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		cancel()
		_ = tg.srv.Close()
		wg.Wait()
	}
}
