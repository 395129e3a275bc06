package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ChangeTable is the change-log table the triggers write into.
const ChangeTable = "_wsgate_changes"

// triggerPrefix starts the name of every trigger wsgate installs.
const triggerPrefix = "_wsgate_"

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
		return nil, fmt.Errorf("table %s does not exist", table)
	}
	return cols, nil
}

// querier is what both *sql.Conn and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// triggers returns the CREATE TRIGGER statements capturing table, by
// trigger name. The key is the declared primary key, or rowid when there is
// none. An UPDATE that changes the key is logged as a REMOVE of the old
// item and an INSERT of the new one, as DynamoDB cannot change a key; an
// UPDATE that changes no column is not logged, as DynamoDB logs no record
// for a write that changes nothing.
func triggers(table string, cols []column) map[string]string {
	var keys []string
	pks := slices.Clone(cols)
	slices.SortFunc(pks, func(a, b column) int { return a.pk - b.pk })
	for _, c := range pks {
		if c.pk > 0 {
			keys = append(keys, c.name)
		}
	}
	rowid := len(keys) == 0
	keyObj := func(row string) string {
		if rowid {
			return fmt.Sprintf("json_object('rowid', json_array('integer', %s.rowid))", row)
		}
		return object(row, keys)
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	var sameKey, changed []string
	if rowid {
		sameKey = []string{"NEW.rowid IS OLD.rowid"}
	}
	for _, k := range keys {
		sameKey = append(sameKey, fmt.Sprintf("NEW.%s IS OLD.%s", ident(k), ident(k)))
	}
	for _, c := range names {
		changed = append(changed, fmt.Sprintf("NEW.%s IS NOT OLD.%s", ident(c), ident(c)))
	}
	log := func(op, keys, newObj, oldObj string) string {
		return fmt.Sprintf("INSERT INTO %s(tbl, op, keys_json, new_json, old_json) VALUES (%s, '%s', %s, %s, %s);",
			ChangeTable, literal(table), op, keys, newObj, oldObj)
	}
	name := func(suffix string) string { return triggerPrefix + table + "_" + suffix }
	create := func(suffix, event, when, body string) string {
		if when != "" {
			when = " WHEN " + when
		}
		return fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s%s BEGIN %s END",
			ident(name(suffix)), event, ident(table), when, body)
	}
	newObj, oldObj := object("NEW", names), object("OLD", names)
	same := strings.Join(sameKey, " AND ")
	return map[string]string{
		name("insert"): create("insert", "INSERT", "",
			log("INSERT", keyObj("NEW"), newObj, "NULL")),
		name("update"): create("update", "UPDATE", same+" AND ("+strings.Join(changed, " OR ")+")",
			log("MODIFY", keyObj("NEW"), newObj, oldObj)),
		name("rekey"): create("rekey", "UPDATE", "NOT ("+same+")",
			log("REMOVE", keyObj("OLD"), "NULL", oldObj)+" "+log("INSERT", keyObj("NEW"), newObj, "NULL")),
		name("delete"): create("delete", "DELETE", "",
			log("REMOVE", keyObj("OLD"), "NULL", oldObj)),
	}
}

// maxObjectColumns keeps json_object under SQLite's default limit of 127
// function arguments; wider rows are merged with json_patch.
const maxObjectColumns = 60

// object is the SQL for a JSON object of row's columns, each as
// [typeof, value] with BLOBs in hex, so the type survives (JSON cannot hold
// a BLOB, and INTEGER and REAL would be indistinguishable).
func object(row string, cols []string) string {
	var parts []string
	for chunk := range slices.Chunk(cols, maxObjectColumns) {
		args := make([]string, 0, 2*len(chunk))
		for _, c := range chunk {
			v := row + "." + ident(c)
			args = append(args, literal(c),
				fmt.Sprintf("json_array(typeof(%s), CASE typeof(%s) WHEN 'blob' THEN hex(%s) ELSE %s END)", v, v, v, v))
		}
		parts = append(parts, "json_object("+strings.Join(args, ", ")+")")
	}
	obj := parts[0]
	for _, p := range parts[1:] {
		obj = "json_patch(" + obj + ", " + p + ")"
	}
	return obj
}

// install creates the change log and brings table's triggers up to date
// with its columns, in one transaction; it changes nothing when they are.
// It reports whether it changed anything.
func install(ctx context.Context, conn *sql.Conn, table string) (bool, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("installing triggers on %s: %w", table, err)
	}
	defer tx.Rollback()
	changed, err := installIn(ctx, tx, table)
	if err != nil {
		return false, err
	}
	// Commit even when the triggers were in place: the change log may have
	// been created.
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("installing triggers on %s: %w", table, err)
	}
	return changed, nil
}

// installIn does install's work in tx, which the caller commits (install)
// or rolls back (Source.Check).
func installIn(ctx context.Context, tx *sql.Tx, table string) (bool, error) {
	if _, err := tx.ExecContext(ctx, createChangeTable); err != nil {
		return false, fmt.Errorf("creating %s: %w", ChangeTable, err)
	}
	cols, err := tableColumns(ctx, tx, table)
	if err != nil {
		return false, err
	}
	want := triggers(table, cols)
	have, err := installed(ctx, tx, table)
	if err != nil {
		return false, err
	}
	if equalTriggers(want, have) {
		return false, nil
	}
	for name := range have {
		if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+ident(name)); err != nil {
			return false, fmt.Errorf("dropping trigger %s: %w", name, err)
		}
	}
	for _, stmt := range want {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("creating trigger on %s: %w", table, err)
		}
	}
	return true, nil
}

// check verifies, without changing anything, that table exists and its
// triggers match its columns (create: false).
func check(ctx context.Context, conn *sql.Conn, table string) error {
	cols, err := tableColumns(ctx, conn, table)
	if err != nil {
		return err
	}
	have, err := installed(ctx, conn, table)
	if err != nil {
		return err
	}
	if !equalTriggers(triggers(table, cols), have) {
		return fmt.Errorf("triggers on %s are missing or out of date and create is false", table)
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

var errNoChangeTable = errors.New(ChangeTable + " does not exist and create is false")

// uninstall drops table's triggers and its rows in the change log, and the
// change log itself when no wsgate trigger is left in the file.
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
	var logs, left int
	err = tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?),
		(SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, ?) = ?)`,
		ChangeTable, len(triggerPrefix), triggerPrefix).Scan(&logs, &left)
	if err != nil {
		return fmt.Errorf("uninstalling triggers on %s: %w", table, err)
	}
	switch {
	case logs == 0:
	case left == 0:
		_, err = tx.ExecContext(ctx, "DROP TABLE "+ChangeTable)
	default:
		_, err = tx.ExecContext(ctx, "DELETE FROM "+ChangeTable+" WHERE tbl = ?", table)
	}
	if err != nil {
		return fmt.Errorf("uninstalling triggers on %s: %w", table, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("uninstalling triggers on %s: %w", table, err)
	}
	return nil
}
