// Package dynamodb is a streams.Source that reads a DynamoDB stream
// through the DynamoDB Streams API (aws-sdk-go-v2), the way Lambda's event
// source mapping does, and hands the records on unchanged except for the
// eventSourceARN the mapping adds.
//
// # Model
//
// Run resolves the stream (SourceConfig.StreamARN, or the table's
// LatestStreamArn from DescribeTable), loads the checkpoint file, and then
// repeats: list every shard with DescribeStream (following
// LastEvaluatedShardId), and start a reader for each shard that is not
// finished, not already being read, and whose parent is finished or no
// longer listed. It lists again every 10 seconds and whenever a shard
// finishes, so the children of a split start as soon as their parent is
// done. Parents are therefore always delivered before their children,
// which keeps every item's changes in order.
//
// A reader gets an iterator (AFTER_SEQUENCE_NUMBER of the checkpoint; for
// a shard with no checkpointed record, the configured StartingPosition if
// the shard was in the first listing of a new checkpoint and TRIM_HORIZON
// if it appeared later) and loops on GetRecords. Records are handed to the
// Handler in batches of at most streams.BatchOptions' size (GetRecords Limit
// is that size, at most 1000), gathered for up to the handler's batching
// window. An empty answer waits PollMillis (default 1000) before the next
// call; an answer with records is followed at once. When GetRecords returns
// no NextShardIterator the shard is closed and fully read: the reader marks
// it finished and stops.
//
// Errors: ExpiredIteratorException gets a new iterator after the last
// record read; TrimmedDataAccessException (the position fell out of the 24
// hour window) is logged and reading restarts at TRIM_HORIZON, the records
// in between being lost on the AWS side; ResourceNotFoundException on a
// shard treats it as finished; throttling (LimitExceededException,
// ProvisionedThroughputExceededException, ThrottlingException) and other
// failures back off exponentially with jitter (100 ms doubling to 30 s) on
// top of the SDK's own retries. A missing table or stream, a table without
// a stream and refused credentials end Run with an error marked
// streams.Permanent, which a streams.Supervisor does not restart.
//
// # Delivery and checkpoint
//
// When Handle returns nil, the last sequence number of the batch is written
// to the checkpoint file before the next batch is read; when it returns an
// error, the same batch is offered again after a backoff, blocking the
// shard as Lambda does. A Handle call under way when Run's context ends
// gets SourceConfig.DeliverGraceSeconds (streams.HandleWithGrace); a batch
// it accepts is checkpointed before Run returns, so a graceful restart
// does not deliver it again (in a cluster the save is refused with
// streams.ErrFenced if a newer run has loaded the checkpoint since). The
// checkpoint file (SourceConfig.Checkpoint, default
// "wsgate-checkpoint-<table>.json") is JSON
// ({"streamArn":…,"shards":{"<shardId>":{"start":…,"sequenceNumber":…,"finished":true}}}),
// rewritten atomically (temporary file, fsync, rename, fsync of the
// directory) on every change.
// A restart resumes after the last accepted record of every shard and
// skips finished shards: nothing accepted is delivered again and nothing
// is skipped. Positions for another stream ARN (the stream was disabled
// and re-enabled) are discarded, with a warning. Shards no longer listed
// are dropped from the file. The file is read before AWS is called: one
// that cannot be parsed (truncated, empty) or names no stream ends Run at
// once with a Permanent error naming the file and the way out (restore it,
// or move it aside to start again at StartingPosition); wsgate never
// replaces it with a fresh start on its own, since that would silently skip
// or repeat changes.
//
// In a cluster the checkpoint lives in a streams.CheckpointStore instead
// of the file (WithCheckpoints; the cluster's is JetStream KV): the same
// JSON, loaded at the start of Run, which takes it over, and saved on the
// same changes. A save that fails because another runner took the
// checkpoint over (streams.ErrFenced) ends Run with that error; other
// failed saves are logged and the position is kept in memory. When the
// store holds no checkpoint, the checkpoint file, if present, is imported.
// SourceID is the hash of "ddb:<stream ARN>".
//
// Records keep the eventID, eventName, eventVersion, awsRegion, userIdentity
// and the dynamodb block (Keys, NewImage, OldImage, SequenceNumber,
// SizeBytes, StreamViewType, ApproximateCreationDateTime in whole seconds)
// that GetRecords returned; eventSourceARN is the stream ARN.
//
// # Concurrency
//
// Each shard is read by its own goroutine, so Handle may be called
// concurrently for different shards but never twice at once for one shard,
// and a shard's records arrive in order. Run's goroutine owns discovery and
// waits for every reader before it returns. The checkpoint is shared by
// the readers under a mutex. Stats is safe from any goroutine; its
// OldestPending is the ApproximateCreationDateTime of the oldest record
// read and not yet accepted, over the shards being read.
package dynamodb
