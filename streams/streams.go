package streams

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Record is one change in the DynamoDB Streams record shape, exactly what
// aws-lambda-go's events.DynamoDBEventRecord decodes and what a Lambda
// function on AWS receives.
type Record = events.DynamoDBEventRecord

// Handler receives the records of one shard, in order. Handle is called by
// at most one goroutine per shard at a time; different shards may be handled
// concurrently. Returning nil lets the source advance past recs; an error
// makes the source offer the same records again.
type Handler interface {
	Handle(ctx context.Context, shard string, recs []Record) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, shard string, recs []Record) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, shard string, recs []Record) error {
	return f(ctx, shard, recs)
}

// Source reads changes from one database.
type Source interface {
	// Run delivers changes to h from the last durable position until ctx is
	// done or a fatal error occurs (bad configuration, missing table, lost
	// permission); transient failures are retried with backoff inside Run
	// and logged. Run returns nil when ctx is cancelled. Errors a restart
	// cannot heal are wrapped with Permanent; a Supervisor calls Run again
	// after any other error, so Run must be callable again once it
	// returned.
	Run(ctx context.Context, h Handler) error

	// Stats reports what the source has done so far; safe to call from any
	// goroutine while Run runs.
	Stats() Stats
}

// SourceIdentifier is a Source that can name the physical source it reads
// (the database file, the PostgreSQL slot, the DynamoDB stream), so that in
// a cluster every node with that source in its config campaigns for one
// lease and exactly one runs it, while two hosts each with their own
// app.db at the same path get a runner each. SourceID is the first 16 hex
// digits of the SHA-256 of a string naming the source; it may read the
// source (and fail while the source cannot be reached), so it takes a
// context. sqlite implements it from a uuid kept in the database.
type SourceIdentifier interface {
	SourceID(ctx context.Context) (string, error)
}

// SourceID is src's SourceID when it is a SourceIdentifier, else the
// stream's name standing in for the source: the first 16 hex digits of
// the SHA-256 of "name:" and name. Nodes whose configs give a stream the
// same name then share one lease, whatever it reads.
func SourceID(ctx context.Context, src Source, name string) (string, error) {
	if si, ok := src.(SourceIdentifier); ok {
		return si.SourceID(ctx)
	}
	return HashSourceID("name:" + name), nil
}

// Stats describes a source's progress.
type Stats struct {
	// Delivered counts records the handler accepted.
	Delivered int64
	// OldestPending is the creation time (ApproximateCreationDateTime) of
	// the oldest change the source has read but the handler has not yet
	// accepted: gathered for a batch, offered, or waiting to be offered
	// again after a handler error. Zero when nothing is pending. The
	// Supervisor reports the stream's lag from it (and from what it saw
	// offered but not accepted), so a lag grows while a handler keeps
	// failing instead of showing the age of the last success. Every
	// source fills it; its package doc says which time it is.
	OldestPending time.Time
	// LastError is the most recent transient error, "" when none.
	LastError string
}

// SourceConfig is the `source` block of a stream in the config file. Field
// names are the user interface (docs/configuration.md).
type SourceConfig struct {
	// Type is "sqlite", "postgres" or "dynamodb". Required.
	Type string `json:"type"`

	// Path is the SQLite database file (sqlite). Required for sqlite.
	Path string `json:"path,omitempty"`
	// DSN is the PostgreSQL connection string (postgres). Required for
	// postgres.
	DSN string `json:"dsn,omitempty"`
	// Tables to capture: "orders" (sqlite), "public.orders" (postgres).
	// Required for sqlite and postgres.
	Tables []string `json:"tables,omitempty"`
	// Table is the DynamoDB table whose stream is read (dynamodb), or
	// StreamARN names the stream directly.
	Table     string `json:"table,omitempty"`
	StreamARN string `json:"streamArn,omitempty"`
	// Endpoint overrides the DynamoDB endpoint (moto_server, LocalStack,
	// DynamoDB Local). Default: real AWS.
	Endpoint string `json:"endpoint,omitempty"`
	// Region of the table. Default: the gateway's region.
	Region string `json:"region,omitempty"`
	// Profile is the shared-config profile for dynamodb credentials.
	Profile string `json:"profile,omitempty"`

	// Slot and Publication name PostgreSQL's replication slot and
	// publication. Default "wsgate" and "wsgate_pub".
	Slot        string `json:"slot,omitempty"`
	Publication string `json:"publication,omitempty"`
	// StatusIntervalSeconds is how often a postgres source confirms its
	// position to the server (standby status update); what was delivered
	// since the last one is delivered again after a crash. Default 10, or
	// 1 in a cluster; range 0..30, 0 meaning the default.
	StatusIntervalSeconds int `json:"statusIntervalSeconds,omitempty"`
	// Create allows wsgate to create the publication and slot (postgres) or
	// install triggers (sqlite) when they are missing. Default true.
	Create *bool `json:"create,omitempty"`

	// StartingPosition is where a stream with no checkpoint starts:
	// "LATEST" (default) or "TRIM_HORIZON" (dynamodb).
	StartingPosition string `json:"startingPosition,omitempty"`
	// Checkpoint is the file that keeps a dynamodb stream's position across
	// restarts. Default: "wsgate-checkpoint-<table>.json" in the working
	// directory. sqlite and postgres keep their position in the database.
	Checkpoint string `json:"checkpoint,omitempty"`
	// PollMillis is how often an idle source polls: sqlite default 20,
	// dynamodb default 1000.
	PollMillis int `json:"pollMillis,omitempty"`
	// DeliverGraceSeconds is how long a call to the target under way when
	// the stream is stopped (a reload that restarts it, a shutdown, a
	// graceful handover in a cluster) may still take: a batch the target
	// accepts meanwhile is made durable (trimmed, confirmed,
	// checkpointed) and not delivered again by the next run; a call still
	// running then is cut and its batch delivered again. Default 5, range
	// 0..60, 0 cutting the call at once. A run that lost its cluster
	// lease gets no grace, and a loss during a grace ends it (WithLease).
	DeliverGraceSeconds *int `json:"deliverGraceSeconds,omitempty"`
}

// Permanent marks err as one that retrying cannot heal (bad configuration,
// a table that does not exist and may not be created, lost permission,
// corrupt state that needs a person). A Source returns such errors from Run
// wrapped with Permanent; every other error Run returns is treated by the
// supervisor as transient and the source is restarted with backoff.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or any error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
