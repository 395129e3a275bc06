package dashboard_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/dashboard"
	"github.com/wsgate/wsgate/internal/dashboardtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
	"github.com/wsgate/wsgate/streams/sqlite"
)

// TestBrowserConvergesWithSQLiteSource feeds the page from wsgate's real
// SQLite change source (triggers, change log, GroupTarget) instead of the
// test's diffing capture, runs the generator fast, and checks that the page
// ends up showing exactly the table's rows, in the table's order.
func TestBrowserConvergesWithSQLiteSource(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "demo.db")
	db, err := dashboard.OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := dashboard.EnsureSchema(ctx, db, "orders"); err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.New(streams.SourceConfig{Type: "sqlite", Path: path, Tables: []string{"orders"}},
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Install(ctx); err != nil {
		t.Fatal(err)
	}
	gw := &fakeGateway{t: t, group: "orders", conns: map[*websocket.Conn]bool{}}
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(ctx, streams.NewGroupTarget(streams.TargetConfig{Group: "orders"}, gw)) }()
	defer func() {
		cancel()
		if err := <-srcDone; err != nil {
			t.Errorf("source: %v", err)
		}
	}()
	mux := http.NewServeMux()
	mux.Handle("/demo", gw)
	mux.Handle("/", dashboard.Handler(dashboard.Config{DB: db, Viewers: gw.viewers}))
	srv := httptest.NewServer(mux)
	defer func() {
		gw.setDown(true)
		srv.Close()
	}()

	page, _ := dashboardtest.Open(t, srv.URL+"/")
	within(t, page, dashboardtest.WaitLive)
	genCtx, stopGen := context.WithCancel(ctx)
	genDone := make(chan error, 1)
	go func() { genDone <- (&dashboard.Generator{DB: db, Rate: 50}).Run(genCtx) }()
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitFeed(ctx, 60) })
	// A hand-made change, as the page suggests, with columns left to their
	// defaults.
	mustExec(t, db, `INSERT INTO orders (id, status, amount) VALUES ('you-1', 'refunded', 1.1)`)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowStatus(ctx, "you-1", "refunded") })
	stopGen()
	if err := <-genDone; err != nil {
		t.Fatalf("generator: %v", err)
	}

	testenv.Eventually(t, 60*time.Second, func() error {
		shown, err := dashboardtest.Rows(page)
		if err != nil {
			return err
		}
		table, err := tableRows(db)
		if err != nil {
			return err
		}
		if len(shown) != len(table) {
			return fmt.Errorf("page shows %d rows, table holds %d", len(shown), len(table))
		}
		for i := range table {
			if !maps.Equal(shown[i], table[i]) {
				return fmt.Errorf("row %d: page shows %v, table holds %v", i, shown[i], table[i])
			}
		}
		return nil
	})
}

// tableRows reads the orders table, newest first, in the shape
// dashboardtest.Rows returns.
func tableRows(db *sql.DB) ([]map[string]string, error) {
	byID, err := readTable(context.Background(), db)
	if err != nil {
		return nil, err
	}
	ids, err := db.Query(`SELECT id FROM orders ORDER BY rowid DESC`)
	if err != nil {
		return nil, err
	}
	defer ids.Close()
	var out []map[string]string
	for ids.Next() {
		var id string
		if err := ids.Scan(&id); err != nil {
			return nil, err
		}
		r := map[string]string{"": id}
		for c, v := range byID[id] {
			if f, ok := v.(float64); ok {
				r[c] = strconv.FormatFloat(f, 'f', -1, 64)
			} else {
				r[c] = fmt.Sprint(v)
			}
		}
		out = append(out, r)
	}
	return out, ids.Err()
}
