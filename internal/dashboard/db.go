package dashboard

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"regexp"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DSN returns the modernc.org/sqlite data source name OpenDB uses for the
// database file at path:
//
//	file:PATH?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate
//
// WAL lets the page's snapshot reads run while the generator or a visitor's
// sqlite3 writes; busy_timeout (milliseconds) makes writers queue behind each
// other instead of failing with SQLITE_BUSY; immediate transactions take the
// write lock up front, so a transaction never fails while upgrading from a
// read lock. PATH is percent-escaped, as SQLite's URI filenames expect.
func DSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"
}

// OpenDB opens (creating if needed) the SQLite database file at path with
// the settings DSN describes and checks that it is usable.
func OpenDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, nil
}

// identRE is what this package accepts as a table name: it is interpolated
// into SQL (quoted), so it is kept to plain identifiers.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// quoteTable validates table and returns it quoted for SQL.
func quoteTable(table string) (string, error) {
	if !identRE.MatchString(table) {
		return "", fmt.Errorf("table name %q: want letters, digits and underscores", table)
	}
	return `"` + table + `"`, nil
}

// EnsureSchema creates table in db if it does not exist yet, with the demo's
// columns, and seeds it with a few orders. An existing table is left as it
// is, rows and all.
//
// The table has a text primary key, so SQLite gives it an implicit rowid;
// the snapshot orders rows by rowid, newest first.
func EnsureSchema(ctx context.Context, db *sql.DB, table string) error {
	q, err := quoteTable(table)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("creating %s: %w", table, err)
	}
	defer tx.Rollback()
	var n int
	err = tx.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&n)
	if err != nil {
		return fmt.Errorf("creating %s: %w", table, err)
	}
	if n > 0 {
		return nil
	}
	// updated_at has a default so a hand-written INSERT (the command the
	// page suggests) needs no timestamp.
	_, err = tx.ExecContext(ctx, `CREATE TABLE `+q+` (
		id         TEXT PRIMARY KEY,
		status     TEXT NOT NULL DEFAULT 'pending',
		customer   TEXT NOT NULL DEFAULT '',
		item       TEXT NOT NULL DEFAULT '',
		quantity   INTEGER NOT NULL DEFAULT 1,
		amount     REAL NOT NULL DEFAULT 0,
		updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	)`)
	if err != nil {
		return fmt.Errorf("creating %s: %w", table, err)
	}
	for i, o := range seedOrders(time.Now()) {
		if err := insertOrder(ctx, tx, q, o); err != nil {
			return fmt.Errorf("seeding %s row %d: %w", table, i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("creating %s: %w", table, err)
	}
	return nil
}

// execer is what both *sql.DB and *sql.Tx offer for writes.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertOrder(ctx context.Context, db execer, quoted string, o order) error {
	_, err := db.ExecContext(ctx, `INSERT INTO `+quoted+
		` (id, status, customer, item, quantity, amount, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.Status, o.Customer, o.Item, o.Quantity, o.Amount, timestamp(o.UpdatedAt))
	return err
}

// timestamp formats t the way updated_at's default does.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// snapshot is the body of GET /api/snapshot.
type snapshot struct {
	// Columns lists the table's columns in table order, so the page can lay
	// out columns before (or without) any row.
	Columns []string `json:"columns"`
	// Key lists the primary key columns; records' Keys carry the same names.
	Key []string `json:"key"`
	// Rows are the table's rows, newest first, each column by name.
	Rows    []map[string]any `json:"rows"`
	Viewers int              `json:"viewers"`
}

// readSnapshot reads at most limit rows of table, newest (highest rowid)
// first, and the table's columns and primary key.
func readSnapshot(ctx context.Context, db *sql.DB, table string, limit int) (snapshot, error) {
	q, err := quoteTable(table)
	if err != nil {
		return snapshot{}, err
	}
	// One read transaction, so the columns and the rows agree.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return snapshot{}, fmt.Errorf("reading %s: %w", table, err)
	}
	defer tx.Rollback()

	s := snapshot{Columns: []string{}, Key: []string{}, Rows: []map[string]any{}}
	info, err := tx.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return snapshot{}, fmt.Errorf("reading %s columns: %w", table, err)
	}
	type keyCol struct {
		name string
		pos  int
	}
	var keys []keyCol
	for info.Next() {
		var name string
		var pk int
		if err := info.Scan(&name, &pk); err != nil {
			info.Close()
			return snapshot{}, fmt.Errorf("reading %s columns: %w", table, err)
		}
		s.Columns = append(s.Columns, name)
		if pk > 0 {
			keys = append(keys, keyCol{name, pk})
		}
	}
	if err := info.Close(); err != nil {
		return snapshot{}, fmt.Errorf("reading %s columns: %w", table, err)
	}
	if len(s.Columns) == 0 {
		return snapshot{}, fmt.Errorf("reading %s: no such table", table)
	}
	s.Key = make([]string, len(keys))
	for _, k := range keys {
		s.Key[k.pos-1] = k.name
	}

	rows, err := tx.QueryContext(ctx, `SELECT * FROM `+q+` ORDER BY rowid DESC LIMIT ?`, limit)
	if err != nil {
		return snapshot{}, fmt.Errorf("reading %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return snapshot{}, fmt.Errorf("reading %s: %w", table, err)
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return snapshot{}, fmt.Errorf("reading %s: %w", table, err)
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			row[c] = vals[i]
		}
		s.Rows = append(s.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return snapshot{}, fmt.Errorf("reading %s: %w", table, err)
	}
	return s, nil
}

// databaseFile returns the file behind db's main schema ("" for an
// in-memory or temporary database).
func databaseFile(ctx context.Context, db *sql.DB) (string, error) {
	var file string
	err := db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file)
	if err != nil {
		return "", fmt.Errorf("finding database file: %w", err)
	}
	return file, nil
}
