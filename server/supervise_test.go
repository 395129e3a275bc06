package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/streams"
)

// sqliteDB makes a database file with an orders table and returns its path
// and a function running SQL on it through the sqlite3 CLI (another
// process, as an application would be).
func sqliteDB(t *testing.T) (string, func(string)) {
	t.Helper()
	bin := testenv.LookPath(t, "sqlite3", "apt-get install -y sqlite3")
	db := filepath.Join(t.TempDir(), "app.db")
	run := func(stmt string) {
		t.Helper()
		if out, err := exec.Command(bin, "-cmd", ".timeout 5000", db, stmt).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3 %q: %v\n%s", stmt, err, out)
		}
	}
	run(`CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT)`)
	return db, run
}

// startLogged is startServer with the server's log kept.
func startLogged(t *testing.T, text string) (*server.Server, *testenv.Buffer) {
	t.Helper()
	logs := &testenv.Buffer{}
	return startServerLog(t, text, logs), logs
}

// ordersStream is a config with the subscribe route and one stream named
// orders from the orders table of the SQLite file db to target.
func ordersStream(db, target string) string {
	return subscribeRoute + fmt.Sprintf(`
streams:
  - name: orders
    source: { type: sqlite, path: %q, tables: [orders], pollMillis: 5 }
    target: %s
`, db, target)
}

// waitStream polls GET /{stage}/@streams (signed) until the named stream
// satisfies cond, and returns it.
func waitStream(t *testing.T, srv *server.Server, name string, cond func(server.StreamJSON) error) server.StreamJSON {
	t.Helper()
	var got server.StreamJSON
	testenv.Eventually(t, 20*time.Second, func() error {
		var out server.StreamsJSON
		if err := json.Unmarshal(signedGet(t, srv.ManagementEndpoint()+"/@streams"), &out); err != nil {
			return err
		}
		for _, s := range out.Streams {
			if s.Name == name {
				got = s
				return cond(s)
			}
		}
		return fmt.Errorf("no stream %q in %+v", name, out)
	})
	return got
}

func subscribeOrders(t *testing.T, srv *server.Server) *websocket.Conn {
	t.Helper()
	c := dial(t, srv)
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","group":"orders"}`))
	if got := read(t, c); !strings.Contains(got, "subscribed") {
		t.Fatalf("subscribe answered %q", got)
	}
	return c
}

const subscribeRoute = `
listen: "127.0.0.1:0"
stage: dev
credentials: [{ accessKeyId: AKIDLOCAL, secretAccessKey: change-me }]
routes:
  subscribe: { groups: { join: "$request.body.group", allow: [orders] }, routeResponseSelectionExpression: "$default" }
`

