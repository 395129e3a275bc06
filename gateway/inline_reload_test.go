package gateway_test

import (
	"context"
	"encoding/json"
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
	testInlineReloadAdds(t, nil, func(cfg *gateway.Config, be string) {
		cfg.Routes["$connect"] = gateway.Route{Integration: &integration.Config{Type: "http", URI: be + "/connect"}}
	})
}

// TestInlineReloadAddsAuthorizer: the same for a reload that adds a
// REQUEST authorizer: the handshake Inline took is answered 503 without
// calling it, and the next one is authorized (Allow) on a pooled
// goroutine.
func TestInlineReloadAddsAuthorizer(t *testing.T) {
	testInlineReloadAdds(t, http.Header{"Authorization": {"allow"}}, func(cfg *gateway.Config, be string) {
		cfg.Authorizer = &gateway.AuthorizerConfig{
			Integration:    &integration.Config{Type: "http", URI: be + "/authorize"},
			IdentitySource: []string{"route.request.header.Authorization"},
		}
	})
}

// testInlineReloadAdds: a handshake (with header) that Inline said yes
// to on a bare config, across a reload that add makes call the backend
// at be, is answered 503 without a call; the next one calls it, waits
// while it blocks, and connects once it answers.
func testInlineReloadAdds(t *testing.T, header http.Header, add func(cfg *gateway.Config, be string)) {
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
		c, resp, err := d.Dial(url, header)
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

	withBackend := baseConfig()
	add(&withBackend, be)
	var reloaded bool
	gateway.SetTestHookUpgradeInline(func() {
		if reloaded {
			return
		}
		reloaded = true
		if _, _, err := gw.Reload(withBackend, nil); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() { gateway.SetTestHookUpgradeInline(nil) })

	if _, status, err := dial(); err == nil || status != http.StatusServiceUnavailable {
		t.Fatalf("the handshake across the reload: status %d, %v; want 503", status, err)
	}
	select {
	case <-calls:
		t.Fatal("the backend called for the handshake Inline took")
	default:
	}
	// The next one is accepted and calls the backend (which blocks) on a
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

// newBlockingBackend is a $connect and authorizer backend that signals
// each call on calls and, once release is closed, answers 200: to the
// authorizer (path /authorize) with a policy that allows the method ARN
// of its event.
func newBlockingBackend(t *testing.T, calls chan<- struct{}, release <-chan struct{}) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- struct{}{}
		<-release
		if r.URL.Path != "/authorize" {
			w.WriteHeader(http.StatusOK)
			return
		}
		var ev struct{ MethodArn string }
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		policy, _ := json.Marshal(map[string]any{"principalId": "p", "policyDocument": map[string]any{
			"Version":   "2012-10-17",
			"Statement": []map[string]string{{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ev.MethodArn}},
		}})
		_, _ = w.Write(policy)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
