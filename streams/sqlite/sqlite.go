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
// TABLE and the rebuild are captured with the old column list.
//
// # Tables dropped and created again
//
// A table's triggers die with it. The tables wsgate installed triggers on
// are listed in _wsgate_tables, so a listed table found without its
// triggers is known to have been created again: its triggers go back and,
// in the same transaction, every row it holds is logged as an INSERT, so
// the writes made before the triggers were back are delivered too, also
// when wsgate was not running at the time. (Rebuilding a table by the
// usual create-copy-drop-rename migration therefore delivers each of its
// rows as an INSERT once.) Dropping a table logs nothing, as a dropped
// DynamoDB table's stream has no REMOVE records either. While a captured
// table is missing, the other tables of the file go on and
// Stats().LastError names the missing one.
//
// # Values
//
// The triggers log each column as a string: the first letter of its
// storage class and the value as text ("n" NULL, "i" INTEGER in decimal,
// "r" REAL as printf's %!.17g, "t" TEXT and "b" BLOB as hex of their
// bytes; see encode). Every value a writer can store becomes an attribute (see value
// in record.go): NULL as NULL; INTEGER as an exact N; REAL as the
// shortest decimal N that reads back as the same double (-0.0 as "0",
// +Inf and -Inf as "Infinity" and "-Infinity"; NaN is stored as NULL by
// SQLite); TEXT as S, byte for byte, a JSON-function result as its JSON
// text, and TEXT that is not valid UTF-8 (UTF-16 in a UTF-16 file) as B of
// its bytes, as S must be UTF-8; BLOB as B. Keys are the declared primary
// key columns, or "rowid" for a table without one. An UPDATE that changes
// the key is logged as REMOVE then INSERT; an UPDATE that changes nothing
// is not logged. Rows logged by earlier versions' triggers
// ([typeof, value] pairs) are read too.
//
// A row the source cannot decode (hand-edited, or written by a future
// version) never holds up the rows after it: it is set aside, kept in the
// log with tbl = "_wsgate_rejected:" + table where the source no longer
// reads it, logged at error level with its content, counted by SetAside
// and reported in Stats().LastError. To offer set-aside rows again (after
// a fix), run UPDATE _wsgate_changes SET tbl = substr(tbl, 18) WHERE tbl
// LIKE '\_wsgate\_rejected:%' ESCAPE '\' and restart the source.
//
// # Errors
//
// Run retries with backoff (100 ms doubling to 10 s) whatever another
// connection or a schema change can cause: a lock held past the busy
// timeout (also while the triggers are rebuilt after an ALTER TABLE), a
// captured table missing for a while. It returns an error only when the
// file cannot be opened (worth a restart: it may yet be created) or when a
// person must act, marked streams.Permanent: at start, a table never
// captured is missing or (create false) the triggers are not in place;
// the file is not a database, is corrupt, or may not be written.
//
// The source tails the log on one connection: it checks PRAGMA
// data_version every PollMillis (default 20 ms), reads new rows in order
// and passes them to the handler, and deletes them once the handler
// returned nil: in bulk, within a second or 1000 rows, and when Run
// returns. The log is thus also the position: after a restart the source
// starts with whatever rows remain, so nothing committed is lost and
// records arrive at least once, in order (a crash, not a stop, redelivers
// what was accepted in the last second). A Handle call under way when
// Run's context ends gets SourceConfig.DeliverGraceSeconds to finish
// (streams.HandleWithGrace); a batch it accepts is trimmed before Run
// returns. A handler error makes the
// source offer the same records again after a backoff (100 ms doubling to
// 10 s). Stats().OldestPending is the log time of the oldest change read
// and not yet accepted (gathered for a batch, or refused by the handler),
// zero when caught up.
//
// # Runners, epoch and source id
//
// Install also creates _wsgate_meta, one row per source (its tables): a
// random uuid, the file's identity, the same in every row (SourceID is
// the first 16 hex digits of the SHA-256 of "sqlite:", it, ":" and the
// tables; a cluster keys the stream's lease with it, so every node on
// this file shares one lease per stream), and an epoch that every Run of
// the source raises when it starts. Run's trim deletes only while the
// epoch is still the one it set (the condition is part of the DELETE), so
// a runner started before another one of the same source (a cluster
// leader whose lease another node took over while it was paused or cut
// off) deletes nothing and stops with ErrFenced: two runners can deliver a
// row twice, never lose one, since each trims only rows it delivered. A
// file without the source's row (create false, installed by an older
// version) is run without the fence and has no SourceID.
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
// goroutine and blocks while the handler runs. Stats and SetAside are
// safe from any goroutine. The database is opened in WAL mode with a 5 s busy timeout,
// so writers are not blocked by the reader and wait briefly for the
// source's own small deletes.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	driver "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
	sqlite3 "modernc.org/sqlite/lib"

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
	// busyTimeout is how long a statement waits for another
	// connection's lock before failing with SQLITE_BUSY; 5 s.
	busyTimeout time.Duration
	// grace is how long a call to the handler under way at a stop may
	// still take (SourceConfig.DeliverGraceSeconds).
	grace time.Duration

	delivered atomic.Int64
	setAside  atomic.Int64
	mu        sync.Mutex
	lastErr   string    // the last transient error, cleared by progress
	schemaErr string    // what keeps tables from being captured, until healed
	oldest    time.Time // log time of the oldest change read and not yet accepted
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

		trimDelay:   time.Second,
		busyTimeout: 5 * time.Second,
		grace:       cfg.Grace(),
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

