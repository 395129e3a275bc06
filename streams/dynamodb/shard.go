package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/wsgate/wsgate/streams"
)

// shardReader reads one shard. It lives in one goroutine, so the handler
// sees the shard's records in order and one batch at a time.
type shardReader struct {
	*Source
	arn  string
	id   string
	h    streams.Handler
	ck   *checkpoint
	size int
	wait time.Duration // batching window

	fromTrimHorizon bool // set after TrimmedDataAccessException
	pending         []streams.Record
	pendingSince    time.Time
	lastSeq         string // last sequence number read, pending or not
	failures        int
}

// readShard reads shard sh until it is closed and fully delivered (then it
// marks it finished) or ctx ends. It returns only fatal errors.
func (s *Source) readShard(ctx context.Context, arn string, sh shardInfo, h streams.Handler, ck *checkpoint) error {
	size, window := streams.BatchOptions(h)
	r := &shardReader{Source: s, arn: arn, id: sh.id, h: h, ck: ck, size: size, wait: window}
	logger := s.logger.With("shard", sh.id)
	logger.Debug("reading shard", "parent", sh.parent)
	defer s.setPending(sh.id, time.Time{})
	var it *string
	for ctx.Err() == nil {
		if it == nil {
			var err error
			if it, err = r.iterator(ctx); err != nil {
				if gone := r.handleError(ctx, err, logger); gone {
					return r.finish(logger)
				}
				continue
			}
		}
		out, err := s.ds.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(int32(min(r.size, maxGetRecords)))})
		if err != nil {
			var expired *types.ExpiredIteratorException
			if errors.As(err, &expired) {
				it = nil // re-acquire from the checkpoint
				continue
			}
			// A failed call may still have used the iterator up; start
			// again from what was read.
			if gone := r.handleError(ctx, err, logger); gone {
				return r.finish(logger)
			}
			it = nil
			continue
		}
		r.failures = 0
		for _, rec := range out.Records {
			conv, err := convertRecord(rec, arn)
			if err != nil {
				// The SDK decoded it, so this is a type DynamoDB added
				// after this code was written; blocking the shard forever
				// would help nobody.
				logger.Error("skipping record that cannot be converted", "err", err)
				continue
			}
			if len(r.pending) == 0 {
				r.pendingSince = time.Now()
			}
			r.pending = append(r.pending, conv)
		}
		r.notePending()
		if n := len(out.Records); n > 0 {
			r.lastSeq = aws.ToString(out.Records[n-1].Dynamodb.SequenceNumber)
		}
		closed := out.NextShardIterator == nil
		if closed || r.due() {
			if err := r.flush(ctx, logger); err != nil {
				if errors.Is(err, streams.ErrFenced) {
					return err
				}
				return nil // ctx ended
			}
		}
		if closed {
			return r.finish(logger)
		}
		it = out.NextShardIterator
		if len(out.Records) == 0 {
			pause := s.poll
			if len(r.pending) > 0 {
				pause = min(pause, max(r.wait-time.Since(r.pendingSince), 0))
			}
			if streams.Sleep(ctx, pause) != nil {
				return nil
			}
		}
	}
	return nil
}

// due reports whether the pending records should go to the handler now.
func (r *shardReader) due() bool {
	return len(r.pending) > 0 && (len(r.pending) >= r.size || time.Since(r.pendingSince) >= r.wait)
}

// iterator gets a shard iterator for the checkpointed position.
func (r *shardReader) iterator(ctx context.Context) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(r.arn), ShardId: aws.String(r.id)}
	st, _ := r.ck.shard(r.id)
	seq := st.SequenceNumber
	if r.lastSeq != "" {
		// Records read but not yet delivered are still pending.
		seq = r.lastSeq
	}
	switch {
	case r.fromTrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case seq != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.SequenceNumber = aws.String(seq)
	case st.Start == "LATEST":
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	default:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	}
	out, err := r.ds.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("getting %s iterator: %w", in.ShardIteratorType, err)
	}
	r.fromTrimHorizon = false
	return out.ShardIterator, nil
}

// handleError deals with a failed call: it waits with backoff and reports
// whether the shard is gone.
func (r *shardReader) handleError(ctx context.Context, err error, logger *slog.Logger) (gone bool) {
	if ctx.Err() != nil {
		return false
	}
	var trimmed *types.TrimmedDataAccessException
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &trimmed):
		// The position is older than the 24 hours DynamoDB keeps, or was
		// trimmed while held: what lay between is lost.
		logger.Warn("records were trimmed before they were read; restarting at TRIM_HORIZON", "err", err, "after", r.lastSeq)
		r.setErr(err)
		r.fromTrimHorizon = true
		r.lastSeq = ""
		return false
	case errors.As(err, &notFound):
		logger.Warn("shard no longer exists; treating it as finished", "err", err)
		r.setErr(err)
		return true
	}
	r.failures++
	d := backoff.Jittered(r.failures)
	if isThrottle(err) {
		logger.Warn("throttled, backing off", "err", err, "backoff", d)
	} else {
		r.setErr(err)
		logger.Warn("reading shard failed, retrying", "err", err, "backoff", d)
	}
	_ = streams.Sleep(ctx, d)
	return false
}

// flush hands the pending records to the handler until it accepts them,
// then checkpoints the last one. It fails only when ctx ends or another
// runner took the checkpoint over (streams.ErrFenced). A batch whose call
// was under way when ctx ended and that the handler accepted within the
// grace is still checkpointed (the save outlives ctx, see checkpoint).
func (r *shardReader) flush(ctx context.Context, logger *slog.Logger) error {
	for len(r.pending) > 0 {
		n := min(len(r.pending), r.size)
		batch := r.pending[:n]
		for failures := 1; ; failures++ {
			// A call under way when ctx ends gets the grace: a batch
			// accepted meanwhile is checkpointed before Run returns.
			err := streams.HandleWithGrace(ctx, r.grace, r.h, r.id, batch)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.setErr(fmt.Errorf("handler: %w", err))
			d := backoff.Jittered(failures)
			logger.Warn("handler failed, retrying", "err", err, "records", n, "backoff", d)
			if err := streams.Sleep(ctx, d); err != nil {
				return err
			}
		}
		last := batch[n-1]
		r.delivered.Add(int64(n))
		if err := r.ck.advance(r.id, last.Change.SequenceNumber); err != nil {
			if errors.Is(err, streams.ErrFenced) {
				return err
			}
			r.setErr(err)
			logger.Error("saving checkpoint", "err", err)
		}
		r.pending = r.pending[n:]
		r.pendingSince = time.Now()
		r.notePending()
	}
	r.pending = nil
	return nil
}

// notePending tells Stats the creation time of the oldest record read and
// not yet accepted (records arrive in order, so the first).
func (r *shardReader) notePending() {
	var oldest time.Time
	if len(r.pending) > 0 {
		oldest = r.pending[0].Change.ApproximateCreationDateTime.Time
		if oldest.IsZero() {
			oldest = r.pendingSince
		}
	}
	r.setPending(r.id, oldest)
}

// finish marks the shard finished in the checkpoint. Its children may
// start even when the file could not be written: the position is kept in
// memory, and a restart re-reads the shard from its last sequence number.
func (r *shardReader) finish(logger *slog.Logger) error {
	if err := r.ck.finish(r.id); err != nil {
		if errors.Is(err, streams.ErrFenced) {
			return err
		}
		r.setErr(err)
		logger.Error("saving checkpoint", "err", err)
	}
	logger.Info("shard finished")
	return nil
}
