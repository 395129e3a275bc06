package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestDemoPrintsARunnableCLICommand runs the management command the demo
// prints as it is printed: its environment assignments, then the program
// (go run, as the README starts the demo), then the arguments, against a
// running demo.
func TestDemoPrintsARunnableCLICommand(t *testing.T) {
	for arg0, want := range map[string]string{
		"/tmp/go-build2419/b001/exe/wsgate":        "go run ./cmd/wsgate", // go run's first build
		"/root/.cache/go-build/25/2549ab-d/wsgate": "go run ./cmd/wsgate", // go run's cached build
		"wsgate":   "wsgate",
		"./wsgate": "./wsgate",
	} {
		if got := selfCommand(arg0); got != want {
			t.Errorf("selfCommand(%q) = %q, want %q", arg0, got, want)
		}
	}

	app := startDemo(t, demoOptions{})
	cliEnv(t) // another key than the demo's: the printed one must make the difference
	line := demoCLICommand(selfCommand("/tmp/go-build2419/b001/exe/wsgate"), app.srv.ManagementEndpoint())
	fields := strings.Fields(line)
	var env [][2]string
	for len(fields) > 0 && strings.Contains(fields[0], "=") {
		k, v, _ := strings.Cut(fields[0], "=")
		env = append(env, [2]string{k, v})
		fields = fields[1:]
	}
	if len(fields) < 3 || strings.Join(fields[:3], " ") != "go run ./cmd/wsgate" {
		t.Fatalf("printed %q: want the environment, then go run ./cmd/wsgate", line)
	}
	args := fields[3:]
	if _, _, code := wsgate(t, "", args...); code == 0 {
		t.Fatalf("%v succeeded without the printed key", args)
	}
	for _, kv := range env {
		t.Setenv(kv[0], kv[1])
	}
	out := decodeOutput[struct {
		Connections []json.RawMessage `json:"connections"`
	}](t, mustWsgate(t, "", args...))
	if out.Connections == nil {
		t.Fatalf("printed %q: no connections list in the answer", line)
	}
}
