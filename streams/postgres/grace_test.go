package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// A call to the target under way when the run stops gets the grace: the
// batch the backend accepts after the stop began is confirmed to the
// server before the session ends, and the next run delivers only what
// came after. A call that outlasts the grace is cut, and its batch
// delivered again. Once the run that finished the call has returned, the
// server has processed its final status update: the slot's
// confirmed_flush_lsn is past record one's transaction.
func TestStopDuringCall(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprintf("finish=%v", finish), func(t *testing.T) {
			dsn, db := newDatabase(t, c)
			dumpOnFailure(t, c)
			run(t, db, `CREATE TABLE items (id int PRIMARY KEY)`)
			b := streamtest.NewBackend(t, streamtest.ByKey("id"))
			target := b.Target(t, streams.TargetConfig{})
			cfg := streams.SourceConfig{Type: "postgres", DSN: dsn, Tables: []string{"items"}, Region: "eu-west-1"}
			cfg.Slot = slotFor(t, "grace")
			cfg.Publication = cfg.Slot + "_pub"
			t.Cleanup(func() {
				// Slots are the server's, and few: -count would run out.
				testenv.Eventually(t, waitFor, func() error {
					_, err := db.Exec(context.Background(), `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, cfg.Slot)
					return err
				})
			})
			var oneLSN pglogrepl.LSN // inside record one's transaction, before its commit
			runs := 0
			streamtest.StopDuringCall(t, b, waitFor, finish, func() (func(), <-chan struct{}) {
				if runs++; runs == 2 && finish {
					// The first run has returned; the next has not
					// started. Read at once: no wait, no retry.
					var text string
					if err := db.QueryRow(context.Background(), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, cfg.Slot).Scan(&text); err != nil {
						t.Fatal(err)
					}
					confirmed, err := pglogrepl.ParseLSN(text)
					if err != nil {
						t.Fatal(err)
					}
					if confirmed <= oneLSN {
						t.Errorf("after the run returned, the slot's confirmed_flush_lsn is %v, not past record one's transaction (%v): its final status update was not processed yet", confirmed, oneLSN)
					}
				}
				src, err := New(cfg, testLogger())
				if err != nil {
					t.Fatal(err)
				}
				if !finish {
					src.grace = 200 * time.Millisecond
				}
				ctx, cancel := context.WithCancel(context.Background())
				r := &running{src: src, slot: cfg.Slot, stop: cancel, done: make(chan struct{})}
				go func() {
					defer close(r.done)
					if r.err = src.Run(ctx, target); r.err != nil {
						t.Errorf("Run: %v", r.err)
					}
				}()
				waitStreaming(t, db, r)
				return cancel, r.done
			}, func(n int) string {
				tx, err := db.Begin(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = tx.Rollback(context.Background()) }()
				var text string
				if _, err := tx.Exec(context.Background(), `INSERT INTO items VALUES ($1)`, n); err != nil {
					t.Fatal(err)
				}
				if err := tx.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&text); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(context.Background()); err != nil {
					t.Fatal(err)
				}
				if n == 1 {
					if oneLSN, err = pglogrepl.ParseLSN(text); err != nil {
						t.Fatal(err)
					}
				}
				return fmt.Sprint(n)
			})
		})
	}
}
