package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wsgate/wsgate/streams"
)

// fatalf makes an error that retrying cannot fix; Run returns it.
func fatalf(format string, args ...any) error {
	return streams.Permanent(fmt.Errorf(format, args...))
}

// fatalSQLStates are server errors that a reconnect does not cure.
var fatalSQLStates = map[string]bool{
	"42501": true, // insufficient_privilege
	"42P01": true, // undefined_table
	"42704": true, // undefined_object (publication or slot)
	"28000": true, // invalid_authorization_specification
	"28P01": true, // invalid_password
	"3D000": true, // invalid_catalog_name (no such database)
	"55000": true, // object_not_in_prerequisite_state (wal_level)
}

// isFatal reports whether err should end Run.
func isFatal(err error) bool {
	if streams.IsPermanent(err) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && fatalSQLStates[pe.Code]
}

// tableName is a configured table split into schema and name.
type tableName struct{ schema, name string }

func (t tableName) String() string { return t.schema + "." + t.name }

func (t tableName) quoted() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// parseTable reads "schema.table" or "table" (schema public).
func parseTable(s string) (tableName, error) {
	schema, name, ok := strings.Cut(s, ".")
	if !ok {
		schema, name = "public", s
	}
	if schema == "" || name == "" || strings.Contains(name, ".") {
		return tableName{}, fmt.Errorf("table %q: want schema.table", s)
	}
	return tableName{schema, name}, nil
}

// prepare checks the server and makes sure the publication and slot exist.
// It returns the primary key columns of each configured table.
func (s *Source) prepare(ctx context.Context) (map[string][]string, error) {
	conn, err := pgx.ConnectConfig(ctx, s.connConfig)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.Background())

	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return nil, fmt.Errorf("reading wal_level: %w", err)
	}
	if walLevel != "logical" {
		return nil, fatalf("postgres wal_level is %q but logical replication needs \"logical\": "+
			"set wal_level = logical in postgresql.conf (or run ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL", walLevel)
	}

	keys := make(map[string][]string, len(s.tables))
	for _, t := range s.tables {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t.quoted()).Scan(&exists); err != nil {
			return nil, fmt.Errorf("looking up table %s: %w", t, err)
		}
		if !exists {
			return nil, fatalf("table %s does not exist", t)
		}
		rows, _ := conn.Query(ctx, `
			SELECT a.attname FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = $1::regclass AND i.indisprimary
			ORDER BY array_position(i.indkey, a.attnum)`, t.quoted())
		pk, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("reading primary key of %s: %w", t, err)
		}
		keys[t.String()] = pk
	}

	if err := s.ensurePublication(ctx, conn); err != nil {
		return nil, err
	}
	if err := s.ensureSlot(ctx, conn); err != nil {
		return nil, err
	}
	return keys, nil
}

// ensurePublication creates the publication, or adds the configured tables
// it lacks. The publication must exist before the slot is created, or
// pgoutput cannot find it when decoding.
func (s *Source) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", s.publication).Scan(&exists); err != nil {
		return fmt.Errorf("looking up publication: %w", err)
	}
	pub := pgx.Identifier{s.publication}.Sanitize()
	if !exists {
		if !s.create {
			return fatalf("publication %q does not exist and create is false: CREATE PUBLICATION %s FOR TABLE ...", s.publication, pub)
		}
		list := make([]string, len(s.tables))
		for i, t := range s.tables {
			list[i] = t.quoted()
		}
		if _, err := conn.Exec(ctx, "CREATE PUBLICATION "+pub+" FOR TABLE "+strings.Join(list, ", ")); err != nil {
			return fmt.Errorf("creating publication %s: %w", s.publication, err)
		}
		s.logger.Info("created publication", "publication", s.publication)
		return nil
	}
	rows, _ := conn.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", s.publication)
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading publication tables: %w", err)
	}
	for _, t := range s.tables {
		if slices.Contains(have, t.String()) {
			continue
		}
		if !s.create {
			return fatalf("publication %q lacks table %s and create is false: ALTER PUBLICATION %s ADD TABLE %s", s.publication, t, pub, t.quoted())
		}
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+pub+" ADD TABLE "+t.quoted()); err != nil {
			return fmt.Errorf("adding %s to publication %s: %w", t, s.publication, err)
		}
		s.logger.Info("added table to publication", "publication", s.publication, "table", t.String())
	}
	return nil
}

// ensureSlot creates the logical replication slot when it is missing.
func (s *Source) ensureSlot(ctx context.Context, conn *pgx.Conn) error {
	var plugin, slotType string
	err := conn.QueryRow(ctx, "SELECT coalesce(plugin, ''), slot_type FROM pg_replication_slots WHERE slot_name = $1", s.slot).Scan(&plugin, &slotType)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if !s.create {
			return fatalf("replication slot %q does not exist and create is false: SELECT pg_create_logical_replication_slot('%s', 'pgoutput')", s.slot, s.slot)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", s.slot); err != nil {
			return fmt.Errorf("creating replication slot %s: %w", s.slot, err)
		}
		s.logger.Info("created replication slot")
		return nil
	case err != nil:
		return fmt.Errorf("looking up replication slot: %w", err)
	case slotType != "logical" || plugin != "pgoutput":
		return fatalf("replication slot %q is a %s slot with plugin %q; wsgate needs a logical pgoutput slot", s.slot, slotType, plugin)
	}
	return nil
}
