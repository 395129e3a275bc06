package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// TestSourceID: every source on one file has one id, kept across
// Install; another file (the same path on another host) has another.
func TestSourceID(t *testing.T) {
	ctx := context.Background()
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	id, err := src.SourceID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 16 {
		t.Fatalf("id %q, want 16 hex digits", id)
	}
	again, err := New(streams.SourceConfig{Path: path, Tables: []string{"items"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Install(ctx); err != nil {
		t.Fatal(err)
	}
	if id2, err := again.SourceID(ctx); err != nil || id2 != id {
		t.Fatalf("second source on the same file: %q %v, want %q", id2, err, id)
	}
	uuid := cliQuery(t, path, `SELECT id FROM _wsgate_meta`)
	if want := streams.HashSourceID("sqlite:" + uuid + `:["items"]`); id != want {
		t.Fatalf("id %q, want sha256(sqlite:%s:[\"items\"]) = %q", id, uuid, want)
	}
	if n := cliQuery(t, path, `SELECT count(*) FROM _wsgate_meta`); n != "1" {
		t.Fatalf("%s rows in _wsgate_meta, want 1", n)
	}

	// Another stream on other tables of the file: the same file id, its
	// own source id and epoch.
	cli(t, path, `CREATE TABLE rooms(id INTEGER PRIMARY KEY)`)
	rooms, _ := New(streams.SourceConfig{Path: path, Tables: []string{"rooms"}}, logger())
	if err := rooms.Install(ctx); err != nil {
		t.Fatal(err)
	}
	if rid, err := rooms.SourceID(ctx); err != nil || rid == id || rid != streams.HashSourceID("sqlite:"+uuid+`:["rooms"]`) {
		t.Fatalf("rooms' id %q %v (items' %q)", rid, err, id)
	}
	other, _ := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	if id3, err := other.SourceID(ctx); err != nil || id3 == id {
		t.Fatalf("another file: %q %v, want an id other than %q", id3, err, id)
	}

	// create false on a file nobody installed: a clear error.
	bare := filepath.Join(t.TempDir(), "bare.db")
	cli(t, bare, `CREATE TABLE items(id INTEGER PRIMARY KEY)`)
	f := false
	noCreate, _ := New(streams.SourceConfig{Path: bare, Tables: []string{"items"}, Create: &f}, logger())
	if _, err := noCreate.SourceID(ctx); err == nil {
		t.Fatal("SourceID without _wsgate_meta: no error")
	}
}

// TestEpochFence: a run started on a file after another one raises the
// epoch; the older run's next trim deletes nothing and ends it with
// ErrFenced. Nothing is lost: the newer run delivers the rows the older
// one delivered but could not trim.
func TestEpochFence(t *testing.T) {
	old, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	oldRecs := &streamtest.Collector{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	oldDone := make(chan error, 1)
	go func() { oldDone <- old.Run(ctx, oldRecs) }()
	cli(t, path, `INSERT INTO items VALUES (1)`)
	oldRecs.WaitRecords(t, wait, 1)
	testenv.Eventually(t, wait, func() error {
		if n := cliQuery(t, path, `SELECT count(*) FROM _wsgate_changes`); n != "0" {
			return fmt.Errorf("%s rows not trimmed yet", n)
		}
		return nil
	})

	newer, err := New(streams.SourceConfig{Path: path, Tables: []string{"items"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	newer.trimDelay = time.Hour // the older run must meet the row untrimmed
	newRecs := &streamtest.Collector{}
	run(t, newer, newRecs)
	testenv.Eventually(t, wait, func() error {
		if e := cliQuery(t, path, `SELECT epoch FROM _wsgate_meta`); e != "2" {
			return fmt.Errorf("epoch %s, want 2", e)
		}
		return nil
	})
	cli(t, path, `INSERT INTO items VALUES (2)`)
	select {
	case err := <-oldDone:
		if !errors.Is(err, ErrFenced) || !errors.Is(err, streams.ErrFenced) {
			t.Fatalf("older run ended with %v, want ErrFenced (and streams.ErrFenced, the one error every source fences with)", err)
		}
	case <-time.After(wait):
		t.Fatal("the older run did not stop")
	}
	if n := cliQuery(t, path, `SELECT count(*) FROM _wsgate_changes`); n != "1" {
		t.Fatalf("%s rows in the log after the refused trim, want 1 (row 2, untrimmed)", n)
	}
	if recs := newRecs.WaitRecords(t, wait, 1); recs[0].Change.Keys["id"].Number() != "2" {
		t.Fatalf("newer run got %+v", recs)
	}
}

// TestEpochPerSource: two streams on different tables of one file run
// side by side; starting one does not fence the other.
func TestEpochPerSource(t *testing.T) {
	items, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY); CREATE TABLE rooms(id INTEGER PRIMARY KEY)`, "items")
	rooms, err := New(streams.SourceConfig{Path: path, Tables: []string{"rooms"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := rooms.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	rooms.trimDelay = 10 * time.Millisecond
	gotItems, gotRooms := &streamtest.Collector{}, &streamtest.Collector{}
	stopItems := run(t, items, gotItems)
	stopRooms := run(t, rooms, gotRooms)
	for i := 1; i <= 3; i++ {
		cli(t, path, fmt.Sprintf(`INSERT INTO items VALUES (%d); INSERT INTO rooms VALUES (%d)`, i, i))
		gotItems.WaitRecords(t, wait, i)
		gotRooms.WaitRecords(t, wait, i)
	}
	testenv.Eventually(t, wait, func() error {
		if n := cliQuery(t, path, `SELECT count(*) FROM _wsgate_changes`); n != "0" {
			return fmt.Errorf("%s rows not trimmed yet", n)
		}
		return nil
	})
	if err := stopItems(); err != nil {
		t.Fatalf("items: %v", err)
	}
	if err := stopRooms(); err != nil {
		t.Fatalf("rooms: %v", err)
	}
}
