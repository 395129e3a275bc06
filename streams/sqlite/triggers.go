package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ChangeTable is the change-log table the triggers write into.
const ChangeTable = "_wsgate_changes"

// triggerPrefix starts the name of every trigger wsgate installs.
const triggerPrefix = "_wsgate_"

// tableList names the tables wsgate has installed triggers on. A listed
// table found without its triggers was dropped and created again (its
// triggers died with it), which a table never captured is not.
const tableList = "_wsgate_tables"

const createTableList = `CREATE TABLE IF NOT EXISTS ` + tableList + ` (tbl TEXT PRIMARY KEY)`

// metaTable holds one row per source (the set of tables a stream
// captures, as a JSON list): the database's id, a random uuid the first
// install drew, the same in every row (SourceID is made from it and the
// tables), and the source's epoch, raised by every Run that starts. A trim
// deletes only while the epoch is the one its Run set, so a runner that
// another one of the same source took over from stops instead of
// trimming (see Source.Run). Two streams capturing different tables of one
// file have a row each and do not fence each other.
const metaTable = "_wsgate_meta"

const createMetaTable = `CREATE TABLE IF NOT EXISTS ` + metaTable + ` (source TEXT PRIMARY KEY, id TEXT NOT NULL, epoch INTEGER NOT NULL)`

// sourceKey names a source in metaTable: its tables, sorted, as JSON.
func sourceKey(tables []string) string {
	b, _ := json.Marshal(slices.Sorted(slices.Values(tables)))
	return string(b)
}

// rejectedPrefix marks a change the source cannot decode: it is kept in
// the log with tbl = rejectedPrefix + table, where the source no longer
// reads it (see Source.SetAside).
const rejectedPrefix = "_wsgate_rejected:"

// createChangeTable is the change log. AUTOINCREMENT keeps seq from being
// reused after the log was trimmed empty, so sequence numbers and event IDs
// stay unique across restarts. ts is Unix seconds with millisecond
// precision, computed with julianday so that any SQLite the triggers run in
// (the sqlite3 CLI of an older Debian, too) understands it.
const createChangeTable = `CREATE TABLE IF NOT EXISTS ` + ChangeTable + ` (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tbl TEXT NOT NULL,
  op TEXT NOT NULL,
  keys_json TEXT NOT NULL,
  new_json TEXT,
  old_json TEXT,
  ts REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
)`

// column is one column of a captured table.
type column struct {
	name string
	pk   int // position in the primary key, 0 when not part of it
}

// tableColumns reads a table's columns; it fails when the table is missing.
func tableColumns(ctx context.Context, q querier, table string) ([]column, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.pk); err != nil {
			return nil, fmt.Errorf("reading columns of %s: %w", table, err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading columns of %s: %w", table, err)
	}
	if len(cols) == 0 {
		return nil, &missingTableError{table}
	}
	return cols, nil
}

// missingTableError says a captured table is not in the file.
type missingTableError struct{ table string }

func (e *missingTableError) Error() string { return "table " + e.table + " does not exist" }

// querier is what both *sql.Conn and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// capture describes what is logged of a table's rows.
type capture struct {
	table string
	names []string // every column
	keys  []string // the declared primary key columns; none: rowid
}

func newCapture(table string, cols []column) capture {
	c := capture{table: table}
	pks := slices.Clone(cols)
	slices.SortFunc(pks, func(a, b column) int { return a.pk - b.pk })
	for _, col := range pks {
		if col.pk > 0 {
			c.keys = append(c.keys, col.name)
		}
	}
	for _, col := range cols {
		c.names = append(c.names, col.name)
	}
	return c
}

// keyObject is the SQL for the key of row (NEW, OLD or a table alias).
func (c capture) keyObject(row string) string {
	if len(c.keys) == 0 {
		return "json_object('rowid', " + encode(row+".rowid") + ")"
	}
	return object(row, c.keys)
}

// logInsert is the SQL appending one change to the log.
func (c capture) logInsert(op, keys, newObj, oldObj string) string {
	return fmt.Sprintf("INSERT INTO %s(tbl, op, keys_json, new_json, old_json) VALUES (%s, '%s', %s, %s, %s);",
		ChangeTable, literal(c.table), op, keys, newObj, oldObj)
}

