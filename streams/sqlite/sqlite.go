// Package sqlite is wsgate's embedded change source: it captures the
// changes to tables of a SQLite database file and delivers them as
// DynamoDB stream records.
//
// # Model
//
// Capture is done by the database, not by wsgate: for each configured table
// wsgate installs AFTER INSERT, UPDATE and DELETE triggers that append a row
// to the change log _wsgate_changes in the same file and the same
// transaction as the write. Every writer is therefore seen (the sqlite3
// CLI, other programs, other languages), a change is logged exactly when
// its transaction commits, and a rolled back write leaves nothing.
// Installing is idempotent; when a table's columns change (ALTER TABLE)
// the triggers are rebuilt, at start and while running (the schema version
// is checked whenever the data changes). Writes committed between an ALTER
// TABLE and the rebuild are captured with the old column list; writes to a
// table dropped and created again are not captured until the rebuild, at
// most one poll later. Install prepares a file before any writer runs;
// Uninstall removes the triggers of tables no longer captured.
//
// Each row's image is every column as [typeof, value]; records carry
// TEXT as S, INTEGER and REAL as N (REAL with SQLite's 15 significant
// digits), BLOB as B and NULL as NULL. Keys are the declared primary key
// columns, or "rowid" for a table without one. An UPDATE that changes the
// key is logged as REMOVE then INSERT; an UPDATE that changes nothing is not
// logged.
//
// The source tails the log on one connection: it checks PRAGMA
// data_version every PollMillis (default 20 ms), reads new rows in order
// and passes them to the handler, and deletes them once the handler
// returned nil: in bulk, within a second or 1000 rows, and when Run
// returns. The log is thus also the position: after a restart the source
// starts with whatever rows remain, so nothing committed is lost and
// records arrive at least once, in order (a crash, not a stop, redelivers
// what was accepted in the last second). A handler error makes the
// source offer the same records again after a backoff (100 ms doubling to
// 10 s).
//
// All captured tables of a file share one log and one shard,
// "sqlite:{path}", so records are ordered across tables and one Handle call
// may hold records of several tables (see eventSourceARN). A source reads
// and trims only the rows of its own tables; two sources must not capture
// the same table (streams.ValidateAll checks it).
//
// Record fields: eventID is the change's seq as 32 hex digits (unique
// within the file), SequenceNumber its 21-digit decimal, eventSource
// "aws:dynamodb", eventVersion "1.1", StreamViewType NEW_AND_OLD_IMAGES,
// eventSourceARN StreamARN(region, table), region SourceConfig.Region
// (default us-east-1).
//
// # Concurrency
//
// Run may be called once at a time; it calls the handler from its own
// goroutine and blocks while the handler runs. Stats is safe from any
// goroutine. The database is opened in WAL mode with a 5 s busy timeout,
// so writers are not blocked by the reader and wait briefly for the
// source's own small deletes.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/wsgate/wsgate/streams"
)

// Defaults of a SQLite source.
const (
	DefaultPoll   = 20 * time.Millisecond
	DefaultRegion = "us-east-1"
)

// Accepted rows are deleted in bulk, when trimRows of them are waiting or
// when the last delete is trimDelay ago (and when Run returns), rather than
// after every batch: each delete takes the database's write lock, which
// the application's writers would otherwise wait for after every batch.
const trimRows = 1000

// retry is the backoff after a handler error or a database error.
var retry = streams.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}

// Source tails the change log of one SQLite file.
type Source struct {
	path   string
	tables []string
	region string
	create bool
	poll   time.Duration
	shard  string
	log    *slog.Logger
	// trimDelay is how long accepted rows may stay in the log; 1 s.
	trimDelay time.Duration

	delivered atomic.Int64
	lag       atomic.Int64 // nanoseconds
	mu        sync.Mutex
	lastErr   string
}

var _ streams.Source = (*Source)(nil)