// Stats implements streams.Source. OldestPending is the log time (the
// commit time, to the millisecond) of the oldest change read from the log
// and not yet accepted by the handler: gathered for a batch, offered, or
// waiting to be offered again after a handler error; zero when caught up.
// LastError is the last transient error until the source makes progress
// again, else what keeps a table from being captured (it is missing; with
// create false, its triggers are out of date) until that is healed.
func (s *Source) Stats() streams.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.lastErr
	if last == "" {
		last = s.schemaErr
	}
	return streams.Stats{
		Delivered:     s.delivered.Load(),
		OldestPending: s.oldest,
		LastError:     last,
	}
}

// setPending records the log time of the oldest change among rows, the
// ones read and not yet accepted; zero when there are none.
func (s *Source) setPending(rows []logRow) {
	var oldest time.Time
	for _, r := range rows {
		if !r.timed() {
			continue // it has no time; it is set aside when decoded
		}
		if c := r.committed(); oldest.IsZero() || c.Before(oldest) {
			oldest = c
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oldest = oldest
}

// SetAside counts the changes this source could not decode and set aside
// (see the package doc) since it was created.
func (s *Source) SetAside() int64 { return s.setAside.Load() }

func (s *Source) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = errString(err)
}

func (s *Source) setSchemaErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.schemaErr = errString(err)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Install opens the file and installs or updates the change log and the
// triggers of the configured tables, as Run does when it starts. It lets a
// deployment prepare a database before any writer runs. It waits out
// another connection's lock, retrying until ctx is done. A table that was
// captured before but is missing now (being created again) is logged, not
// an error: Run installs its triggers when it is back.
func (s *Source) Install(ctx context.Context) error {
	db, conn, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	defer conn.Close()
	_, err = s.prepareRetrying(ctx, conn)
	return err
}

// Check finds what Install (and Run) would refuse, and changes nothing: a
// missing or unopenable file, a missing table (not one captured before,
// which is being created again), a file that cannot be written. It does Install's work in one transaction that it rolls back;
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
		_, err := s.prepare(ctx, conn, true)
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("checking %s: %w", s.path, err)
	}
	defer tx.Rollback()
	_, err = installIn(ctx, tx, s.tables, true)
	return err
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
	_, err = conn.ExecContext(ctx, `DELETE FROM `+metaTable+` WHERE source = ?`, sourceKey(s.tables))
	if err != nil && !isNoTable(err) {
		return fmt.Errorf("uninstalling %s: %w", s.path, err)
	}
	return nil
}

