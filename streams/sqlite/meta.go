package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/wsgate/wsgate/internal/uuid"
	"github.com/wsgate/wsgate/streams"
)

// ErrFenced is what Run returns (wrapped) when another runner started on
// the same file since this one did: the epoch in _wsgate_meta moved on,
// so this run's trim deleted nothing and it stopped. Nothing is lost: the
// rows it delivered and could not trim are delivered again by the other
// runner. In a cluster this is a runner whose lease another node took
// over; it stops before its lease renewal tells it.
var ErrFenced = fmt.Errorf("%w: its change log moved to a new epoch", streams.ErrFenced)

var _ streams.SourceIdentifier = (*Source)(nil)

// SourceID implements streams.SourceIdentifier: the first 16 hex digits
// of the SHA-256 of "sqlite:", the uuid Install stored in _wsgate_meta,
// ":" and the captured tables (sorted, as a JSON list). It is the same for
// every node that opens the same file with the same tables, and differs
// for another file at the same path on another host, and for another
// stream capturing other tables of the same file. With create false the
// table must have been made by whoever installs the triggers; it is an
// error when it is missing.
func (s *Source) SourceID(ctx context.Context) (string, error) {
	db, conn, err := s.open(ctx)
	if err != nil {
		return "", err
	}
	defer db.Close()
	defer conn.Close()
	var id string
	key := sourceKey(s.tables)
	err = conn.QueryRowContext(ctx, `SELECT id FROM `+metaTable+` WHERE source = ?`, key).Scan(&id)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) || isNoTable(err) {
			return "", fmt.Errorf("%s has no id for tables %s in %s (Install creates it; with create false, create it as wsgate would: %s; INSERT INTO %s VALUES ('%s', <a random uuid, the same in every row>, 0))",
				s.path, key, metaTable, createMetaTable, metaTable, key)
		}
		return "", fmt.Errorf("reading the id of %s: %w", s.path, err)
	}
	return streams.HashSourceID("sqlite:" + id + ":" + key), nil
}

// takeOver raises the source's epoch and returns it, so that runs of the
// same source started before this one trim nothing from now on. It
// returns 0 when the file has no row for the source in _wsgate_meta
// (create false, made by an older version): no fence then.
func (t *tail) takeOver(ctx context.Context) (int64, error) {
	var epoch int64
	err := t.conn.QueryRowContext(ctx, `UPDATE `+metaTable+` SET epoch = epoch + 1 WHERE source = ? RETURNING epoch`, sourceKey(t.tables)).Scan(&epoch)
	switch {
	case errors.Is(err, sql.ErrNoRows) || isNoTable(err):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("raising the epoch of %s: %w", t.path, err)
	}
	return epoch, nil
}

// fenced reports, after a trim that deleted nothing, whether the epoch
// moved past this run's.
func (t *tail) fenced(ctx context.Context) error {
	if t.epoch == 0 {
		return nil
	}
	var now int64
	if err := t.conn.QueryRowContext(ctx, `SELECT epoch FROM `+metaTable+` WHERE source = ?`, sourceKey(t.tables)).Scan(&now); err != nil {
		return nil // a read error shows again at the next read
	}
	if now != t.epoch {
		return fmt.Errorf("%w: %s is at epoch %d, this run started at %d; stopping without trimming", ErrFenced, t.path, now, t.epoch)
	}
	return nil
}

func isNoTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// newUUID is a random (version 4) uuid.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return uuid.V4(b)
}