// New returns a source for cfg (Type "sqlite"). It opens nothing; Run does.
func New(cfg streams.SourceConfig, logger *slog.Logger) (*Source, error) {
	if cfg.Type == "" {
		cfg.Type = "sqlite"
	}
	if cfg.Type != "sqlite" {
		return nil, fmt.Errorf("sqlite source: type %q", cfg.Type)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sqlite source: %w", err)
	}
	s := &Source{
		path:   cfg.Path,
		tables: cfg.Tables,
		region: cfg.Region,
		create: cfg.Create == nil || *cfg.Create,
		poll:   time.Duration(cfg.PollMillis) * time.Millisecond,
		shard:  "sqlite:" + cfg.Path,
		log:    logger,

		trimDelay: time.Second,
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if s.poll <= 0 {
		s.poll = DefaultPoll
	}
	return s, nil
}

// Shard is the one shard of the source: "sqlite:" and the path.
func (s *Source) Shard() string { return s.shard }

// Stats implements streams.Source.
func (s *Source) Stats() streams.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return streams.Stats{
		Delivered: s.delivered.Load(),
		Lag:       time.Duration(s.lag.Load()),
		LastError: s.lastErr,
	}
}

func (s *Source) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastErr = ""
	} else {
		s.lastErr = err.Error()
	}
}

// Install opens the file and installs or updates the change log and the
// triggers of the configured tables, as Run does when it starts. It lets a
// deployment prepare a database before any writer runs.
func (s *Source) Install(ctx context.Context) error {
	db, conn, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	defer conn.Close()
	return s.prepare(ctx, conn)
}

// Check finds what Install (and Run) would refuse, and changes nothing: a
// missing or unopenable file, a missing table, a file that cannot be
// written. It does Install's work in one transaction that it rolls back;
// with create false it makes Run's read-only checks. `wsgate serve --check`
// calls it.
func (s *Source) Check(ctx context.Context) error {
	db, conn, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	defer conn.Close()
	if !s.create {
		return s.prepare(ctx, conn)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("checking %s: %w", s.path, err)
	}
	defer tx.Rollback()
	for _, t := range s.tables {
		if _, err := installIn(ctx, tx, t); err != nil {
			return err
		}
	}
	return nil
}

// Uninstall drops the triggers of the configured tables and their pending
// changes, and the change log when no other table is captured any more.
// Run must not be running. It is how a table stops being captured: taking
// it out of the configuration leaves its triggers logging changes that no
// source trims.
func (s *Source) Uninstall(ctx context.Context) error {
	db, conn, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	defer conn.Close()
	for _, t := range s.tables {
		if err := uninstall(ctx, conn, t); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) open(ctx context.Context) (*sql.DB, *sql.Conn, error) {
	// mode=rw: a missing file is an error, not a new empty database.
	// _txlock=immediate: the trigger installation reads then writes the
	// schema; taking the write lock first avoids a busy upgrade.
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(s.path) +
		"?mode=rw&_pragma=busy_timeout(5000)&_txlock=immediate"
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", s.path, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", s.path, err)
	}
	return db, conn, nil
}

// prepare makes sure the change log and the triggers are in place.
func (s *Source) prepare(ctx context.Context, conn *sql.Conn) error {
	if !s.create {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, ChangeTable).Scan(&n); err != nil {
			return fmt.Errorf("checking %s: %w", ChangeTable, err)
		}
		if n == 0 {
			return errNoChangeTable
		}
		for _, t := range s.tables {
			if err := check(ctx, conn, t); err != nil {
				return err
			}
		}
		return nil
	}
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode=WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("setting WAL mode on %s: %w", s.path, err)
	}
	if mode != "wal" {
		s.log.Warn("sqlite database not in WAL mode; writers and the stream will block each other", "path", s.path, "journalMode", mode)
	}
	for _, t := range s.tables {
		changed, err := install(ctx, conn, t)
		if err != nil {
			return err
		}
		if changed {
			s.log.Info("sqlite stream triggers installed", "path", s.path, "table", t)
		}
	}
	return nil
}