// triggers returns the CREATE TRIGGER statements capturing table, by
// trigger name. The key is the declared primary key, or rowid when there is
// none. An UPDATE that changes the key is logged as a REMOVE of the old
// item and an INSERT of the new one, as DynamoDB cannot change a key; an
// UPDATE that changes no column is not logged, as DynamoDB logs no record
// for a write that changes nothing.
func triggers(table string, cols []column) map[string]string {
	c := newCapture(table, cols)
	var sameKey, changed []string
	if len(c.keys) == 0 {
		sameKey = []string{"NEW.rowid IS OLD.rowid"}
	}
	for _, k := range c.keys {
		sameKey = append(sameKey, fmt.Sprintf("NEW.%s IS OLD.%s", ident(k), ident(k)))
	}
	for _, n := range c.names {
		changed = append(changed, fmt.Sprintf("NEW.%s IS NOT OLD.%s", ident(n), ident(n)))
	}
	name := func(suffix string) string { return triggerPrefix + table + "_" + suffix }
	create := func(suffix, event, when, body string) string {
		if when != "" {
			when = " WHEN " + when
		}
		return fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s%s BEGIN %s END",
			ident(name(suffix)), event, ident(table), when, body)
	}
	newObj, oldObj := object("NEW", c.names), object("OLD", c.names)
	same := strings.Join(sameKey, " AND ")
	return map[string]string{
		name("insert"): create("insert", "INSERT", "",
			c.logInsert("INSERT", c.keyObject("NEW"), newObj, "NULL")),
		name("update"): create("update", "UPDATE", same+" AND ("+strings.Join(changed, " OR ")+")",
			c.logInsert("MODIFY", c.keyObject("NEW"), newObj, oldObj)),
		name("rekey"): create("rekey", "UPDATE", "NOT ("+same+")",
			c.logInsert("REMOVE", c.keyObject("OLD"), "NULL", oldObj)+" "+c.logInsert("INSERT", c.keyObject("NEW"), newObj, "NULL")),
		name("delete"): create("delete", "DELETE", "",
			c.logInsert("REMOVE", c.keyObject("OLD"), "NULL", oldObj)),
	}
}

// snapshot is the SQL that logs every row of table as an INSERT: the rows
// of a table created again, written before its triggers were back.
func snapshot(table string, cols []column) string {
	c := newCapture(table, cols)
	const row = "_wsgate_row"
	return fmt.Sprintf("INSERT INTO %s(tbl, op, keys_json, new_json, old_json) SELECT %s, 'INSERT', %s, %s, NULL FROM %s AS %s",
		ChangeTable, literal(table), c.keyObject(row), object(row, c.names), ident(table), row)
}

// maxObjectColumns keeps json_object under SQLite's default limit of 127
// function arguments; wider rows are merged with json_patch.
const maxObjectColumns = 60

// object is the SQL for a JSON object of row's columns, each encoded.
func object(row string, cols []string) string {
	var parts []string
	for chunk := range slices.Chunk(cols, maxObjectColumns) {
		args := make([]string, 0, 2*len(chunk))
		for _, c := range chunk {
			args = append(args, literal(c), encode(row+"."+ident(c)))
		}
		parts = append(parts, "json_object("+strings.Join(args, ", ")+")")
	}
	obj := parts[0]
	for _, p := range parts[1:] {
		obj = "json_patch(" + obj + ", " + p + ")"
	}
	return obj
}

// encode is the SQL for one value in the change log: a string of the
// first letter of its storage class and the value as text:
//
//	n  NULL, nothing after the letter
//	i  INTEGER, in decimal
//	r  REAL, printf's %!.17g: 17 significant digits, enough for the same
//	   double to be read back; "Inf" and "-Inf" for the infinities
//	t  TEXT, its bytes in hex (in the database's text encoding)
//	b  BLOB, its bytes in hex
//
// TEXT goes as hex because the log's JSON cannot carry all TEXT: a value
// SQLite's JSON functions made (json('{"a":1}')) carries a subtype that
// makes json_object embed it as JSON rather than as a string, and TEXT may
// hold bytes that are not UTF-8. hex() and || drop the subtype; the reader
// sees exactly the stored bytes. SQLite compiles the triggers into every
// statement that writes the table, so the expression is kept short
// (BenchmarkWrite). The triggers run in whatever SQLite library writes the
// file; these functions are in old ones too (the sqlite3 3.40 CLI of
// Debian 12 is tested).
func encode(v string) string {
	return fmt.Sprintf("substr(typeof(%[1]s), 1, 1) || CASE typeof(%[1]s) WHEN 'real' THEN printf('%%!.17g', %[1]s) WHEN 'integer' THEN %[1]s ELSE hex(%[1]s) END", v)
}

