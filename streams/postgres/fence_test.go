package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// TestClusterStreamPostgresSlotFence: two runners on one slot, as two
// cluster nodes are while a stale leader has not stopped (the test makes
// both run). The second's START_REPLICATION is refused while the first
// streams: it waits, delivering nothing, with the server's refusal in
// Stats.LastError and its Run still going. Once the first stopped, the
// second streams from the slot's confirmed position, and every row reaches
// one of them.
func TestClusterStreamPostgresSlotFence(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	dsn, db := newDatabase(t, c)
	dumpOnFailure(t, c)
	run(t, db, `CREATE TABLE items (id int PRIMARY KEY)`)
	cfg := streams.SourceConfig{StatusIntervalSeconds: ClusterStatusIntervalSeconds}
	insert := func(from, to int) {
		for i := from; i <= to; i++ {
			run(t, db, `INSERT INTO items VALUES ($1)`, i)
		}
	}

	h1 := &streamtest.Collector{}
	first := runSource(t, dsn, "fence", h1, cfg, "items")
	waitStreaming(t, db, first)
	insert(1, 5)

	h2 := &streamtest.Collector{}
	second := runSource(t, dsn, "fence", h2, cfg, "items")
	testenv.Eventually(t, waitFor, func() error {
		if e := second.src.Stats().LastError; !strings.Contains(e, "is active for PID") {
			return fmt.Errorf("second runner's LastError = %q, want the slot-in-use refusal", e)
		}
		return nil
	})
	insert(6, 10)
	h1.WaitRecords(t, waitFor, 10)
	select {
	case <-second.done:
		t.Fatalf("second runner's Run ended while the slot was held: %v", second.err)
	default:
	}
	if n := len(h2.Records()); n != 0 {
		t.Fatalf("second runner delivered %d records while the first held the slot", n)
	}

	first.halt(t)
	waitStreaming(t, db, second)
	insert(11, 15)
	testenv.Eventually(t, waitFor, func() error {
		seen := map[string]bool{}
		for _, r := range append(h1.Records(), h2.Records()...) {
			seen[r.Change.Keys["id"].Number()] = true
		}
		for i := 1; i <= 15; i++ {
			if !seen[fmt.Sprint(i)] {
				return fmt.Errorf("row %d not delivered", i)
			}
		}
		return nil
	})
	var ids []string
	for _, r := range h2.Records() {
		ids = append(ids, r.Change.Keys["id"].Number())
	}
	if got := strings.Join(ids, ","); !strings.HasSuffix(got, "11,12,13,14,15") {
		t.Errorf("second runner delivered %s, want it to end with 11..15 in order", got)
	}
}

// TestSourceID: the id names server, database and slot; two sources on
// the same ones agree, another slot or database differs.
func TestSourceID(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	dsn, _ := newDatabase(t, c)
	otherDSN, _ := newDatabase(t, c)
	id := func(dsn, slot string) string {
		t.Helper()
		src, err := New(streams.SourceConfig{DSN: dsn, Tables: []string{"items"}, Slot: slot}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.SourceID(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	a := id(dsn, "a")
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a) {
		t.Fatalf("SourceID = %q, want 16 hex digits", a)
	}
	// The same database reached by another host name is the same source.
	if again := id(strings.Replace(dsn, "host=127.0.0.1", "host=localhost", 1), "a"); again != a {
		t.Errorf("same database and slot: %s and %s", a, again)
	}
	if b := id(dsn, "b"); b == a {
		t.Error("another slot has the same id")
	}
	if o := id(otherDSN, "a"); o == a {
		t.Error("another database has the same id")
	}
}
