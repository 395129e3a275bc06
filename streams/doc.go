// Package streams turns database changes into DynamoDB Streams records and
// delivers them to targets: a group of WebSocket connections, or any
// integration with Lambda's event source mapping semantics.
//
// # Model
//
//   - A Source (the subpackages sqlite, postgres and dynamodb) reads changes
//     from one database and hands them, in order, to a Handler, one shard at a
//     time. A shard is an ordered sequence of records (SQLite and PostgreSQL
//     have one; DynamoDB Streams has many, parents before children).
//   - When the Handler returns nil for a batch, the Source records its
//     position past that batch durably (trims its change log, confirms the
//     replication LSN, or writes its checkpoint). When it returns an error,
//     the Source offers the same records again after a backoff. Delivery is
//     therefore at least once, in order per shard, and so in order per item
//     key.
//   - A target is a Handler. Each first drops the records that fail its
//     Filter or match none of its FilterCriteria patterns (package
//     eventfilter), counting them, and accepts them as delivered.
//     GroupTarget publishes each record as JSON to a group; MappingTarget batches records into a DynamoDBEvent for an
//     integration, retrying, bisecting and honouring partial batch
//     responses as Lambda does, and returns nil once a batch succeeded or
//     was given up.
//   - A Supervisor runs a Source with its target and keeps it running: an
//     error from Run that is not marked Permanent restarts the source after
//     a jittered exponential backoff (1 s doubling to 1 min, reset after a
//     minute of healthy running); a Permanent one (bad configuration, a
//     missing table, refused credentials, a corrupt checkpoint) stops it for
//     good, logged at ERROR, in state StateFailed. Its Status gives the
//     state, the last error and the lag: the age of the oldest change not
//     yet delivered (Stats.OldestPending, and what it saw offered to the
//     target but not accepted).
//
// # Batching
//
// Batches are formed by the Source, because only the Source can wait for
// more records without acknowledging the ones it already has: a handler
// that kept records in memory and returned nil would lose them on a crash.
// A handler that wants a batch shape implements Batcher (MappingTarget
// does, from BatchSize and MaximumBatchingWindowInSeconds); a Source asks
// BatchOptions(h) for the most records to pass to one Handle call and how
// long to wait for a batch to fill before handing over a partial one. A
// handler must still accept any number of records: MappingTarget cuts what
// it gets into chunks of BatchSize and delivers them one after the other.
//
// # Concurrency
//
// Source.Run is called by one goroutine at a time (a Supervisor calls it
// again after it returned an error), on a goroutine of the caller's
// choosing; it calls Handler.Handle from that goroutine (or, for sources
// with several shards, from at most one goroutine per shard at a time).
// Handle blocks the shard: no later record of the shard is offered until it
// returns. Handle must return promptly once ctx is done; it returns ctx's
// error then, and the source does not advance. Sources call it through
// HandleWithGrace, so a call under way when the run is told to stop (a
// reload, a shutdown, a graceful handover) has SourceConfig's grace
// (default 5 s) before its ctx is done: a batch accepted meanwhile is made
// durable before Run returns, and the next run does not offer it again. Stats may be called from any
// goroutine at any time. GroupTarget and MappingTarget are safe for
// concurrent use across shards; they keep no state between calls except
// their configuration.
//
// # Guarantees
//
// At least once and in order per shard, across restarts, up to the
// target: a record is removed from a source's durable position only after
// Handle returned nil for it. A handler that gives up a batch
// (MappingTarget after its retries or the record age limit) logs it and
// returns nil, so the shard moves on; that batch is lost, as with a Lambda
// event source mapping without an on-failure destination.
//
// GroupTarget returns nil once a record is queued to the group's members
// of the moment, so for WebSocket clients the guarantee is at most once, to
// the connections subscribed when the record is published: a record
// published to an empty group (GroupStats.NoSubscribers), for instance
// right after a restart before clients subscribe again, reaches nobody, and
// nothing replays it.
package streams