// prepared is what bringing the triggers up to date found.
type prepared struct {
	// schema is the schema_version the triggers were checked against.
	schema int64
	// problem says which captured tables are missing, or (create false)
	// have triggers out of date; their changes wait until that is healed.
	problem error
	// rebuilt lists the tables whose triggers were installed or rebuilt.
	rebuilt []string
	// snapshots counts, by table, the rows logged as INSERTs because the
	// table was created again.
	snapshots map[string]int64
}

// install creates the change log and brings the tables' triggers up to
// date with their columns, in one transaction; it changes nothing when
// they are. A listed table found without any of its triggers was dropped
// and created again: its rows, all written since (or copied in), are
// logged as INSERTs in the same transaction that puts the triggers back,
// so no write to it is lost. A missing table is a problem to report, or,
// when strict and the table was never captured, an error.
func install(ctx context.Context, conn *sql.Conn, tables []string, strict bool) (prepared, error) {
	// BEGIN IMMEDIATE (_txlock): the write lock first, no busy upgrade.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return prepared{}, installError(tables, err)
	}
	defer tx.Rollback()
	p, err := installIn(ctx, tx, tables, strict)
	if err != nil {
		return prepared{}, err
	}
	if err := tx.Commit(); err != nil {
		return prepared{}, installError(tables, err)
	}
	return p, nil
}

func installError(tables []string, err error) error {
	return fmt.Errorf("installing triggers on %s: %w", strings.Join(tables, ", "), err)
}

// installIn does install's work in tx, which the caller commits (install)
// or rolls back (Source.Check).
func installIn(ctx context.Context, tx *sql.Tx, tables []string, strict bool) (prepared, error) {
	p := prepared{snapshots: map[string]int64{}}
	fail := func(err error) (prepared, error) { return prepared{}, installError(tables, err) }
	for _, stmt := range []string{createChangeTable, createTableList, createMetaTable} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fail(err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO `+metaTable+` (source, id, epoch) VALUES (?, coalesce((SELECT id FROM `+metaTable+` LIMIT 1), ?), 0)`,
		sourceKey(tables), newUUID()); err != nil {
		return fail(err)
	}
	var missing []error
	for _, table := range tables {
		listed, err := isListed(ctx, tx, table)
		if err != nil {
			return fail(err)
		}
		cols, err := tableColumns(ctx, tx, table)
		if m := (*missingTableError)(nil); errors.As(err, &m) && (listed || !strict) {
			missing = append(missing, err)
			continue
		}
		if err != nil {
			return prepared{}, err
		}
		want := triggers(table, cols)
		have, err := installed(ctx, tx, table)
		if err != nil {
			return fail(err)
		}
		if listed && equalTriggers(want, have) {
			continue
		}
		if listed && len(have) == 0 {
			res, err := tx.ExecContext(ctx, snapshot(table, cols))
			if err != nil {
				return fail(err)
			}
			p.snapshots[table], _ = res.RowsAffected()
		}
		for name := range have {
			if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+ident(name)); err != nil {
				return fail(err)
			}
		}
		for name, stmt := range want {
			// A trigger of the same name may be left on a table renamed
			// away from this one.
			if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+ident(name)); err != nil {
				return fail(err)
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fail(err)
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO "+tableList+" VALUES (?)", table); err != nil {
			return fail(err)
		}
		p.rebuilt = append(p.rebuilt, table)
	}
	// Read inside the transaction, which holds the write lock: no other
	// schema change can come between this version and the commit.
	if err := tx.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&p.schema); err != nil {
		return fail(err)
	}
	p.problem = errors.Join(missing...)
	return p, nil
}

// isListed reports whether table is in the table list.
func isListed(ctx context.Context, q querier, table string) (bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT 1 FROM "+tableList+" WHERE tbl = ?", table)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	return rows.Next(), rows.Err()
}

// check verifies, without changing anything, that the change log and the
// tables exist and their triggers match their columns (create: false).
// When strict, the first problem is an error; otherwise problems are
// reported, as whoever manages the triggers may be about to update them.
func check(ctx context.Context, conn *sql.Conn, tables []string, strict bool) (prepared, error) {
	var p prepared
	// Read first: a schema change during the check shows as a new version
	// at the next poll, which checks again.
	if err := conn.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&p.schema); err != nil {
		return prepared{}, fmt.Errorf("checking triggers: %w", err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, ChangeTable).Scan(&n); err != nil {
		return prepared{}, fmt.Errorf("checking %s: %w", ChangeTable, err)
	}
	var problems []error
	if n == 0 {
		problems = append(problems, errNoChangeTable)
	}
	for _, table := range tables {
		if err := checkTable(ctx, conn, table); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 && strict {
		return prepared{}, problems[0]
	}
	p.problem = errors.Join(problems...)
	return p, nil
}

func checkTable(ctx context.Context, conn *sql.Conn, table string) error {
	cols, err := tableColumns(ctx, conn, table)
	if err != nil {
		return err
	}
	have, err := installed(ctx, conn, table)
	if err != nil {
		return err
	}
	if !equalTriggers(triggers(table, cols), have) {
		return notInstalledError("triggers on " + table + " are missing or out of date and create is false")
	}
	return nil
}

// installed returns wsgate's triggers on table, by name.
func installed(ctx context.Context, q querier, table string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND substr(name, 1, ?) = ?`,
		table, len(triggerPrefix), triggerPrefix)
	if err != nil {
		return nil, fmt.Errorf("reading triggers of %s: %w", table, err)
	}
	defer rows.Close()
	have := map[string]string{}
	for rows.Next() {
		var name, stmt string
		if err := rows.Scan(&name, &stmt); err != nil {
			return nil, fmt.Errorf("reading triggers of %s: %w", table, err)
		}
		have[name] = stmt
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading triggers of %s: %w", table, err)
	}
	return have, nil
}

