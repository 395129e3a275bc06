package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"
	"sigs.k8s.io/yaml"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// reloadBase is the config the reload tests start with: a mock echo
// route, a slow route to an http backend, and one credential.
const reloadBase = `
listen: "127.0.0.1:0"
stage: dev
credentials: [{ accessKeyId: AKIDOLD, secretAccessKey: old-secret }]
routes:
  echo: { integration: { type: mock }, routeResponseSelectionExpression: "$default" }
  slow: { integration: { type: http, uri: %q }, routeResponseSelectionExpression: "$default" }
`

// reloadNext adds the hello route, removes slow and rotates the
// credential.
const reloadNext = `
listen: "127.0.0.1:0"
stage: dev
credentials: [{ accessKeyId: AKIDNEW, secretAccessKey: new-secret }]
routes:
  echo: { integration: { type: mock }, routeResponseSelectionExpression: "$default" }
  hello: { integration: { type: mock, response: { statusCode: 200, body: "hi" } }, routeResponseSelectionExpression: "$default" }
`

// reload parses text and reloads srv with it (keeping the state
// directory startServer chose), failing the test if either fails.
func reload(t *testing.T, srv *server.Server, text string) server.Reloaded {
	t.Helper()
	cfg, err := server.ParseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = srv.Config().StateDir
	r, err := srv.Reload(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// postAs posts data to a connection through the management API, signed
// with the given key; it returns the HTTP status.
func postAs(t *testing.T, srv *server.Server, key, secret, id, data string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.ManagementEndpoint()+"/@connections/"+id, strings.NewReader(data))
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(data)))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		req, sum, "execute-api", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReloadKeepsConnections: with 1,000 real WebSocket clients connected
// and a call in flight, a reload adds a route, removes the route of the
// call in flight and rotates the credential. No client is dropped, the
// call in flight answers from the config it started on, the new route
// answers every client, the old key is refused and the new one accepted,
// and the log line says what changed.
func TestReloadKeepsConnections(t *testing.T) {
	const clients = 1000
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = io.WriteString(w, `{"statusCode":200,"body":"slow done"}`)
	}))
	defer backend.Close()
	defer close(release) // before the backend closes, if the test fails early
	srv, logs := startLogged(t, fmt.Sprintf(reloadBase, backend.URL+"/slow"))

	conns := make([]*websocket.Conn, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	sem := make(chan struct{}, 32) // handshakes at once
	for i := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", nil)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if len(errs) > 0 {
		t.Fatalf("dial: %v", <-errs)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := srv.Gateway().Connections(); n != clients {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})

	// A call in flight on the route the reload removes. An unrouted
	// message's error frame says the client's connection id first.
	slow := conns[0]
	if err := slow.WriteMessage(websocket.TextMessage, []byte(`{"action":"none"}`)); err != nil {
		t.Fatal(err)
	}
	var frame struct{ Message, ConnectionID string }
	if err := json.Unmarshal([]byte(read(t, slow)), &frame); err != nil || frame.Message != "Forbidden" {
		t.Fatalf("unrouted message: %+v %v", frame, err)
	}
	id := frame.ConnectionID
	if err := slow.WriteMessage(websocket.TextMessage, []byte(`{"action":"slow"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow call did not reach its backend")
	}

	r := reload(t, srv, reloadNext)
	if !slices.Equal(r.RoutesAdded, []string{"hello"}) || !slices.Equal(r.RoutesRemoved, []string{"slow"}) || len(r.RoutesChanged) != 0 ||
		!slices.Equal(r.CredentialsAdded, []string{"AKIDNEW"}) || !slices.Equal(r.CredentialsRemoved, []string{"AKIDOLD"}) || len(r.NeedsRestart) != 0 {
		t.Fatalf("reload reported %+v", r)
	}
	line := logs.String()
	if !strings.Contains(line, `msg="config reloaded" routesAdded=[hello] routesRemoved=[slow] credentialsAdded=[AKIDNEW] credentialsRemoved=[AKIDOLD]`) {
		t.Errorf("no reload line in the log:\n%s", line)
	}

	// The call in flight finishes on the config it started with.
	release <- struct{}{}
	if got := read(t, slow); got != "slow done" {
		t.Fatalf("the call in flight answered %q", got)
	}
	// The removed route is gone for new messages; no handshake dropped.
	if err := slow.WriteMessage(websocket.TextMessage, []byte(`{"action":"slow"}`)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, slow); !strings.Contains(got, `"Forbidden"`) {
		t.Fatalf("removed route answered %q", got)
	}

	// Every client is still connected and the new route answers each.
	for _, c := range conns {
		wg.Go(func() {
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"hello"}`)); err != nil {
				errs <- err
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, b, err := c.ReadMessage(); err != nil || string(b) != "hi" {
				errs <- fmt.Errorf("hello answered %q, %v", b, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d clients failed after the reload, first: %v", len(errs), <-errs)
	}
	if n := srv.Gateway().Connections(); n != clients {
		t.Fatalf("%d connections after the reload, want %d", n, clients)
	}

	// The old key is refused, the new one accepted.
	if st := postAs(t, srv, "AKIDOLD", "old-secret", id, "old"); st != http.StatusForbidden {
		t.Errorf("old credential: %d, want 403", st)
	}
	if st := postAs(t, srv, "AKIDNEW", "new-secret", id, "new"); st != http.StatusOK {
		t.Fatalf("new credential: %d, want 200", st)
	}
	if got := read(t, slow); got != "new" {
		t.Fatalf("posted %q", got)
	}
}

// TestReloadRefusesBrokenConfig: a config that fails validation, or that
// validates but cannot be built (Check), changes nothing: the old routes
// and credential go on, and the log says why.
func TestReloadRefusesBrokenConfig(t *testing.T) {
	srv, logs := startLogged(t, fmt.Sprintf(reloadBase, "http://127.0.0.1:1/slow"))
	c := dial(t, srv)
	for _, tc := range []struct {
		name   string
		change func(*server.Config)
		want   string
	}{
		{"invalid", func(c *server.Config) {
			c.Routes["bad"] = gateway.Route{Integration: &integration.Config{Type: "http"}}
		}, `routes["bad"].integration.uri: required`},
		{"cannot build", func(c *server.Config) {
			c.Routes["cmd"] = gateway.Route{Integration: &integration.Config{Type: "command", Command: []string{"x"}, Dir: "/nonexistent/dir"}}
		}, "/nonexistent/dir is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := server.ParseConfig([]byte(reloadNext))
			if err != nil {
				t.Fatal(err)
			}
			tc.change(cfg)
			_, err = srv.Reload(*cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reload error %v, want %q", err, tc.want)
			}
			if !strings.Contains(logs.String(), "config reload refused, the running config stays") {
				t.Errorf("no refusal in the log:\n%s", logs)
			}
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"echo"}`))
			if got := read(t, c); got != `{"action":"echo"}` {
				t.Fatalf("echo after a refused reload: %q", got)
			}
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"hello"}`))
			if got := read(t, c); !strings.Contains(got, `"Forbidden"`) {
				t.Fatalf("the refused config's route answered %q", got)
			}
			if resp, _ := signedRequest(t, http.MethodGet, srv.ManagementEndpoint()+"/@connections"); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("a key the refused config has: %d", resp.StatusCode)
			}
		})
	}
}

