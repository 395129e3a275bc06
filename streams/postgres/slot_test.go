package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wsgate/wsgate/internal/streamtest"
)

// TestSlotCreatedWhileATransactionIsOpen: creating a logical slot waits
// for every transaction older than it; the source streams once the slot is
// consistent, and writes after that arrive.
func TestSlotCreatedWhileATransactionIsOpen(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	dsn, db := newDatabase(t, c)
	dumpOnFailure(t, c)
	run(t, db, `CREATE TABLE items (id int PRIMARY KEY)`)
	ctx := context.Background()
	other, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, "BEGIN; SELECT txid_current()"); err != nil {
		t.Fatal(err)
	}
	slot := slotFor(t, "open_tx")
	// The open transaction ends once the slot exists (creation is then
	// waiting for it).
	released := make(chan error, 1)
	go func() {
		watch, err := pgx.Connect(ctx, c.dsn("postgres"))
		if err != nil {
			released <- err
			return
		}
		defer watch.Close(ctx)
		deadline := time.Now().Add(waitFor)
		for time.Now().Before(deadline) {
			var n int
			if err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&n); err != nil {
				released <- err
				return
			}
			if n > 0 {
				_, err := other.Exec(ctx, "COMMIT")
				released <- err
				return
			}
			time.Sleep(5 * time.Millisecond) // polling another session, not timing the code under test
		}
		_, err = other.Exec(ctx, "COMMIT")
		released <- err
	}()
	h := &streamtest.Collector{}
	start(t, db, dsn, "open_tx", h, "items")
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	run(t, db, `INSERT INTO items VALUES (1)`)
	if recs := h.WaitRecords(t, waitFor, 1); recs[0].Change.Keys["id"].Number() != "1" {
		t.Errorf("got %s, want the insert of id 1", plain(t, recs[0].Change.Keys))
	}
}
