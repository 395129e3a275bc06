package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/wsgate/wsgate/streams"
)

// Defaults for SourceConfig fields this source reads.
const (
	DefaultSlot        = "wsgate"
	DefaultPublication = "wsgate_pub"
	defaultRegion      = "us-east-1"
)

// Standby status interval: how often a standby status update confirms
// progress (statusIntervalSeconds), well under the server's default
// wal_sender_timeout of 60 s. What was accepted since the last update is
// delivered again after a crash. In a cluster the server asks for
// ClusterStatusIntervalSeconds, so a failover replays about one second.
const (
	DefaultStatusIntervalSeconds = 10
	ClusterStatusIntervalSeconds = 1
)

// backoff spaces reconnects and handler retries.
var backoff = streams.Backoff{Min: 100 * time.Millisecond, Max: 30 * time.Second}

// slotBusyBackoff spaces attempts to start replication on a slot another
// session streams from (in a cluster: a former leader that has not let go
// yet). Short, because the slot is free as soon as that session ends.
var slotBusyBackoff = streams.Backoff{Min: 250 * time.Millisecond, Max: 2 * time.Second}

// sqlStateObjectInUse is the server's error when START_REPLICATION names a
// slot that is active for another walsender.
const sqlStateObjectInUse = "55006"

var _ streams.Source = (*Source)(nil)

// slotName is what a slot name may contain; publications are held to it
// too, so they need no quoting.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Source streams changes of PostgreSQL tables. Build it with New.
type Source struct {
	connConfig  *pgx.ConnConfig // for setup queries
	replConfig  *pgconn.Config  // for the replication stream
	tables      []tableName
	slot        string
	publication string
	create      bool
	status      time.Duration // standby status interval
	grace       time.Duration // for a call under way at a stop (SourceConfig.DeliverGraceSeconds)
	meta        recordMeta
	logger      *slog.Logger

	delivered atomic.Int64
	mu        sync.Mutex
	oldest    time.Time // commit time of the oldest record read and not yet accepted
	lastErr   string
}

// New validates cfg (DSN and Tables are required; Slot, Publication, Create
// and Region have defaults) and returns a Source. It does not connect; Run
// does.
func New(cfg streams.SourceConfig, logger *slog.Logger) (*Source, error) {
	if cfg.DSN == "" {
		return nil, errors.New("postgres source: dsn is required")
	}
	if len(cfg.Tables) == 0 {
		return nil, errors.New("postgres source: tables is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		slot:        cfg.Slot,
		publication: cfg.Publication,
		create:      cfg.Create == nil || *cfg.Create,
		status:      time.Duration(cfg.StatusIntervalSeconds) * time.Second,
		grace:       cfg.Grace(),
		meta:        recordMeta{region: cfg.Region},
	}
	switch {
	case cfg.DeliverGraceSeconds != nil && (*cfg.DeliverGraceSeconds < 0 || *cfg.DeliverGraceSeconds > streams.MaxDeliverGraceSeconds):
		return nil, fmt.Errorf("postgres source: deliverGraceSeconds must be between 0 and %d", streams.MaxDeliverGraceSeconds)
	case cfg.StatusIntervalSeconds < 0 || cfg.StatusIntervalSeconds > streams.MaxStatusIntervalSeconds:
		return nil, fmt.Errorf("postgres source: statusIntervalSeconds must be between 0 and %d", streams.MaxStatusIntervalSeconds)
	case s.status == 0:
		s.status = DefaultStatusIntervalSeconds * time.Second
	}
	if s.slot == "" {
		s.slot = DefaultSlot
	}
	if !slotName.MatchString(s.slot) {
		return nil, fmt.Errorf("postgres source: slot %q: use lower-case letters, digits and underscores", s.slot)
	}
	if s.publication == "" {
		s.publication = DefaultPublication
	}
	if !slotName.MatchString(s.publication) {
		// pgoutput's publication_names folds unquoted names to lower case.
		return nil, fmt.Errorf("postgres source: publication %q: use lower-case letters, digits and underscores", s.publication)
	}
	if s.meta.region == "" {
		s.meta.region = defaultRegion
	}
	s.meta.slot = s.slot
	for _, t := range cfg.Tables {
		tn, err := parseTable(t)
		if err != nil {
			return nil, fmt.Errorf("postgres source: %w", err)
		}
		s.tables = append(s.tables, tn)
	}
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres source: parsing dsn: %w", err)
	}
	// Setup queries need a normal session even when the DSN asks for a
	// replication one.
	delete(cc.RuntimeParams, "replication")
	s.connConfig = cc
	rc, err := pgconn.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres source: parsing dsn: %w", err)
	}
	rc.RuntimeParams["replication"] = "database"
	if rc.RuntimeParams["application_name"] == "" {
		rc.RuntimeParams["application_name"] = "wsgate"
	}
	s.replConfig = rc
	s.logger = logger.With("source", "postgres", "slot", s.slot)
	return s, nil
}

