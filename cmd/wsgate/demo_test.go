package main

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/dashboardtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestDemoInChromium runs what `wsgate demo` runs and drives its page in
// headless Chromium: rows written by the sqlite3 CLI in another process
// appear, update and disappear on the page, and the viewer count shows.
func TestDemoInChromium(t *testing.T) {
	sqlite := testenv.LookPath(t, "sqlite3", "apt-get install -y sqlite3")
	testenv.LookPath(t, "chromium", "apt-get install -y chromium")
	db := filepath.Join(t.TempDir(), "demo.db")
	app := startDemo(t, demoOptions{db: db})

	page, closePage := dashboardtest.Open(t, "http://"+app.srv.Addr()+"/")
	defer closePage()
	if err := dashboardtest.WaitLive(page); err != nil {
		t.Fatalf("page never went live: %v", err)
	}
	sql := func(stmt string) {
		t.Helper()
		if out, err := exec.Command(sqlite, "-cmd", ".timeout 5000", db, stmt).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3 %q: %v\n%s", stmt, err, out)
		}
	}
	sql(`INSERT INTO orders (id, status, customer, item, quantity, amount) VALUES ('e2e-1', 'pending', 'Test', 'Widget', 1, 9.99)`)
	if err := dashboardtest.WaitRowStatus(page, "e2e-1", "pending"); err != nil {
		t.Fatalf("inserted row: %v", err)
	}
	sql(`UPDATE orders SET status = 'shipped' WHERE id = 'e2e-1'`)
	if err := dashboardtest.WaitRowStatus(page, "e2e-1", "shipped"); err != nil {
		t.Fatalf("updated row: %v", err)
	}
	sql(`DELETE FROM orders WHERE id = 'e2e-1'`)
	if err := dashboardtest.WaitRowGone(page, "e2e-1"); err != nil {
		t.Fatalf("deleted row: %v", err)
	}
	if err := dashboardtest.WaitViewers(page, 1); err != nil {
		t.Fatalf("viewers: %v", err)
	}
}
