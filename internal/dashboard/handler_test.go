package dashboard_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/dashboard"
	"github.com/wsgate/wsgate/internal/testenv"
)

// openDemoDB opens a fresh demo database in a temporary directory.
func openDemoDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "demo.db")
	db, err := dashboard.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := dashboard.EnsureSchema(context.Background(), db, "orders"); err != nil {
		t.Fatal(err)
	}
	return db, path
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	res, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func TestConfig(t *testing.T) {
	db, path := openDemoDB(t)
	srv := httptest.NewServer(dashboard.Handler(dashboard.Config{DB: db, Table: "orders", Stage: "demo", Group: "orders"}))
	defer srv.Close()

	res, body := get(t, srv, "/api/config")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/config: %s %q: %s", res.Status, res.Header.Get("Content-Type"), body)
	}
	var cfg struct {
		Stage, Group, Table, SQLiteCommand string
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Stage != "demo" || cfg.Group != "orders" || cfg.Table != "orders" {
		t.Errorf("config = %+v", cfg)
	}
	if !strings.HasPrefix(cfg.SQLiteCommand, "sqlite3 -cmd '.timeout 5000' "+path+" ") || !strings.Contains(cfg.SQLiteCommand, "INSERT INTO orders") {
		t.Fatalf("sqliteCommand = %q, want an INSERT through sqlite3 on %s", cfg.SQLiteCommand, path)
	}

	// The command is only worth showing if it works: run it twice (each run
	// must make a new order) through a real shell and sqlite3.
	testenv.LookPath(t, "sqlite3", "apt-get install -y sqlite3")
	before := count(t, db, `SELECT count(*) FROM orders`)
	for range 2 {
		if out, err := exec.Command("sh", "-c", cfg.SQLiteCommand).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", cfg.SQLiteCommand, err, out)
		}
	}
	if got := count(t, db, `SELECT count(*) FROM orders`); got != before+2 {
		t.Errorf("after running the command twice: %d rows, want %d", got, before+2)
	}
	if got := count(t, db, `SELECT count(*) FROM orders WHERE status = 'pending' AND customer = 'You' AND updated_at <> ''`); got != 2 {
		t.Errorf("%d pending orders by You with a timestamp, want 2", got)
	}
}

func TestDefaultSQLiteCommandQuotesPath(t *testing.T) {
	for _, tc := range []struct{ name, path, prefix string }{
		{"plain", "demo.db", "sqlite3 -cmd '.timeout 5000' demo.db "},
		{"absolute", "/var/lib/wsgate/demo.db", "sqlite3 -cmd '.timeout 5000' /var/lib/wsgate/demo.db "},
		{"space", "my dir/demo.db", "sqlite3 -cmd '.timeout 5000' 'my dir/demo.db' "},
		{"quote", "it's.db", `sqlite3 -cmd '.timeout 5000' 'it'\''s.db' `},
		{"in memory", "", "sqlite3 -cmd '.timeout 5000' wsgate-demo.db "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dashboard.DefaultSQLiteCommand(tc.path, "orders"); !strings.HasPrefix(got, tc.prefix) {
				t.Errorf("DefaultSQLiteCommand(%q) = %q, want prefix %q", tc.path, got, tc.prefix)
			}
		})
	}
}

func count(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

type snapshotBody struct {
	Columns []string         `json:"columns"`
	Key     []string         `json:"key"`
	Rows    []map[string]any `json:"rows"`
	Viewers int              `json:"viewers"`
}

func TestSnapshot(t *testing.T) {
	db, _ := openDemoDB(t)
	srv := httptest.NewServer(dashboard.Handler(dashboard.Config{DB: db, Viewers: func() int { return 7 }}))
	defer srv.Close()

	if _, err := db.Exec(`INSERT INTO orders (id, status, customer, item, quantity, amount) VALUES ('o-new', 'paid', 'Zed', 'Mug', 3, 37.5)`); err != nil {
		t.Fatal(err)
	}
	res, body := get(t, srv, "/api/snapshot")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/snapshot: %s %q: %s", res.Status, res.Header.Get("Content-Type"), body)
	}
	var s snapshotBody
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	wantCols := []string{"id", "status", "customer", "item", "quantity", "amount", "updated_at"}
	if strings.Join(s.Columns, ",") != strings.Join(wantCols, ",") {
		t.Errorf("columns = %v, want %v", s.Columns, wantCols)
	}
	if len(s.Key) != 1 || s.Key[0] != "id" {
		t.Errorf("key = %v, want [id]", s.Key)
	}
	if s.Viewers != 7 {
		t.Errorf("viewers = %d, want 7", s.Viewers)
	}
	if want := count(t, db, `SELECT count(*) FROM orders`); len(s.Rows) != want {
		t.Fatalf("%d rows, want %d", len(s.Rows), want)
	}
	first := s.Rows[0]
	want := map[string]any{"id": "o-new", "status": "paid", "customer": "Zed", "item": "Mug", "quantity": 3.0, "amount": 37.5}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("newest row %s = %#v, want %#v (row %v)", k, first[k], v, first)
		}
	}
	if ts, _ := first["updated_at"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("updated_at = %q, want an ISO 8601 UTC timestamp", first["updated_at"])
	}
	statuses := map[any]bool{}
	for _, r := range s.Rows {
		statuses[r["status"]] = true
	}
	for _, st := range []string{"pending", "paid", "shipped", "delivered"} {
		if !statuses[st] {
			t.Errorf("no seeded row is %s: %v", st, statuses)
		}
	}
}

