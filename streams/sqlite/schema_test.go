package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// keysOf lists the records as "EVENT table id".
func keysOf(recs []streams.Record) []string {
	var out []string
	for _, r := range recs {
		table, _, _ := strings.Cut(strings.TrimPrefix(r.EventSourceArn, "arn:aws:dynamodb:us-east-1:000000000000:table/"), "/")
		out = append(out, r.EventName+" "+table+" "+r.Change.Keys["id"].Number())
	}
	return out
}

// waitLastError waits until the source reports an error containing want.
func waitLastError(t *testing.T, src *Source, want string) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		if st := src.Stats(); !strings.Contains(st.LastError, want) {
			return fmt.Errorf("LastError %q, want it to contain %q", st.LastError, want)
		}
		return nil
	})
}

// waitNoError waits until the source reports no error.
func waitNoError(t *testing.T, src *Source) {
	t.Helper()
	testenv.Eventually(t, wait, func() error {
		if st := src.Stats(); st.LastError != "" {
			return fmt.Errorf("LastError %q", st.LastError)
		}
		return nil
	})
}

func TestTableRecreatedWhileRunning(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE other(id INTEGER PRIMARY KEY)`, "items", "other")
	c := &streamtest.Collector{}
	stop := run(t, src, c)
	cli(t, path, `INSERT INTO items VALUES (1, 'a')`)
	c.WaitRecords(t, wait, 1)

	cli(t, path, `DROP TABLE items`)
	// The source has polled while the table was missing: it says so and
	// goes on with the other table.
	waitLastError(t, src, "items does not exist")
	cli(t, path, `INSERT INTO other VALUES (1)`)
	c.WaitRecords(t, wait, 2)

	// Written right after the create, before the source can have put its
	// triggers back: still delivered.
	cli(t, path, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price REAL); INSERT INTO items VALUES (2, 'b', 1.5);`)
	// Once that row has arrived (from the trigger, or from the catch-up
	// that puts the triggers back in the same transaction) the triggers
	// are there: later writes arrive change by change. Without this wait
	// a catch-up after the next statements would fold the UPDATE into its
	// INSERT of the row's current state (nothing lost, one record fewer).
	c.WaitRecords(t, wait, 3)
	cli(t, path, `INSERT INTO items VALUES (3, 'c', 2); UPDATE items SET name = 'B' WHERE id = 2;`)
	recs := c.WaitRecords(t, wait, 5)
	want := []string{"INSERT items 1", "INSERT other 1", "INSERT items 2", "INSERT items 3", "MODIFY items 2"}
	if got := keysOf(recs); !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	if got := attrs(recs[2].Change.NewImage); got != `{"id":{"N":"2"},"name":{"S":"b"},"price":{"N":"1.5"}}` {
		t.Fatalf("NewImage %s", got)
	}
	waitNoError(t, src)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestTableRecreatedWhileStopped(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	c := &streamtest.Collector{}
	stop := run(t, src, c)
	cli(t, path, `INSERT INTO items VALUES (1)`)
	c.WaitRecords(t, wait, 1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// While wsgate is down the table is dropped, created again and
	// written: the triggers died with the old table.
	cli(t, path, `DROP TABLE items; CREATE TABLE items(id INTEGER PRIMARY KEY); INSERT INTO items VALUES (2);`)
	src2, err := New(streams.SourceConfig{Path: path, Tables: []string{"items"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, src2, c)
	cli(t, path, `INSERT INTO items VALUES (3)`)
	if got, want := keysOf(c.WaitRecords(t, wait, 3)), []string{"INSERT items 1", "INSERT items 2", "INSERT items 3"}; !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Down again while the table is gone: the source starts all the
	// same, as the table was captured, and picks it up when it is back.
	cli(t, path, `DROP TABLE items`)
	src3, err := New(streams.SourceConfig{Path: path, Tables: []string{"items"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := src3.Install(context.Background()); err != nil {
		t.Fatalf("Install with a captured table missing: %v", err)
	}
	stop = run(t, src3, c)
	waitLastError(t, src3, "items does not exist")
	cli(t, path, `CREATE TABLE items(id INTEGER PRIMARY KEY); INSERT INTO items VALUES (4);`)
	if got := keysOf(c.WaitRecords(t, wait, 4))[3]; got != "INSERT items 4" {
		t.Fatalf("record %q", got)
	}
	waitNoError(t, src3)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// gate is a handler that holds the first batch until open is closed, so
// a test can change the database while the source is known to wait.
type gate struct {
	next    streams.Handler
	entered chan struct{}
	open    chan struct{}
	first   bool
}

func newGate(next streams.Handler) *gate {
	return &gate{next: next, entered: make(chan struct{}), open: make(chan struct{})}
}

func (g *gate) Handle(ctx context.Context, shard string, recs []streams.Record) error {
	if !g.first {
		g.first = true
		close(g.entered)
		select {
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.next.Handle(ctx, shard, recs)
}

// holdLock runs stmt in a transaction of another connection, which holds
// the file's write lock until the test commits it (or ends).
func holdLock(t *testing.T, path, stmt string) *sql.Tx {
	t.Helper()
	holder, err := sql.Open("sqlite", fileURI(path)+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close() })
	tx, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.Exec(stmt); err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestSchemaChangeWhileLocked(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE other(id INTEGER PRIMARY KEY)`, "items")
	src.busyTimeout = 50 * time.Millisecond
	src.trimDelay = time.Hour // only the triggers' rebuild meets the lock
	c := &streamtest.Collector{}
	g := newGate(c)
	stop := run(t, src, g)
	cli(t, path, `INSERT INTO items VALUES (1, 'a')`)
	<-g.entered

	// While the source waits on the handler: a column is added, and
	// another program holds the write lock.
	cli(t, path, `ALTER TABLE items ADD COLUMN price REAL`)
	tx := holdLock(t, path, `INSERT INTO other VALUES (1)`)
	close(g.open)
	// The triggers cannot be rebuilt while the lock is held: retried.
	waitLastError(t, src, "installing triggers on items: database is locked")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, func() error {
		if !strings.Contains(cliQuery(t, path, `SELECT sql FROM sqlite_master WHERE name = '_wsgate_items_insert'`), "price") {
			return errors.New("triggers not rebuilt for the new column")
		}
		return nil
	})
	cli(t, path, `INSERT INTO items VALUES (2, 'b', 2.5)`)
	recs := c.WaitRecords(t, wait, 2)
	if got := attrs(recs[1].Change.NewImage); got != `{"id":{"N":"2"},"name":{"S":"b"},"price":{"N":"2.5"}}` {
		t.Fatalf("NewImage %s", got)
	}
	waitNoError(t, src)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestStartWhileLocked(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY); CREATE TABLE other(id INTEGER PRIMARY KEY)`, "items")
	src.busyTimeout = 50 * time.Millisecond
	// A column added while wsgate is down, and a lock held as it starts.
	cli(t, path, `ALTER TABLE items ADD COLUMN name TEXT`)
	tx := holdLock(t, path, `INSERT INTO other VALUES (1)`)
	c := &streamtest.Collector{}
	stop := run(t, src, c)
	waitLastError(t, src, "installing triggers on items: database is locked")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	waitNoError(t, src) // the triggers are in place
	cli(t, path, `INSERT INTO items VALUES (2, 'b')`)
	if got := attrs(c.WaitRecords(t, wait, 1)[0].Change.NewImage); got != `{"id":{"N":"2"},"name":{"S":"b"}}` {
		t.Fatalf("NewImage %s", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestPermanentErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := New(streams.SourceConfig{Path: notDB, Tables: []string{"items"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), &streamtest.Collector{}); !streams.IsPermanent(err) {
		t.Fatalf("Run on a file that is not a database = %v, want a permanent error", err)
	}

	// A table never captured is a wrong name, and triggers missing with
	// create false are for a person to install (a table captured before
	// is waited for: TestTableRecreatedWhileStopped).
	path := filepath.Join(dir, "app.db")
	cli(t, path, `CREATE TABLE items(id INTEGER PRIMARY KEY)`)
	no := false
	for _, cfg := range []streams.SourceConfig{
		{Path: path, Tables: []string{"nope"}},
		{Path: path, Tables: []string{"items"}, Create: &no},
	} {
		src, err = New(cfg, logger())
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Run(context.Background(), &streamtest.Collector{}); !streams.IsPermanent(err) {
			t.Fatalf("Run with %+v = %v, want a permanent error", cfg, err)
		}
	}

	// A file not there yet may be created: worth a restart.
	src, err = New(streams.SourceConfig{Path: path + ".missing", Tables: []string{"items"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), &streamtest.Collector{}); err == nil || streams.IsPermanent(err) {
		t.Fatalf("Run on a missing file = %v, want a transient error", err)
	}
}
