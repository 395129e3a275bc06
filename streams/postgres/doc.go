// Package postgres is a streams.Source that reads PostgreSQL changes through
// logical replication (the pgoutput plugin, protocol version 1) and turns
// them into DynamoDB Streams records.
//
// # Model
//
// On start, Run checks `SHOW wal_level` (it must be "logical"), makes sure
// the publication (default "wsgate_pub") covers the configured tables and
// that the logical replication slot (default "wsgate", plugin pgoutput)
// exists, creating or extending them when SourceConfig.Create is nil or true.
// It then opens a replication connection (replication=database) and streams
// from the slot's confirmed position.
//
// Records go to the Handler in commit order on the single shard
// "postgres:{slot}", a transaction's records always in the same Handle
// call. Without a batching window (streams.BatchOptions) every transaction
// is handed over as soon as its commit arrives; with one, consecutive
// transactions are gathered until the window has passed or the batch size
// is reached (a transaction is never split, so a batch can exceed the
// size). A record's
// SequenceNumber is the transaction's commit LSN as a 20-digit decimal
// followed by the record's 10-digit index inside the transaction, so sequence
// numbers grow in delivery order; eventID is the same position in hex, so a
// redelivered record keeps its eventID. ApproximateCreationDateTime is the
// commit time in whole seconds; StreamViewType is NEW_AND_OLD_IMAGES.
//
// When Handle returns nil, the end LSN of the batch's last commit becomes
// the position
// confirmed to the server in standby status updates (every
// StatusIntervalSeconds, default 10 s and 1 s in a cluster, when the
// server asks, and when the session ends, on the replication session that
// still holds the slot); when it returns an error the same records
// are offered again after an exponential backoff. Only accepted positions are
// ever confirmed, so after a crash or restart the server replays from the
// last confirmed commit: delivery is at least once. A Handle call under
// way when Run's context ends gets SourceConfig.DeliverGraceSeconds
// (streams.HandleWithGrace); a batch it accepts is confirmed before the
// session closes, so a graceful restart does not replay it. At a stop the
// last status update is followed by CopyDone, and Run returns only after
// the server's CommandComplete (within 5 s): the server processes a
// connection's messages in order, so it has then taken the position (the
// slot's confirmed_flush_lsn in pg_replication_slots) and released the
// slot. Since only one session at a time streams from a slot, no newer
// run can have started meanwhile. What remains: PostgreSQL keeps that
// position in memory and writes it to disk only at a checkpoint (its
// documentation, Logical Decoding Concepts), and then only when the slot
// is marked dirty (its restart_lsn or catalog xmin moved) or, from
// PostgreSQL 17, at a shutdown checkpoint; after a PostgreSQL crash (and,
// before 17, possibly a clean restart) the slot can return to an earlier
// position and the server replays what was confirmed since: at least
// once still holds. A lost connection is
// re-established with backoff; configuration faults (wal_level, missing
// table, missing publication or slot with Create false, a slot of the wrong
// kind, refused login or privileges) end Run with an error marked
// streams.Permanent, which a streams.Supervisor does not restart. Stats'
// OldestPending is the commit time of the oldest record read and not yet
// accepted (gathered for a batch, or refused by the handler).
// The replication slot holds WAL on the server until it is confirmed: a
// stream that is removed for good should have its slot dropped
// (SELECT pg_drop_replication_slot('wsgate')).
//
// # Keys, images and REPLICA IDENTITY
//
// Keys are the table's primary key columns (the replica identity columns
// when the table has no primary key). NewImage is the new row of an INSERT
// or UPDATE. What PostgreSQL logs of the old row depends on the table's
// REPLICA IDENTITY:
//
//   - DEFAULT (the primary key): OldImage of an UPDATE or DELETE holds only
//     the key columns.
//   - FULL (ALTER TABLE t REPLICA IDENTITY FULL): OldImage is the whole old
//     row, as DynamoDB's NEW_AND_OLD_IMAGES gives. Use it when consumers need
//     the previous values; it makes PostgreSQL log whole old rows.
//
// An UPDATE that changes the primary key becomes a REMOVE of the old key
// followed by an INSERT of the new one, because a DynamoDB item cannot
// change its key.
//
// Unchanged TOAST values (large text, bytea or json that an UPDATE did not
// touch) are not sent by PostgreSQL. Under REPLICA IDENTITY FULL they are
// copied from the old row; otherwise the attribute is left out of NewImage.
//
// # Type mapping
//
// smallint, integer, bigint, oid, real, double precision and numeric become
// N (NaN and infinities, which N cannot carry, become S); boolean becomes
// BOOL; bytea becomes B; NULL becomes NULL. Every other type (text, varchar,
// uuid, dates and timestamps, json and jsonb, arrays, enums, ...) becomes S
// holding PostgreSQL's text output for the value. TRUNCATE produces no
// records.
//
// # Concurrency
//
// Run owns its connections and calls Handle from its own goroutine, one
// batch at a time; while Handle runs or a retry waits, a helper
// goroutine keeps sending status updates so the server does not time the
// connection out. Stats is safe from any goroutine. The slot admits one
// reader: a second Run on it (another process, or a cluster's former
// leader still streaming) is refused by the server with "replication slot
// ... is active for PID ..." and waits, retrying every 2 s at most with
// that error in Stats.LastError, until the slot is free. SourceID is the
// hash of "pg:<system_identifier>:<dbname>:<slot>" from IDENTIFY_SYSTEM.
package postgres