func TestSnapshotBounded(t *testing.T) {
	db, _ := openDemoDB(t)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range dashboard.SnapshotLimit + 100 {
		if _, err := tx.Exec(`INSERT INTO orders (id) VALUES (?)`, fmt.Sprintf("bulk-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dashboard.Handler(dashboard.Config{DB: db}))
	defer srv.Close()
	_, body := get(t, srv, "/api/snapshot")
	var s snapshotBody
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Rows) != dashboard.SnapshotLimit {
		t.Errorf("%d rows, want the limit %d", len(s.Rows), dashboard.SnapshotLimit)
	}
	if last := fmt.Sprintf("bulk-%d", dashboard.SnapshotLimit+99); s.Rows[0]["id"] != last {
		t.Errorf("first row %v, want the newest %s", s.Rows[0]["id"], last)
	}
}

func TestSnapshotMissingTable(t *testing.T) {
	db, _ := openDemoDB(t)
	srv := httptest.NewServer(dashboard.Handler(dashboard.Config{DB: db, Table: "nope"}))
	defer srv.Close()
	res, body := get(t, srv, "/api/snapshot")
	if res.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"message":"Internal server error"`) {
		t.Errorf("GET /api/snapshot of a missing table: %s %s", res.Status, body)
	}
}

func TestHandlerRejectsBadTable(t *testing.T) {
	db, _ := openDemoDB(t)
	defer func() {
		if recover() == nil {
			t.Error("Handler accepted table name `orders; DROP TABLE orders`")
		}
	}()
	dashboard.Handler(dashboard.Config{DB: db, Table: "orders; DROP TABLE orders"})
}

func TestPageAndAssets(t *testing.T) {
	db, _ := openDemoDB(t)
	srv := httptest.NewServer(dashboard.Handler(dashboard.Config{DB: db}))
	defer srv.Close()

	res, page := get(t, srv, "/")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s %q", res.Status, res.Header.Get("Content-Type"))
	}
	// Every asset the page references is embedded and served with its type.
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(page), -1)
	if len(refs) < 3 {
		t.Fatalf("page references %d assets, want the script, the stylesheet and the icon", len(refs))
	}
	texts := map[string]string{"index.html": string(page)}
	for _, m := range refs {
		ref := m[1]
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "//") {
			t.Errorf("page references %q, an external URL; the demo must work offline", ref)
			continue
		}
		res, body := get(t, srv, "/"+ref)
		want := types[filepath.Ext(ref)]
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), want) {
			t.Errorf("GET /%s: %s %q, want 200 %s", ref, res.Status, res.Header.Get("Content-Type"), want)
		}
		if want != "image/svg+xml" {
			texts[ref] = string(body)
		}
	}
	if len(texts) != 3 {
		t.Errorf("got page texts %v, want index.html, app.js and style.css", len(texts))
	}
	// No fetch, import or url() may leave the host: the demo runs offline.
	external := regexp.MustCompile(`(?i)https?://|url\(\s*['"]?//|@import`)
	for name, text := range texts {
		if loc := external.FindStringIndex(text); loc != nil {
			t.Errorf("%s refers outside the server: %q", name, text[max(0, loc[0]-30):min(len(text), loc[1]+30)])
		}
	}
	res, _ = get(t, srv, "/nope.js")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js: %s, want 404", res.Status)
	}
}

func TestOpenDB(t *testing.T) {
	// A path with characters that mean something in a URI still names
	// that file.
	path := filepath.Join(t.TempDir(), "a dir", "what?#%.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := dashboard.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := dashboard.EnsureSchema(context.Background(), db, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := dashboard.EnsureSchema(context.Background(), db, "orders"); err != nil {
		t.Fatalf("EnsureSchema on an existing table: %v", err)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var timeout int
	if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != 5000 {
		t.Errorf("busy_timeout = %d, %v; want 5000", timeout, err)
	}
	if n := count(t, db, `SELECT count(*) FROM orders`); n != 8 {
		t.Errorf("seeded %d rows, want 8 (and no more after the second EnsureSchema)", n)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not at %s: %v", path, err)
	}
}