// Shard is the one shard id this source delivers on.
func (s *Source) Shard() string { return "postgres:" + s.slot }

// SourceID names the database and slot for a cluster's lease: the first 16
// hex digits of the SHA-256 of "pg:<system_identifier>:<dbname>:<slot>",
// from IDENTIFY_SYSTEM on a replication connection. Every node whose DSN
// reaches the same server, database and slot gets the same id, whatever
// host name or user it connects with.
func (s *Source) SourceID(ctx context.Context) (string, error) {
	conn, err := pgconn.ConnectConfig(ctx, s.replConfig)
	if err != nil {
		return "", fmt.Errorf("postgres source: opening replication connection: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return "", fmt.Errorf("postgres source: IDENTIFY_SYSTEM: %w", err)
	}
	return streams.HashSourceID("pg:" + sys.SystemID + ":" + sys.DBName + ":" + s.slot), nil
}

// Stats reports progress; safe from any goroutine.
func (s *Source) Stats() streams.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return streams.Stats{Delivered: s.delivered.Load(), OldestPending: s.oldest, LastError: s.lastErr}
}

func (s *Source) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// setPending records the commit time of the oldest record read and not
// yet accepted; zero when there is none.
func (s *Source) setPending(oldest time.Time) {
	s.mu.Lock()
	s.oldest = oldest
	s.mu.Unlock()
}

// Run streams changes to h until ctx is done (then it returns nil) or a
// configuration fault makes going on pointless: wal_level is not logical,
// a table, the publication or the slot is missing and may not be created,
// the slot is of the wrong kind, or the server refuses the login or a
// privilege. Run returns those marked streams.Permanent. Connection losses
// and other server errors are logged, recorded in Stats and retried with
// backoff.
//
// PostgreSQL lets one session at a time stream from a slot: while another
// one does (another wsgate, or in a cluster a former leader that has not
// stopped yet), START_REPLICATION fails with "replication slot ... is
// active for PID ...". Run then waits and tries again every 2 s at most,
// with that error in Stats.LastError, and starts from the slot's confirmed
// position once the other session has ended. This is the fence against a
// stale runner: it cannot stream while the slot is held.
func (s *Source) Run(ctx context.Context, h streams.Handler) error {
	defer s.setPending(time.Time{})
	busy := 0 // consecutive attempts that found the slot active
	for failures := 1; ; failures++ {
		started := time.Now()
		err := s.session(ctx, h)
		s.setPending(time.Time{}) // what was read is read again
		if ctx.Err() != nil {
			return nil
		}
		if isFatal(err) {
			return streams.Permanent(fmt.Errorf("postgres source: %w", err))
		}
		s.setErr(err)
		if time.Since(started) > time.Minute {
			failures = 1
		}
		var d time.Duration
		if slotBusy(err) {
			busy++
			d = slotBusyBackoff.Jittered(busy)
			level := slog.LevelDebug
			if busy == 1 {
				level = slog.LevelWarn
			}
			s.logger.Log(ctx, level, "replication slot is held by another session; waiting for it", "err", err, "backoff", d)
		} else {
			busy = 0
			d = backoff.Jittered(failures)
			s.logger.Warn("replication interrupted, reconnecting", "err", err, "backoff", d)
		}
		if streams.Sleep(ctx, d) != nil {
			return nil
		}
	}
}

// slotBusy reports the server's refusal to stream from a slot another
// session streams from.
func slotBusy(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == sqlStateObjectInUse
}

