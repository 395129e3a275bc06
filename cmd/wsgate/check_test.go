package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// runWsgate runs the binary and returns its exit code and stderr.
func runWsgate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wsgateBinary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("wsgate %v did not exit: it started serving\n%s", args, errOut.String())
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// sqliteFile creates a database with an orders table.
func sqliteFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT)`); err != nil {
		t.Fatal(err)
	}
	return path
}

func sqliteSchema(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	rows, err := db.Query(`SELECT type || ' ' || name FROM sqlite_master ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// TestCheckRefusesWhatServeRefuses: each config is refused by `serve
// --check` and by `serve` with the same message, because --check runs
// serve's build (server.Check) up to binding the listener. --check used to
// stop after parsing, and passed configs serve refuses.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	db := sqliteFile(t)
	schema := sqliteSchema(t, db)
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct{ name, config, want string }{
		{"command dir missing",
			fmt.Sprintf("routes:\n  $default: { integration: { type: command, command: [./h], dir: %q } }\n", missing),
			`route "$default": command dir ` + missing + ` is not a directory`},
		{"authorizer command dir missing",
			fmt.Sprintf("authorizer: { integration: { type: command, command: [./h], dir: %q } }\n", missing),
			"authorizer: command dir " + missing},
		{"stream target command dir missing",
			fmt.Sprintf("streams:\n  - source: { type: sqlite, path: %q, tables: [orders] }\n    target: { integration: { type: command, command: [./h], dir: %q } }\n", db, missing),
			"target integration: command dir " + missing},
		{"sqlite file missing",
			fmt.Sprintf("streams:\n  - source: { type: sqlite, path: %q, tables: [orders] }\n    target: { group: orders }\n", missing+".db"),
			"streams[0] (sqlite:" + missing + ".db): installing change capture: opening"},
		{"sqlite table missing",
			fmt.Sprintf("streams:\n  - source: { type: sqlite, path: %q, tables: [nope] }\n    target: { group: orders }\n", db),
			"nope"},
		{"sqlite capture missing and create false",
			fmt.Sprintf("streams:\n  - source: { type: sqlite, path: %q, tables: [orders], create: false }\n    target: { group: orders }\n", db),
			"does not exist and create is false"},
		{"postgres slot name",
			"streams:\n  - source: { type: postgres, dsn: \"postgres://127.0.0.1:1/app\", tables: [public.orders], slot: Bad-Slot }\n    target: { group: orders }\n",
			`slot "Bad-Slot"`},
		{"dynamodb stream ARN",
			"streams:\n  - source: { type: dynamodb, streamArn: \"arn:nope\" }\n    target: { group: orders }\n",
			"is not a DynamoDB stream ARN"},
		{"idle timeout past a Duration",
			"idleTimeoutSeconds: 9300000000\n",
			"idleTimeoutSeconds: must be between 1 and 604800, got 9300000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Credentials: no warning about their absence in either output.
			cfg := writeConfig(t, "listen: \"127.0.0.1:0\"\ncredentials: [{ accessKeyId: AKID, secretAccessKey: s }]\n"+tc.config)
			checkCode, checkOut, checkErr := runWsgate(t, "serve", "--config", cfg, "--check")
			serveCode, _, serveErr := runWsgate(t, "serve", "--config", cfg)
			if checkCode != 1 || !strings.Contains(checkErr, tc.want) {
				t.Fatalf("--check: exit %d, stdout %q, stderr %q; want exit 1 and %q", checkCode, checkOut, checkErr, tc.want)
			}
			if serveCode != 1 || serveErr != checkErr {
				t.Fatalf("serve: exit %d with\n%s\nwant exit 1 with --check's\n%s", serveCode, serveErr, checkErr)
			}
		})
	}
	if got := sqliteSchema(t, db); got != schema {
		t.Fatalf("the refused configs changed the database: %s", got)
	}
}

// TestCheckChangesNothing: --check of a good config with a SQLite stream
// opens the database and tries the trigger installation, but leaves the
// file as it was; serve then installs the capture.
func TestCheckChangesNothing(t *testing.T) {
	db := sqliteFile(t)
	cfg := writeConfig(t, fmt.Sprintf("listen: \"127.0.0.1:0\"\nstreams:\n  - source: { type: sqlite, path: %q, tables: [orders] }\n    target: { group: orders }\n", db))
	before := sqliteSchema(t, db)
	if code, out, errOut := runWsgate(t, "serve", "--config", cfg, "--check"); code != 0 || !strings.Contains(out, "configuration is valid (0 routes, 1 streams, 0 functions)") {
		t.Fatalf("--check: exit %d\n%s%s", code, out, errOut)
	}
	if after := sqliteSchema(t, db); after != before {
		t.Fatalf("--check changed the schema from %q to %q", before, after)
	}
}