func equalTriggers(want, have map[string]string) bool {
	if len(want) != len(have) {
		return false
	}
	for name, stmt := range want {
		if have[name] != stmt {
			return false
		}
	}
	return true
}

// ident quotes an SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// literal quotes an SQL string literal.
func literal(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// notInstalledError says, with create false, that what wsgate would
// install is not in place: for whoever manages the file to do.
type notInstalledError string

func (e notInstalledError) Error() string { return string(e) }

const errNoChangeTable = notInstalledError(ChangeTable + " does not exist and create is false")

// uninstall drops table's triggers, its rows in the change log and its
// entry in the table list, and the log and the list themselves when no
// wsgate trigger is left in the file.
func uninstall(ctx context.Context, conn *sql.Conn, table string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("uninstalling triggers on %s: %w", table, err)
	}
	defer tx.Rollback()
	have, err := installed(ctx, tx, table)
	if err != nil {
		return err
	}
	for name := range have {
		if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+ident(name)); err != nil {
			return fmt.Errorf("dropping trigger %s: %w", name, err)
		}
	}
	var logs, list, left int
	err = tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?),
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?),
		(SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, ?) = ?)`,
		ChangeTable, tableList, len(triggerPrefix), triggerPrefix).Scan(&logs, &list, &left)
	if err != nil {
		return fmt.Errorf("uninstalling triggers on %s: %w", table, err)
	}
	// Rows set aside go with the table's pending changes.
	for _, drop := range []struct {
		exists                     bool
		dropAll, deleteOfThisTable string
	}{
		{logs > 0, "DROP TABLE " + ChangeTable, "DELETE FROM " + ChangeTable + " WHERE tbl IN (?1, '" + rejectedPrefix + "' || ?1)"},
		{list > 0, "DROP TABLE " + tableList, "DELETE FROM " + tableList + " WHERE tbl = ?1"},
	} {
		switch {
		case !drop.exists:
		case left == 0:
			_, err = tx.ExecContext(ctx, drop.dropAll)
		default:
			_, err = tx.ExecContext(ctx, drop.deleteOfThisTable, table)
		}
		if err != nil {
			return fmt.Errorf("uninstalling triggers on %s: %w", table, err)
		}
	}
	if left == 0 {
		// Nothing is captured any more: the id and epoch go too (a new
		// install is a new source).
		if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+metaTable); err != nil {
			return fmt.Errorf("uninstalling triggers on %s: %w", table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("uninstalling triggers on %s: %w", table, err)
	}
	return nil
}