// stream is one replication connection and its position.
type stream struct {
	conn      *pgconn.PgConn
	confirmed pglogrepl.LSN // end of the last transaction the handler accepted
}

func (st *stream) sendStatus() error {
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), st.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: st.confirmed})
	if err != nil {
		return fmt.Errorf("sending standby status: %w", err)
	}
	return nil
}

// closeTimeout bounds the end of a replication session: the final status
// update's acknowledgement (finish) and the connection's close.
const closeTimeout = 5 * time.Second

// finish ends streaming at a stop: a last standby status update with the
// confirmed position, then CopyDone, and it waits for the server's
// CommandComplete. The server processes a connection's messages in order
// and leaves copy mode (releasing the slot) only after the update, so on
// return the slot's confirmed_flush_lsn is st.confirmed, as
// pg_replication_slots shows, and a session that starts next, on this
// node or another, starts past it. CopyData the server sent before it saw
// CopyDone is dropped (it was not confirmed: the next session sends it
// again).
func (st *stream) finish(ctx context.Context) error {
	if st.confirmed != 0 {
		if err := st.sendStatus(); err != nil {
			return err
		}
	}
	st.conn.Frontend().Send(&pgproto3.CopyDone{})
	if err := st.conn.Frontend().Flush(); err != nil {
		return fmt.Errorf("sending CopyDone: %w", err)
	}
	for {
		msg, err := st.conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the end of streaming: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CommandComplete:
			return nil
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("ending streaming: %w", pgconn.ErrorResponseToPgError(m))
		}
	}
}

// session prepares the server, then streams until an error or ctx ends.
func (s *Source) session(ctx context.Context, h streams.Handler) (err error) {
	pks, err := s.prepare(ctx)
	if err != nil {
		return err
	}
	conn, err := pgconn.ConnectConfig(ctx, s.replConfig)
	if err != nil {
		return fmt.Errorf("opening replication connection: %w", err)
	}
	st := &stream{conn: conn}
	streaming := false
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		switch {
		case streaming && ctx.Err() != nil && errors.Is(err, ctx.Err()):
			// A stop (not a server's error, after which the server
			// left copy mode itself): confirm what was accepted and wait until the
			// server has processed it (a graceful restart or
			// handover does not replay it).
			if err := st.finish(cctx); err != nil {
				s.logger.Warn("final standby status not acknowledged; the next run may deliver its batch again", "err", err, "confirmed", st.confirmed)
			}
		case streaming && st.confirmed != 0:
			// An error: confirm what was accepted so a restart
			// replays as little as possible; the slot's own position
			// is the fallback.
			_ = st.sendStatus()
		}
		_ = conn.Close(cctx)
	}()
	err = pglogrepl.StartReplication(ctx, conn, s.slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + s.publication + "'"},
	})
	if err != nil {
		return fmt.Errorf("starting replication: %w", err)
	}
	streaming = true
	s.logger.Info("replication started", "publication", s.publication)

	size, window := streams.BatchOptions(h)
	rels := map[uint32]*relation{}
	var tx *txn
	var pend batch
	flush := func() error {
		if err := s.deliver(ctx, st, h, pend.recs); err != nil {
			return err
		}
		st.confirmed = max(st.confirmed, pend.end)
		pend = batch{}
		s.setPending(time.Time{})
		return nil
	}
	nextStatus := time.Now().Add(s.status)
	for {
		if pend.due(size, window) {
			if err := flush(); err != nil {
				return err
			}
		}
		if !time.Now().Before(nextStatus) {
			if err := st.sendStatus(); err != nil {
				return err
			}
			nextStatus = time.Now().Add(s.status)
		}
		deadline := nextStatus
		if len(pend.recs) > 0 && pend.since.Add(window).Before(deadline) {
			deadline = pend.since.Add(window)
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receiving: %w", err)
		}
		var data []byte
		switch msg := raw.(type) {
		case *pgproto3.CopyData:
			data = msg.Data
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication: %w", pgconn.ErrorResponseToPgError(msg))
		default:
			return fmt.Errorf("replication: unexpected message %T", raw)
		}
		if len(data) == 0 {
			continue
		}
		switch data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
			if err != nil {
				return fmt.Errorf("parsing keepalive: %w", err)
			}
			// Between transactions everything the server sent before
			// this keepalive has been handled, so its WAL end may be
			// confirmed: it lets the slot move past WAL of tables
			// outside the publication.
			if tx == nil && len(pend.recs) == 0 && pkm.ServerWALEnd > st.confirmed {
				st.confirmed = pkm.ServerWALEnd
			}
			if pkm.ReplyRequested {
				nextStatus = time.Time{}
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(data[1:])
			if err != nil {
				return fmt.Errorf("parsing xlog data: %w", err)
			}
			msg, err := pglogrepl.Parse(xld.WALData)
			if err != nil {
				return fmt.Errorf("parsing logical message: %w", err)
			}
			switch msg := msg.(type) {
			case *pglogrepl.RelationMessage:
				rels[msg.RelationID] = newRelation(msg, pks[msg.Namespace+"."+msg.RelationName])
			case *pglogrepl.BeginMessage:
				tx = &txn{finalLSN: msg.FinalLSN, commitTime: msg.CommitTime}
			case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
				if tx == nil {
					return errors.New("replication: change outside a transaction")
				}
				if err := s.meta.change(tx, rels, msg); err != nil {
					return fmt.Errorf("decoding change: %w", err)
				}
			case *pglogrepl.CommitMessage:
				if tx == nil {
					return errors.New("replication: commit without begin")
				}
				if pend.add(tx, msg.TransactionEndLSN) {
					s.setPending(pend.oldest)
				}
				if len(pend.recs) == 0 {
					st.confirmed = max(st.confirmed, msg.TransactionEndLSN)
				}
				tx = nil
			}
		}
	}
}

