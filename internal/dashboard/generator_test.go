package dashboard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/dashboard"
	"github.com/wsgate/wsgate/internal/testenv"
)

// logChanges makes the database log every change to orders in a table
// "changes": the kind, the row, the status before and after, and the table
// size right after. Counting rows changed this way measures what the
// generator really did.
func logChanges(t testing.TB, db *sql.DB) {
	t.Helper()
	_, err := db.Exec(`
		CREATE TABLE changes (seq INTEGER PRIMARY KEY, kind TEXT, id TEXT, old_status TEXT, new_status TEXT,
			old_quantity INTEGER, new_quantity INTEGER, size INTEGER);
		CREATE TRIGGER log_insert AFTER INSERT ON orders BEGIN
			INSERT INTO changes (kind, id, new_status, new_quantity, size)
			VALUES ('INSERT', NEW.id, NEW.status, NEW.quantity, (SELECT count(*) FROM orders));
		END;
		CREATE TRIGGER log_update AFTER UPDATE ON orders BEGIN
			INSERT INTO changes (kind, id, old_status, new_status, old_quantity, new_quantity, size)
			VALUES ('MODIFY', NEW.id, OLD.status, NEW.status, OLD.quantity, NEW.quantity, (SELECT count(*) FROM orders));
		END;
		CREATE TRIGGER log_delete AFTER DELETE ON orders BEGIN
			INSERT INTO changes (kind, id, old_status, size)
			VALUES ('REMOVE', OLD.id, OLD.status, (SELECT count(*) FROM orders));
		END;`)
	if err != nil {
		t.Fatal(err)
	}
}

// runGenerator runs g until at least n changes are logged, and returns how
// long it ran. On a loaded machine a change can take hundreds of
// milliseconds (sqlite under -race), so it waits as long as changes keep
// coming and fails only when none comes for 30 s.
func runGenerator(t *testing.T, db *sql.DB, g *dashboard.Generator, n int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- g.Run(ctx) }()
	testenv.Progressing(t, 30*time.Second, func() (int, error) {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		got := count(t, db, `SELECT count(*) FROM changes`)
		if got < n {
			return got, fmt.Errorf("%d changes, want %d", got, n)
		}
		return got, nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	return time.Since(start)
}

func TestGeneratorRespectsRate(t *testing.T) {
	t.Parallel()
	db, _ := openDemoDB(t)
	logChanges(t, db)
	const rate = 40.0
	ran := runGenerator(t, db, &dashboard.Generator{DB: db, Table: "orders", Rate: rate}, 30)

	// Run was stopped only after it had run `ran`; it cannot have made more
	// changes than the rate allows in that time (plus the tick in flight),
	// however slow or fast this machine is.
	changes := count(t, db, `SELECT count(*) FROM changes`)
	if limit := int(rate*ran.Seconds()) + 1; changes > limit {
		t.Errorf("%d changes in %v at %v/s, want at most %d", changes, ran, rate, limit)
	}
}

func TestGeneratorKeepsTableBoundedAndOrdersFlowing(t *testing.T) {
	t.Parallel()
	db, _ := openDemoDB(t)
	logChanges(t, db)
	runGenerator(t, db, &dashboard.Generator{DB: db, Rate: 5000}, 800)

	if n := count(t, db, `SELECT max(size) FROM changes`); n > dashboard.MaxRows {
		t.Errorf("table grew to %d rows, want at most %d", n, dashboard.MaxRows)
	}
	// Seeded with 8 rows, the table first fills up to MinRows; from then on
	// a delete (which needs MinRows rows) can take it one below, never more.
	filled := count(t, db, `SELECT min(seq) FROM changes WHERE size >= ?`, dashboard.MinRows)
	if n := count(t, db, `SELECT min(size) FROM changes WHERE seq > ?`, filled); n < dashboard.MinRows-1 {
		t.Errorf("table shrank to %d rows after reaching %d", n, dashboard.MinRows)
	}
	for _, tc := range []struct {
		name, where string
		want        bool
	}{
		{"inserts of pending orders", `kind = 'INSERT' AND new_status = 'pending'`, true},
		{"inserts in another status", `kind = 'INSERT' AND new_status <> 'pending'`, false},
		{"pending to paid", `kind = 'MODIFY' AND old_status = 'pending' AND new_status = 'paid'`, true},
		{"paid to shipped", `kind = 'MODIFY' AND old_status = 'paid' AND new_status = 'shipped'`, true},
		{"shipped to delivered", `kind = 'MODIFY' AND old_status = 'shipped' AND new_status = 'delivered'`, true},
		{"quantity changes", `kind = 'MODIFY' AND old_status = new_status AND old_quantity <> new_quantity`, true},
		{"status skipping a step or going back", `kind = 'MODIFY' AND old_status <> new_status AND NOT (
			old_status = 'pending' AND new_status = 'paid' OR old_status = 'paid' AND new_status = 'shipped' OR
			old_status = 'shipped' AND new_status = 'delivered')`, false},
		{"modifies that change neither status nor quantity", `kind = 'MODIFY' AND old_status = new_status AND old_quantity = new_quantity`, false},
		{"quantity changes after payment", `kind = 'MODIFY' AND old_status <> 'pending' AND old_quantity <> new_quantity`, false},
		{"deletes of delivered orders", `kind = 'REMOVE' AND old_status = 'delivered'`, true},
		{"deletes of undelivered orders", `kind = 'REMOVE' AND old_status <> 'delivered'`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := count(t, db, `SELECT count(*) FROM changes WHERE `+tc.where)
			if (n > 0) != tc.want {
				t.Errorf("%d changes, want any: %v", n, tc.want)
			}
		})
	}
	// Amounts are recomputed from quantities, never zeroed.
	if n := count(t, db, `SELECT count(*) FROM orders WHERE amount <= 0 OR quantity <= 0`); n != 0 {
		t.Errorf("%d orders with a non-positive amount or quantity", n)
	}
}

func TestGeneratorZeroRateWritesNothing(t *testing.T) {
	db, _ := openDemoDB(t)
	logChanges(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := (&dashboard.Generator{DB: db, Rate: 0}).Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM changes`); n != 0 {
		t.Errorf("%d changes at rate 0", n)
	}
}

func TestGeneratorRefusesUnusableTable(t *testing.T) {
	db, _ := openDemoDB(t)
	for _, tc := range []struct {
		name string
		g    dashboard.Generator
	}{
		{"missing table", dashboard.Generator{DB: db, Table: "missing", Rate: 1}},
		{"bad name", dashboard.Generator{DB: db, Table: "orders--", Rate: 1}},
		{"negative rate", dashboard.Generator{DB: db, Rate: -1}},
		{"no database", dashboard.Generator{Rate: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := tc.g.Run(ctx)
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run = %v, want an immediate error", err)
			}
		})
	}
}
