package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wsgate/wsgate/streams"
)

// benchSource is a source on a fresh file with one table, and a writer
// connection of its own (another connection, as another program's).
func benchSource(b *testing.B) (*Source, *sql.DB) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	w, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	if _, err := w.Exec(`CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price REAL)`); err != nil {
		b.Fatal(err)
	}
	src, err := New(streams.SourceConfig{Type: "sqlite", Path: path, Tables: []string{"items"}}, logger())
	if err != nil {
		b.Fatal(err)
	}
	if err := src.Install(context.Background()); err != nil {
		b.Fatal(err)
	}
	return src, w
}

// BenchmarkCommitToHandle measures the time from a writer's commit
// returning to the handler receiving the record, with the default 20 ms
// poll interval. ns/op includes a random pause before each write; the
// ms-* metrics are the latency alone.
func BenchmarkCommitToHandle(b *testing.B) {
	src, w := benchSource(b)
	got := make(chan time.Time, 1)
	run(b, src, streams.HandlerFunc(func(ctx context.Context, _ string, recs []streams.Record) error {
		for range recs {
			got <- time.Now()
		}
		return nil
	}))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Commit at a random point of the poll cycle, as real writes do.
		time.Sleep(time.Duration(rand.Int64N(int64(DefaultPoll))))
		if _, err := w.Exec(`INSERT INTO items VALUES (?, 'x', 1.5)`, i); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		lat = append(lat, (<-got).Sub(committed))
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(lat))/1000, "ms-mean")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "ms-max")
}

// BenchmarkThroughput measures how fast a source drains a backlog of
// changes into a handler that accepts everything, in batches of 100.
func BenchmarkThroughput(b *testing.B) {
	const rows = 20000
	for b.Loop() {
		b.StopTimer()
		src, w := benchSource(b)
		tx, err := w.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for i := range rows {
			if _, err := tx.Exec(`INSERT INTO items VALUES (?, ?, ?)`, i, fmt.Sprint("item ", i), float64(i)/4); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		n := 0
		b.StartTimer()
		start := time.Now()
		stop := run(b, src, streams.HandlerFunc(func(ctx context.Context, _ string, recs []streams.Record) error {
			if n += len(recs); n == rows {
				close(done)
			}
			return nil
		}))
		<-done
		elapsed := time.Since(start)
		b.StopTimer()
		stop()
		b.ReportMetric(rows/elapsed.Seconds(), "records/s")
		b.StartTimer()
	}
}

// BenchmarkWrite measures what the triggers add to a writer: one INSERT
// and one UPDATE of a row with TEXT, REAL and INTEGER columns per op, in
// transactions of 100 ops, against the same table without triggers. SQLite
// compiles a table's triggers into every statement that writes it, so a
// writer that prepares its statements once pays less than one that
// prepares each (prepared=false, as database/sql's Exec does).
func BenchmarkWrite(b *testing.B) {
	for _, captured := range []bool{false, true} {
		for _, prepared := range []bool{false, true} {
			b.Run(fmt.Sprintf("captured=%t/prepared=%t", captured, prepared), func(b *testing.B) {
				benchWrite(b, captured, prepared)
			})
		}
	}
}

func benchWrite(b *testing.B, captured, prepared bool) {
	src, w := benchSource(b)
	if !captured {
		if err := src.Uninstall(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	const insert, update = `INSERT INTO items VALUES (?, ?, ?)`, `UPDATE items SET price = price + 1 WHERE id = ?`
	var ins, upd *sql.Stmt
	if prepared {
		var err error
		if ins, err = w.Prepare(insert); err != nil {
			b.Fatal(err)
		}
		if upd, err = w.Prepare(update); err != nil {
			b.Fatal(err)
		}
	}
	exec := func(tx *sql.Tx, stmt *sql.Stmt, query string, args ...any) {
		var err error
		if stmt != nil {
			_, err = tx.Stmt(stmt).Exec(args...)
		} else {
			_, err = tx.Exec(query, args...)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	var tx *sql.Tx
	for i := 0; b.Loop(); i++ {
		if i%100 == 0 {
			if tx != nil {
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			var err error
			if tx, err = w.Begin(); err != nil {
				b.Fatal(err)
			}
		}
		exec(tx, ins, insert, i, fmt.Sprint("item name ", i), float64(i)/4)
		exec(tx, upd, update, i)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