// TestReloadNeedsRestart: settings a running server cannot change are
// named in the log and keep their running values; the rest applies.
func TestReloadNeedsRestart(t *testing.T) {
	srv, logs := startLogged(t, fmt.Sprintf(reloadBase, "http://127.0.0.1:1/slow"))
	c := dial(t, srv)
	r := reload(t, srv, strings.Replace(reloadNext, "stage: dev", "stage: prod\nmaxInflight: 50\noutboundQueueFrames: 64", 1))
	if !slices.Equal(r.NeedsRestart, []string{"stage", "maxInflight"}) || !slices.Equal(r.Settings, []string{"outboundQueueFrames"}) {
		t.Fatalf("reload reported %+v", r)
	}
	if !strings.Contains(logs.String(), `these settings need a restart, their running values stay" needsRestart="[stage maxInflight]"`) {
		t.Errorf("no restart warning in the log:\n%s", logs)
	}
	if got := srv.Config(); got.Stage != "dev" || got.MaxInflight != 1000 || got.OutboundQueueFrames != 64 {
		t.Fatalf("config in force: stage %s, maxInflight %d, outboundQueueFrames %d", got.Stage, got.MaxInflight, got.OutboundQueueFrames)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"hello"}`)) // still at /dev
	if got := read(t, c); got != "hi" {
		t.Fatalf("hello answered %q", got)
	}
}

// TestReloadStreams: a stream whose config did not change keeps running
// through a reload (nothing delivered again, not restarted); a changed
// one is stopped and started again from its saved position, so what was
// delivered before is not delivered again and what follows is.
func TestReloadStreams(t *testing.T) {
	db, sql := sqliteDB(t)
	got := make(chan string, 16)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev events.DynamoDBEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rec := range ev.Records {
			got <- rec.Change.Keys["id"].String()
		}
	}))
	defer backend.Close()
	config := ordersStream(db, fmt.Sprintf("{ integration: { type: http, uri: %q } }", backend.URL))
	srv, logs := startLogged(t, config)
	next := func(want string) {
		t.Helper()
		select {
		case id := <-got:
			if id != want {
				t.Fatalf("delivered %s, want %s", id, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s not delivered within 20 s", want)
		}
	}
	sql(`INSERT INTO orders VALUES ('o-1', 'new')`)
	next("o-1")

	sql(`CREATE TABLE items (id TEXT PRIMARY KEY)`)
	r := reload(t, srv, config+"  - name: more\n    source: { type: sqlite, path: "+fmt.Sprintf("%q", db)+", tables: [items], pollMillis: 5 }\n    target: { group: orders }\n")
	if len(r.StreamsRestarted) != 0 || !slices.Equal(r.StreamsStarted, []string{"more"}) {
		t.Fatalf("reload with orders unchanged: %+v", r)
	}
	if n := strings.Count(logs.String(), `msg="stream started" stream=orders`); n != 1 {
		t.Fatalf("orders started %d times", n)
	}
	sql(`INSERT INTO orders VALUES ('o-2', 'new')`)
	next("o-2")

	r = reload(t, srv, strings.Replace(config, "pollMillis: 5", "pollMillis: 10", 1))
	if !slices.Equal(r.StreamsRestarted, []string{"orders"}) || !slices.Equal(r.StreamsStopped, []string{"more"}) {
		t.Fatalf("reload with orders changed: %+v", r)
	}
	if !strings.Contains(logs.String(), `streamsRestarted=[orders] streamsStopped=[more]`) {
		t.Errorf("no reload line:\n%s", logs)
	}
	sql(`INSERT INTO orders VALUES ('o-3', 'new')`)
	next("o-3") // not o-1 or o-2 again
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.State != "running" {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})
	select {
	case id := <-got:
		t.Fatalf("%s delivered once too often", id)
	default:
	}
}

// TestReloadFunctions: a function whose definition did not change keeps
// its process through a reload; a changed one is restarted (a new
// process with the new environment) once the call running on its old
// process has finished there, and a removed one is stopped.
func TestReloadFunctions(t *testing.T) {
	testenv.LookPath(t, "python3", "apt-get install -y python3")
	code, sync := t.TempDir(), t.TempDir()
	// {"wait": true} makes the handler say it started (a file) and wait
	// for the test's go-ahead (another file), so a call is surely running
	// across the reload.
	src := fmt.Sprintf(`import json, os, time
def handler(event, context):
    if json.loads(event.get("body") or "{}").get("wait"):
        open(os.path.join(%[1]q, "started"), "w").close()
        while not os.path.exists(os.path.join(%[1]q, "release")):
            time.sleep(0.01)
    return {"statusCode": 200, "body": os.environ.get("TAG", "") + " " + str(os.getpid())}
`, sync)
	if err := os.WriteFile(filepath.Join(code, "app.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	config := func(keepTag, changeTag string, third bool) string {
		s := fmt.Sprintf(`
listen: "127.0.0.1:0"
stage: dev
globals: { cacheDir: %[1]q }
functions:
  Keep: { runtime: python3.11, handler: app.handler, codeUri: %[2]q, env: { TAG: %[3]s } }
  Change: { runtime: python3.11, handler: app.handler, codeUri: %[2]q, env: { TAG: %[4]s } }
`, filepath.Join(code, ".cache"), code, keepTag, changeTag)
		if third {
			s += fmt.Sprintf("  Gone: { runtime: python3.11, handler: app.handler, codeUri: %q }\n", code)
		}
		return s + `routes:
  keep: { integration: { type: lambda, function: Keep }, routeResponseSelectionExpression: $default }
  change: { integration: { type: lambda, function: Change }, routeResponseSelectionExpression: $default }
`
	}
	srv := startServer(t, config("k", "a", true))
	c := dial(t, srv)
	ask := func(route string) (tag, pid string) {
		t.Helper()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"`+route+`"}`))
		tag, pid, _ = strings.Cut(read(t, c), " ")
		return tag, pid
	}
	_, keepPID := ask("keep")
	_, changePID := ask("change")

	// A call running on the old Change across the reload.
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"change","wait":true}`))
	testenv.Eventually(t, 20*time.Second, func() error {
		_, err := os.Stat(filepath.Join(sync, "started"))
		return err
	})
	r := reload(t, srv, config("k", "b", false))
	if !slices.Equal(r.Functions.Restarted, []string{"Change"}) || !slices.Equal(r.Functions.Removed, []string{"Gone"}) ||
		len(r.Functions.Added) != 0 || !slices.Equal(r.RoutesChanged, []string{"change"}) {
		t.Fatalf("reload reported %+v", r)
	}
	if err := os.WriteFile(filepath.Join(sync, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "a "+changePID {
		t.Fatalf("the call running across the reload answered %q, want it from the old process (a %s)", got, changePID)
	}
	if tag, pid := ask("keep"); tag != "k" || pid != keepPID {
		t.Errorf("unchanged function: %s %s, want the same process %s", tag, pid, keepPID)
	}
	if tag, pid := ask("change"); tag != "b" || pid == changePID {
		t.Errorf("changed function: %s %s, want TAG b in a new process (was %s)", tag, pid, changePID)
	}
	testenv.Eventually(t, 20*time.Second, func() error { // the old process is stopped
		if err := testenv.ProcessGone(atoi(t, changePID)); err != nil {
			return fmt.Errorf("the changed function's old process: %w", err)
		}
		return nil
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// TestReloadRefusesGraceBeyondShutdownTimeout: a reload that would lower
// shutdownTimeoutSeconds to a running stream's deliverGraceSeconds (or
// raise the grace to it) is refused; the running config stays, and the
// stream keeps running.
func TestReloadRefusesGraceBeyondShutdownTimeout(t *testing.T) {
	db, sql := sqliteDB(t)
	config := ordersStream(db, "{ group: orders }")
	srv, logs := startLogged(t, config)
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.State != "running" {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})
	for _, tc := range []struct{ name, text, want string }{
		{"timeout lowered", "shutdownTimeoutSeconds: 5\n" + config,
			"streams[0].source.deliverGraceSeconds: 5 (the default) must be less than shutdownTimeoutSeconds (5)"},
		{"grace raised", strings.Replace(config, "pollMillis: 5", "pollMillis: 5, deliverGraceSeconds: 30", 1),
			"streams[0].source.deliverGraceSeconds: 30 must be less than shutdownTimeoutSeconds (30)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg server.Config
			if err := yaml.UnmarshalStrict([]byte(tc.text), &cfg); err != nil {
				t.Fatal(err)
			}
			cfg.StateDir = srv.Config().StateDir
			_, err := srv.Reload(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reload error %v, want %q", err, tc.want)
			}
			if !strings.Contains(logs.String(), "config reload refused, the running config stays") {
				t.Errorf("no refusal in the log:\n%s", logs)
			}
			if got := srv.Config(); got.ShutdownTimeoutSeconds != 30 || got.Streams[0].Source.DeliverGraceSeconds != nil {
				t.Fatalf("config in force: shutdownTimeoutSeconds %d, deliverGraceSeconds %v", got.ShutdownTimeoutSeconds, got.Streams[0].Source.DeliverGraceSeconds)
			}
		})
	}
	// The stream was not stopped: it was started once, and delivers.
	if n := strings.Count(logs.String(), `msg="stream started" stream=orders`); n != 1 {
		t.Fatalf("orders started %d times", n)
	}
	sql(`INSERT INTO orders VALUES ('o-1', 'new')`)
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.Delivered != 1 {
			return fmt.Errorf("delivered %d", s.Delivered)
		}
		return nil
	})
}