func (s *Source) open(ctx context.Context) (*sql.DB, *sql.Conn, error) {
	// mode=rw: a missing file is an error, not a new empty database.
	// _txlock=immediate: the trigger installation reads then writes the
	// schema; taking the write lock first avoids a busy upgrade.
	uri := fmt.Sprintf("%s?mode=rw&_pragma=busy_timeout(%d)&_txlock=immediate", fileURI(s.path), s.busyTimeout.Milliseconds())
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

// fileURI is the file: URI of path, escaping what a URI would misread.
func fileURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// prepare makes sure the change log and the triggers are in place (with
// create false, checks that they are), and logs what it changed and what
// keeps a table from being captured. strict makes a table that was never
// captured and is missing an error (at start: a wrong name, or a table the
// application has yet to create).
func (s *Source) prepare(ctx context.Context, conn *sql.Conn, strict bool) (prepared, error) {
	if !s.create {
		p, err := check(ctx, conn, s.tables, strict)
		if err == nil && p.problem != nil {
			s.log.Warn("sqlite stream triggers missing or out of date; waiting for them", "path", s.path, "error", p.problem)
		}
		return p, err
	}
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode=WAL`).Scan(&mode); err != nil {
		return prepared{}, fmt.Errorf("setting WAL mode on %s: %w", s.path, err)
	}
	if mode != "wal" {
		s.log.Warn("sqlite database not in WAL mode; writers and the stream will block each other", "path", s.path, "journalMode", mode)
	}
	p, err := install(ctx, conn, s.tables, strict)
	if err != nil {
		return p, err
	}
	for _, t := range p.rebuilt {
		if n, ok := p.snapshots[t]; ok {
			s.log.Warn("sqlite stream table was created again; its triggers are back and its rows are delivered as INSERTs",
				"path", s.path, "table", t, "rows", n)
		} else {
			s.log.Info("sqlite stream triggers installed", "path", s.path, "table", t)
		}
	}
	if p.problem != nil {
		s.log.Warn("sqlite stream table missing; its triggers go back when it is created again", "path", s.path, "error", p.problem)
	}
	return p, nil
}

// prepareRetrying is prepare at start (strict), tried again with backoff
// while it fails for a transient reason (another connection's lock) and
// ctx lasts.
func (s *Source) prepareRetrying(ctx context.Context, conn *sql.Conn) (prepared, error) {
	for attempt := 1; ; attempt++ {
		p, err := s.prepare(ctx, conn, true)
		if err == nil || !transient(err) {
			return p, err
		}
		s.setErr(err)
		s.log.Warn("sqlite stream cannot install its triggers yet; retrying", "path", s.path, "attempt", attempt, "error", err)
		if streams.Sleep(ctx, retry.Delay(attempt)) != nil {
			return p, err
		}
	}
}

// Run implements streams.Source. It returns an error when the file cannot
// be opened, and one marked streams.Permanent when a person must act: at
// start, a table is missing that was never captured or (create false) the
// triggers are not in place; the file is not a database, is corrupt, or
// may not be written. Everything else is retried with backoff and shows in
// Stats().LastError meanwhile: a lock held by another connection, a
// captured table dropped and not yet created again (the other tables go
// on).
func (s *Source) Run(ctx context.Context, h streams.Handler) error {
	db, conn, err := s.open(ctx)
	if err != nil {
		return classify(err)
	}
	defer db.Close()
	defer s.setPending(nil) // what was read is read again
	t := &tail{Source: s, db: db, conn: conn, trimmed: time.Now()}
	defer func() { t.conn.Close() }() // the connection retry opened last
	p, err := s.prepareRetrying(ctx, t.conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		// A table never captured that is missing is a wrong name (one
		// captured before is waited for); with create false, triggers
		// not in place are for whoever manages them to install.
		var missing *missingTableError
		var notInstalled notInstalledError
		if errors.As(err, &missing) || errors.As(err, &notInstalled) {
			return streams.Permanent(err)
		}
		return classify(err)
	}
	t.schema = p.schema
	s.setErr(nil)
	s.setSchemaErr(p.problem)
	if t.enc, err = t.textEncoding(ctx); err != nil {
		return classify(err)
	}
	if t.epoch, err = t.takeOver(ctx); err != nil {
		return classify(err)
	}
	t.size, t.window = streams.BatchOptions(h)
	t.query = fmt.Sprintf(`SELECT seq, tbl, op, keys_json, new_json, old_json, ts FROM %s WHERE seq > ? AND tbl IN (%s) ORDER BY seq LIMIT ?`,
		ChangeTable, placeholders(len(s.tables)))
	t.trim = fmt.Sprintf(`DELETE FROM %s WHERE seq <= ? AND tbl IN (%s)`, ChangeTable, placeholders(len(s.tables)))
	if t.epoch != 0 {
		t.trim += ` AND (SELECT epoch FROM ` + metaTable + ` WHERE source = ?) = ?`
	}
	err = t.run(ctx, h)
	if t.trimmedUpTo < t.last && err == nil {
		err = t.trimLog(ctx)
	}
	if ctx.Err() != nil && !errors.Is(err, ErrFenced) {
		return nil
	}
	return err
}

// transient reports whether err is another connection's lock or a schema
// change under a statement: gone when tried again.
func transient(err error) bool {
	switch resultCode(err) & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_SCHEMA, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}

// classify marks the errors a restart cannot heal as permanent: the file
// is not a database or is corrupt, or may not be written (plain
// SQLITE_READONLY, not the transient kinds such as a WAL recovery under
// way), or access is denied.
func classify(err error) error {
	code := resultCode(err)
	switch code & 0xff {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
		return streams.Permanent(err)
	}
	if code == sqlite3.SQLITE_READONLY {
		return streams.Permanent(err)
	}
	return err
}

// resultCode is SQLite's extended result code in err, 0 when err is not
// SQLite's.
func resultCode(err error) int {
	var e *driver.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// tail is the state of one Run.
type tail struct {
	*Source
	db           *sql.DB
	conn         *sql.Conn
	size         int
	window       time.Duration
	query, trim  string
	enc          textEncoding // how hex(TEXT) in the log is to be read
	schema       int64        // schema_version the triggers match
	epoch        int64        // _wsgate_meta's epoch this run set; 0: no fence
	last         int64        // highest seq the handler accepted
	trimmedUpTo  int64        // highest seq deleted from the log
	trimmed      time.Time    // when the log was last trimmed
	handlerFails int
	dbFails      int
	prepareFails int       // failed attempts to update the triggers
	prepareAt    time.Time // when to attempt it again
}

func (t *tail) run(ctx context.Context, h streams.Handler) error {
	for ctx.Err() == nil {
		version, err := t.pragma(ctx, "data_version")
		if err != nil {
			if err := t.dbError(ctx, err); err != nil {
				return err
			}
			continue
		}
		if err := t.checkSchema(ctx); err != nil {
			return err
		}
		rows, err := t.read(ctx)
		if err != nil {
			if err := t.dbError(ctx, err); err != nil {
				return err
			}
			continue
		}
		t.setPending(rows)
		if len(rows) == 0 {
			t.dbFails = 0
			if err := t.waitChange(ctx, version); err != nil {
				return err
			}
			continue
		}
		if len(rows) < t.size && t.window > 0 {
			if rows, err = t.gather(ctx, rows); err != nil {
				if err := t.dbError(ctx, err); err != nil {
					return err
				}
				continue
			}
			if ctx.Err() != nil {
				break
			}
			t.setPending(rows)
		}
		recs := make([]streams.Record, 0, len(rows))
		for _, r := range rows {
			rec, err := r.record(t.region, t.enc)
			if err != nil {
				// Only a hand-edited log, or one written by another
				// version, gets here. Decoding will never succeed:
				// set the row aside and read again.
				if err := t.setRowAside(ctx, r, err); err != nil {
					if err := t.dbError(ctx, err); err != nil {
						return err
					}
				}
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
		t.setPending(nil)
		t.setErr(nil)
		if t.last-t.trimmedUpTo >= trimRows || time.Since(t.trimmed) >= t.trimDelay {
			if err := t.trimLog(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// deliver offers recs to h until it accepts them or ctx is done. A call
// under way when ctx is done gets the source's grace to finish
// (streams.HandleWithGrace): a batch the target accepts meanwhile is
// trimmed, not delivered again by the next run.
func (t *tail) deliver(ctx context.Context, h streams.Handler, recs []streams.Record) bool {
	for {
		err := streams.HandleWithGrace(ctx, t.grace, h, t.shard, recs)
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
		// SQLite does not enforce the log's column types: take whatever
		// is there, and let record tell what cannot be decoded.
		var op, keys, newImage, oldImage, ts any
		var r logRow
		if err := rows.Scan(&r.seq, &r.table, &op, &keys, &newImage, &oldImage, &ts); err != nil {
			return nil, fmt.Errorf("reading %s: %w", ChangeTable, err)
		}
		r.op, r.keys, r.newImage, r.oldImage = string(asBytes(op)), asBytes(keys), asBytes(newImage), asBytes(oldImage)
		r.ts, r.tsErr = asFloat(ts)
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
// The delete carries this run's epoch: when another run started on the
// file since (a cluster node that took the stream over), it deletes
// nothing and trimLog returns ErrFenced, which ends the run.
func (t *tail) trimLog(ctx context.Context) error {
	args := make([]any, 0, len(t.tables)+2)
	args = append(args, t.last)
	for _, tb := range t.tables {
		args = append(args, tb)
	}
	if t.epoch != 0 {
		args = append(args, sourceKey(t.tables), t.epoch)
	}
	// The handler accepted the rows: finish the small delete even when
	// ctx was cancelled meanwhile, so a clean stop does not redeliver.
	ctx = context.WithoutCancel(ctx)
	res, err := t.conn.ExecContext(ctx, t.trim, args...)
	if err != nil {
		t.setErr(err)
		t.log.Warn("sqlite stream could not trim its change log; will retry", "path", t.path, "error", err)
		return nil
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if err := t.fenced(ctx); err != nil {
			t.setErr(err)
			t.log.Warn("sqlite stream stopped: another runner took its change log over", "path", t.path, "error", err)
			return err
		}
	}
	t.trimmedUpTo = t.last
	t.trimmed = time.Now()
	return nil
}

// waitChange polls PRAGMA data_version, which changes when another
// connection commits, until it differs from version, a failed update of
// the triggers is due again, or ctx is done. It trims what waits to be
// trimmed, and returns ErrFenced when that was refused.
func (t *tail) waitChange(ctx context.Context, version int64) error {
	for streams.Sleep(ctx, t.poll) == nil {
		if t.trimmedUpTo < t.last && time.Since(t.trimmed) >= t.trimDelay {
			if err := t.trimLog(ctx); err != nil {
				return err
			}
		}
		v, err := t.pragma(ctx, "data_version")
		if err != nil || v != version {
			return nil
		}
		if t.prepareFails > 0 && !time.Now().Before(t.prepareAt) {
			return nil // time to try the triggers again
		}
	}
	return nil
}

// checkSchema brings the triggers up to date when the schema changed
// since the last check (a column was added, a table dropped or created
// again), and after a failed attempt when its backoff is over. It returns
// only errors a restart cannot heal; the rest are retried.
func (t *tail) checkSchema(ctx context.Context) error {
	if t.prepareFails > 0 && time.Now().Before(t.prepareAt) {
		return nil
	}
	v, err := t.pragma(ctx, "schema_version")
	if err != nil || v == t.schema {
		return nil // a read error shows again in read
	}
	p, err := t.prepare(ctx, t.conn, false)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if err := classify(err); streams.IsPermanent(err) {
			return err
		}
		t.prepareFails++
		t.prepareAt = time.Now().Add(retry.Delay(t.prepareFails))
		t.setErr(err)
		t.log.Warn("sqlite stream could not update its triggers after a schema change; retrying",
			"path", t.path, "attempt", t.prepareFails, "error", err)
		return nil
	}
	if t.prepareFails > 0 {
		t.prepareFails = 0
		t.setErr(nil)
	}
	t.schema = p.schema
	t.setSchemaErr(p.problem)
	// A log dropped and created again numbers from 1 again.
	var top int64
	err = t.conn.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?`, ChangeTable).Scan(&top)
	if err == nil && top < t.last {
		t.log.Warn("sqlite stream change log was re-created; changes pending in the old one are lost", "path", t.path)
		t.last, t.trimmedUpTo = 0, 0
	}
	return nil
}

