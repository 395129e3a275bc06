package gateway_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/httpfront"
	"github.com/wsgate/wsgate/integration"
)

// TestInlineReloadAddsConnect: a reload that adds a $connect route
// between the front's Inline answer and the upgrade's acquire of the
// config does not make the accept loop call the backend: that handshake
// is answered 503 at once, and the next connection (served on a pooled
// goroutine, its $connect waiting on a backend that blocks) is accepted
// by the front's one accept loop.
func TestInlineReloadAddsConnect(t *testing.T) {
	calls := make(chan struct{}, 4)
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	be := newBlockingBackend(t, calls, release)

	cfg := baseConfig()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	front := &httpfront.Server{Fallback: srv, DeferAccept: true, Inline: gw.Inline, InlineLoops: 1}
	served := make(chan error, 1)
	go func() { served <- front.Serve(ln) }()
	t.Cleanup(func() {
		once.Do(func() { close(release) })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = front.Shutdown(ctx)
		<-served
		_ = gw.Shutdown(ctx)
	})
	url := "ws://" + ln.Addr().String() + "/dev"
	dial := func() (*websocket.Conn, int, error) {
		d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
		c, resp, err := d.Dial(url, nil)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if c != nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		return c, status, err
	}
	// Serving, inline: TCP_DEFER_ACCEPT is set once a first one is.
	if _, _, err := dial(); err != nil {
		t.Fatal(err)
	}

	withConnect := baseConfig()
	withConnect.Routes["$connect"] = gateway.Route{Integration: &integration.Config{Type: "http", URI: be + "/connect"}}
	var reloaded bool
	gateway.SetTestHookUpgradeInline(func() {
		if reloaded {
			return
		}
		reloaded = true
		if _, _, err := gw.Reload(withConnect, nil); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() { gateway.SetTestHookUpgradeInline(nil) })

	if _, status, err := dial(); err == nil || status != http.StatusServiceUnavailable {
		t.Fatalf("the handshake across the reload: status %d, %v; want 503", status, err)
	}
	select {
	case <-calls:
		t.Fatal("$connect called for the handshake Inline took")
	default:
	}
	// The next one is accepted and calls $connect (which blocks) on a
	// pooled goroutine; once released it connects.
	next := make(chan error, 1)
	go func() {
		_, status, err := dial()
		if err == nil && status != http.StatusSwitchingProtocols {
			err = &statusError{status}
		}
		next <- err
	}()
	<-calls
	once.Do(func() { close(release) })
	if err := <-next; err != nil {
		t.Fatalf("the next handshake: %v", err)
	}
}

type statusError struct{ status int }

func (e *statusError) Error() string { return http.StatusText(e.status) }

// newBlockingBackend is a $connect backend that signals each call on
// calls and answers 200 once release is closed.
func newBlockingBackend(t *testing.T, calls chan<- struct{}, release <-chan struct{}) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