// TestCorruptCheckpointFailsLoudly: a truncated DynamoDB checkpoint file
// makes its stream "failed" in @streams with an error naming the file and
// the way out, logged at ERROR, and the stream is not restarted; another
// stream of the same server goes on.
func TestCorruptCheckpointFailsLoudly(t *testing.T) {
	db, sql := sqliteDB(t)
	ckpt := filepath.Join(t.TempDir(), "ckpt.json")
	if err := os.WriteFile(ckpt, []byte(`{"streamArn":"arn:aws:dynamodb:us-east-1:123456789012:table/Orders/str`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	// The endpoint is never called: the checkpoint is read first.
	srv, logs := startLogged(t, subscribeRoute+fmt.Sprintf(`
streams:
  - name: ddb
    source: { type: dynamodb, streamArn: "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2024-01-01T00:00:00.000", endpoint: "http://127.0.0.1:1", checkpoint: %q }
    target: { group: orders }
  - name: sql
    source: { type: sqlite, path: %q, tables: [orders] }
    target: { group: orders }
`, ckpt, db))
	st := waitStream(t, srv, "ddb", func(s server.StreamJSON) error {
		if s.State != streams.StateFailed {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})
	for _, want := range []string{ckpt, "is corrupt", "unexpected end of JSON input", "move it aside"} {
		if !strings.Contains(st.Error, want) {
			t.Errorf("@streams error %q does not contain %q", st.Error, want)
		}
	}
	if st.Restarts != 0 {
		t.Errorf("restarts = %d, want 0: a corrupt checkpoint needs a person", st.Restarts)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "stream=ddb") || !strings.Contains(l, "is corrupt") {
		t.Errorf("no ERROR log naming the stream and the corrupt checkpoint:\n%s", l)
	}
	if b, _ := os.ReadFile(ckpt); !bytes.HasSuffix(b, []byte("table/Orders/str")) {
		t.Errorf("checkpoint rewritten: %s", b)
	}

	c := subscribeOrders(t, srv)
	sql(`INSERT INTO orders VALUES ('o-1', 'pending')`)
	if got := read(t, c); !strings.Contains(got, `"o-1"`) {
		t.Errorf("the healthy stream delivered %s", got)
	}
	waitStream(t, srv, "sql", func(s server.StreamJSON) error {
		if s.State != streams.StateRunning || s.Delivered != 1 {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
}

// TestStreamWaitsForDroppedTable: a captured table dropped by a migration
// does not stop its stream: @streams shows it running with the missing
// table as lastError, and once the table is back its writes flow, also
// those made before the source put its triggers back. (Restarts after a
// failed Run are covered by streams' supervisor tests.)
func TestStreamWaitsForDroppedTable(t *testing.T) {
	db, sql := sqliteDB(t)
	srv := startServer(t, ordersStream(db, "{ group: orders }"))
	c := subscribeOrders(t, srv)
	sql(`INSERT INTO orders VALUES ('o-1', 'pending')`)
	if got := read(t, c); !strings.Contains(got, `"o-1"`) {
		t.Fatalf("first record %s", got)
	}

	sql(`DROP TABLE orders`)
	st := waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.State != streams.StateRunning || !strings.Contains(s.LastError, "orders does not exist") {
			return fmt.Errorf("state %s, lastError %q", s.State, s.LastError)
		}
		return nil
	})
	t.Logf("while the table is missing: %+v", st)

	sql(`CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT); INSERT INTO orders VALUES ('o-2', 'pending')`)
	if got := read(t, c); !strings.Contains(got, `"o-2"`) {
		t.Fatalf("record after the table came back %s", got)
	}
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.State != streams.StateRunning || s.Restarts != 0 || s.Delivered != 2 || s.LastError != "" {
			return fmt.Errorf("%+v, want running without restarts, 2 delivered, no error", s)
		}
		return nil
	})
}

// TestStreamLagGrowsWhileTargetFails: while the integration keeps failing
// the lag in @streams is the age of the record waiting, so it grows; once
// the integration succeeds it drops to 0.
func TestStreamLagGrowsWhileTargetFails(t *testing.T) {
	db, sql := sqliteDB(t)
	var ok atomic.Bool
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !ok.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
		}
	}))
	defer backend.Close()
	srv := startServer(t, ordersStream(db, fmt.Sprintf("{ integration: { type: http, uri: %q } }", backend.URL)))
	sql(`INSERT INTO orders VALUES ('o-1', 'pending')`)
	first := waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.Integration == nil || s.Integration.Failures < 2 || s.LagMillis <= 0 {
			return fmt.Errorf("%+v, want failures and a lag", s)
		}
		return nil
	})
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.LagMillis <= first.LagMillis || s.Delivered != 0 || s.State != streams.StateRunning {
			return fmt.Errorf("lag %d ms (was %d), delivered %d, state %s: want a growing lag, nothing delivered", s.LagMillis, first.LagMillis, s.Delivered, s.State)
		}
		return nil
	})
	ok.Store(true)
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.LagMillis != 0 || s.Delivered != 1 {
			return fmt.Errorf("lag %d ms, delivered %d: want 0 and 1", s.LagMillis, s.Delivered)
		}
		return nil
	})
}

// TestGroupStreamCountsNoSubscribers: a record published while nobody is
// subscribed is counted as reaching nobody, not as delivered to someone.
func TestGroupStreamCountsNoSubscribers(t *testing.T) {
	db, sql := sqliteDB(t)
	srv := startServer(t, ordersStream(db, "{ group: orders }"))
	sql(`INSERT INTO orders VALUES ('o-1', 'pending')`)
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.Group == nil || *s.Group != (server.GroupJSON{Published: 1, NoSubscribers: 1}) || s.Delivered != 1 {
			return fmt.Errorf("%+v group %+v, want 1 published to nobody", s, s.Group)
		}
		return nil
	})
	c := subscribeOrders(t, srv)
	sql(`INSERT INTO orders VALUES ('o-2', 'pending')`)
	if got := read(t, c); !strings.Contains(got, `"o-2"`) {
		t.Fatalf("subscriber got %s, want o-2 (o-1 was published before it joined and is gone)", got)
	}
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if *s.Group != (server.GroupJSON{Published: 2, Queued: 1, NoSubscribers: 1}) {
			return fmt.Errorf("group %+v, want 2 published, 1 queued, 1 to nobody", s.Group)
		}
		return nil
	})
}

// TestNewReleasesGatewayWhenAStreamFails: a stream that cannot be built
// fails New, and the gateway New had built (its sweeper goroutine, its
// integrations) is shut down, not leaked.
func TestNewReleasesGatewayWhenAStreamFails(t *testing.T) {
	sweepers := func() int {
		buf := make([]byte, 1<<20)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				return strings.Count(string(buf[:n]), "gateway.(*Gateway).sweep(")
			}
			buf = make([]byte, 2*len(buf))
		}
	}
	before := sweepers()
	cfg, err := server.ParseConfig([]byte(interopConfig + fmt.Sprintf(`
routes:
  echo: { integration: { type: mock } }
streams:
  - source: { type: sqlite, path: %q, tables: [orders] }
    target: { group: orders }
`, filepath.Join(t.TempDir(), "missing.db"))))
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = t.TempDir()
	for range 3 {
		if _, err := server.New(*cfg, slog.New(slog.DiscardHandler)); err == nil {
			t.Fatal("New succeeded with a stream on a missing database")
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := sweepers(); n > before {
			return errors.New(fmt.Sprint(n-before, " gateway sweepers left running after New failed"))
		}
		return nil
	})
}