// batch gathers the records of committed transactions until they are
// handed over together, as streams.BatchOptions asks: at once when the
// handler has no batching window, else when the window has passed since
// the first record or size records are there. A transaction is never
// split, so a batch may exceed size.
type batch struct {
	recs   []streams.Record
	end    pglogrepl.LSN // end of the last transaction in recs
	oldest time.Time     // commit time of the first transaction in recs
	since  time.Time     // when the first record arrived
}

// add appends tx's records and reports whether tx was the first with
// records.
func (b *batch) add(tx *txn, end pglogrepl.LSN) (first bool) {
	if len(tx.recs) > 0 {
		if len(b.recs) == 0 {
			b.since, b.oldest, first = time.Now(), tx.commitTime, true
		}
		b.recs = append(b.recs, tx.recs...)
	}
	if len(b.recs) > 0 {
		b.end = end
	}
	return first
}

func (b *batch) due(size int, window time.Duration) bool {
	return len(b.recs) > 0 && (len(b.recs) >= size || !time.Now().Before(b.since.Add(window)))
}

// deliver hands recs to h until h accepts them or ctx ends. While h runs
// or a retry waits, a goroutine keeps confirming the previous position so
// the server does not drop the connection.
func (s *Source) deliver(ctx context.Context, st *stream, h streams.Handler, recs []streams.Record) error {
	stop := make(chan struct{})
	hbErr := make(chan error, 1)
	go func() {
		t := time.NewTicker(s.status)
		defer t.Stop()
		for {
			select {
			case <-stop:
				hbErr <- nil
				return
			case <-t.C:
				if err := st.sendStatus(); err != nil {
					hbErr <- err
					return
				}
			}
		}
	}()
	err := s.retryHandle(ctx, h, recs)
	close(stop)
	if herr := <-hbErr; err == nil && herr != nil {
		err = herr
	}
	return err
}

func (s *Source) retryHandle(ctx context.Context, h streams.Handler, recs []streams.Record) error {
	for failures := 1; ; failures++ {
		// A call under way when ctx ends gets the grace: a batch accepted
		// meanwhile is confirmed to the server before the session ends.
		err := streams.HandleWithGrace(ctx, s.grace, h, s.Shard(), recs)
		if err == nil {
			s.delivered.Add(int64(len(recs)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.setErr(fmt.Errorf("handler: %w", err))
		d := backoff.Jittered(failures)
		s.logger.Warn("handler failed, retrying", "err", err, "records", len(recs), "first", recs[0].Change.SequenceNumber, "backoff", d)
		if err := streams.Sleep(ctx, d); err != nil {
			return err
		}
	}
}