// setRowAside takes a change that cannot be decoded out of the stream's
// way, keeping it in the log under tbl = rejectedPrefix + table for a
// person to look at, and says so loudly.
func (t *tail) setRowAside(ctx context.Context, r logRow, cause error) error {
	_, err := t.conn.ExecContext(ctx, `UPDATE `+ChangeTable+` SET tbl = ? WHERE seq = ? AND tbl = ?`,
		rejectedPrefix+r.table, r.seq, r.table)
	if err != nil {
		return fmt.Errorf("setting aside change %d: %w", r.seq, err)
	}
	t.setAside.Add(1)
	t.setErr(fmt.Errorf("change %d set aside: %w", r.seq, cause))
	t.log.Error("sqlite stream set aside a change it cannot decode; it stays in the change log",
		"path", t.path, "seq", r.seq, "table", r.table, "keptAs", rejectedPrefix+r.table, "error", cause,
		"op", clip(r.op), "keys", clip(string(r.keys)), "newImage", clip(string(r.newImage)), "oldImage", clip(string(r.oldImage)))
	return nil
}

// clip bounds what a log line quotes of a row.
func clip(s string) string {
	const max = 512
	if len(s) <= max {
		return s
	}
	return s[:max] + fmt.Sprintf("... (%d bytes)", len(s))
}

// dbError records and logs a database error and backs off; it returns the
// error, marked permanent, when a retry cannot heal it.
func (t *tail) dbError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if err := classify(err); streams.IsPermanent(err) {
		return err
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
	return nil
}

// textEncoding reads the file's text encoding, which hex(TEXT) follows.
func (t *tail) textEncoding(ctx context.Context) (textEncoding, error) {
	var enc string
	if err := t.conn.QueryRowContext(ctx, "PRAGMA encoding").Scan(&enc); err != nil {
		return 0, fmt.Errorf("reading the encoding of %s: %w", t.path, err)
	}
	switch enc {
	case "UTF-16le":
		return utf16LE, nil
	case "UTF-16be":
		return utf16BE, nil
	}
	return utf8Text, nil
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