// Run implements streams.Source. It fails when the file cannot be opened,
// a table is missing, or the triggers cannot be installed (or, with create
// false, are not in place); later database errors are logged and retried.
func (s *Source) Run(ctx context.Context, h streams.Handler) error {
	db, conn, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	defer conn.Close()
	if err := s.prepare(ctx, conn); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	t := &tail{Source: s, db: db, conn: conn, trimmed: time.Now()}
	defer func() { t.conn.Close() }() // the connection dbError opened last
	t.size, t.window = streams.BatchOptions(h)
	t.query = fmt.Sprintf(`SELECT seq, tbl, op, keys_json, new_json, old_json, ts FROM %s WHERE seq > ? AND tbl IN (%s) ORDER BY seq LIMIT ?`,
		ChangeTable, placeholders(len(s.tables)))
	t.trim = fmt.Sprintf(`DELETE FROM %s WHERE seq <= ? AND tbl IN (%s)`, ChangeTable, placeholders(len(s.tables)))
	if t.schema, err = t.pragma(ctx, "schema_version"); err != nil {
		return err
	}
	err = t.run(ctx, h)
	if t.trimmedUpTo < t.last {
		t.trimLog(ctx)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// tail is the state of one Run.
type tail struct {
	*Source
	db           *sql.DB
	conn         *sql.Conn
	size         int
	window       time.Duration
	query, trim  string
	schema       int64
	last         int64     // highest seq the handler accepted
	trimmedUpTo  int64     // highest seq deleted from the log
	trimmed      time.Time // when the log was last trimmed
	handlerFails int
	dbFails      int
}

func (t *tail) run(ctx context.Context, h streams.Handler) error {
	for ctx.Err() == nil {
		version, err := t.pragma(ctx, "data_version")
		if err != nil {
			t.dbError(ctx, err)
			continue
		}
		if err := t.checkSchema(ctx); err != nil {
			return err
		}
		rows, err := t.read(ctx)
		if err != nil {
			t.dbError(ctx, err)
			continue
		}
		if len(rows) == 0 {
			t.dbFails = 0
			t.lag.Store(0)
			t.waitChange(ctx, version)
			continue
		}
		if len(rows) < t.size && t.window > 0 {
			if rows, err = t.gather(ctx, rows); err != nil {
				t.dbError(ctx, err)
				continue
			}
			if ctx.Err() != nil {
				break
			}
		}
		recs := make([]streams.Record, 0, len(rows))
		for _, r := range rows {
			rec, err := r.record(t.region)
			if err != nil {
				// Only a hand-edited log gets here; skipping would
				// lose the change, so block and say so.
				t.dbError(ctx, err)
				break
			}
			recs = append(recs, rec)
		}
		if len(recs) != len(rows) {
			continue
		}
		if !t.deliver(ctx, h, recs) {
			continue
		}
		t.dbFails = 0
		last := rows[len(rows)-1]
		t.last = last.seq
		t.delivered.Add(int64(len(rows)))
		t.lag.Store(int64(max(0, time.Since(last.committed()))))
		t.setErr(nil)
		if t.last-t.trimmedUpTo >= trimRows || time.Since(t.trimmed) >= t.trimDelay {
			t.trimLog(ctx)
		}
	}
	return nil
}

// deliver offers recs to h until it accepts them or ctx is done.
func (t *tail) deliver(ctx context.Context, h streams.Handler, recs []streams.Record) bool {
	for {
		err := h.Handle(ctx, t.shard, recs)
		if err == nil {
			t.handlerFails = 0
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		t.handlerFails++
		t.setErr(err)
		t.log.Warn("sqlite stream handler failed; retrying the batch",
			"shard", t.shard, "records", len(recs), "firstSequenceNumber", recs[0].Change.SequenceNumber,
			"attempt", t.handlerFails, "error", err)
		if streams.Sleep(ctx, retry.Delay(t.handlerFails)) != nil {
			return false
		}
	}
}

// read returns up to size log rows after the last accepted one.
func (t *tail) read(ctx context.Context) ([]logRow, error) {
	args := make([]any, 0, len(t.tables)+2)
	args = append(args, t.last)
	for _, tb := range t.tables {
		args = append(args, tb)
	}
	args = append(args, t.size)
	rows, err := t.conn.QueryContext(ctx, t.query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ChangeTable, err)
	}
	defer rows.Close()
	var out []logRow
	for rows.Next() {
		var r logRow
		if err := rows.Scan(&r.seq, &r.table, &r.op, &r.keys, &r.newImage, &r.oldImage, &r.ts); err != nil {
			return nil, fmt.Errorf("reading %s: %w", ChangeTable, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", ChangeTable, err)
	}
	return out, nil
}

// gather waits up to the batching window, counted from the first pending
// change, for the batch to fill.
func (t *tail) gather(ctx context.Context, rows []logRow) ([]logRow, error) {
	deadline := rows[0].committed().Add(t.window)
	for len(rows) < t.size {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		if streams.Sleep(ctx, min(wait, t.poll)) != nil {
			break
		}
		more, err := t.read(ctx)
		if err != nil {
			return nil, err
		}
		rows = more
	}
	return rows, nil
}

// trimLog deletes the accepted rows. A failure is logged and the delete
// tried again after the next batch: the rows stay behind t.last meanwhile.
func (t *tail) trimLog(ctx context.Context) {
	args := make([]any, 0, len(t.tables)+1)
	args = append(args, t.last)
	for _, tb := range t.tables {
		args = append(args, tb)
	}
	// The handler accepted the rows: finish the small delete even when
	// ctx was cancelled meanwhile, so a clean stop does not redeliver.
	if _, err := t.conn.ExecContext(context.WithoutCancel(ctx), t.trim, args...); err != nil {
		t.setErr(err)
		t.log.Warn("sqlite stream could not trim its change log; will retry", "path", t.path, "error", err)
		return
	}
	t.trimmedUpTo = t.last
	t.trimmed = time.Now()
}

// waitChange polls PRAGMA data_version, which changes when another
// connection commits, until it differs from version or ctx is done.
func (t *tail) waitChange(ctx context.Context, version int64) {
	for streams.Sleep(ctx, t.poll) == nil {
		if t.trimmedUpTo < t.last && time.Since(t.trimmed) >= t.trimDelay {
			t.trimLog(ctx)
		}
		v, err := t.pragma(ctx, "data_version")
		if err != nil || v != version {
			return
		}
	}
}

// checkSchema rebuilds the triggers when the schema changed since the last
// check (a column was added, a table re-created).
func (t *tail) checkSchema(ctx context.Context) error {
	v, err := t.pragma(ctx, "schema_version")
	if err != nil || v == t.schema {
		return nil // a read error shows again in read
	}
	if err := t.prepare(ctx, t.conn); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if t.create {
			return err
		}
		// Whoever manages the triggers may be about to update them.
		t.setErr(err)
		t.log.Warn("sqlite stream triggers out of date after a schema change", "path", t.path, "error", err)
	}
	// A log dropped and created again numbers from 1 again.
	var top int64
	err = t.conn.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?`, ChangeTable).Scan(&top)
	if err == nil && top < t.last {
		t.log.Warn("sqlite stream change log was re-created; changes pending in the old one are lost", "path", t.path)
		t.last, t.trimmedUpTo = 0, 0
	}
	// prepare may itself have changed the schema.
	t.schema, err = t.pragma(ctx, "schema_version")
	return err
}

// dbError records and logs a transient database error and backs off.
func (t *tail) dbError(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	t.dbFails++
	t.setErr(err)
	t.log.Warn("sqlite stream error; retrying", "path", t.path, "attempt", t.dbFails, "error", err)
	_ = streams.Sleep(ctx, retry.Delay(t.dbFails))
	if t.dbFails%3 == 0 {
		// The connection may be broken, or the file replaced: start
		// over on a new one, and check the triggers again.
		t.conn.Close()
		if c, err := t.db.Conn(ctx); err == nil {
			t.conn = c
		}
		t.schema = -1
	}
}

func (t *tail) pragma(ctx context.Context, name string) (int64, error) {
	var v int64
	if err := t.conn.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading %s: %w", name, err)
	}
	return v, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
