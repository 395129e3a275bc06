package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/integration"
)

// MaxPayloadBytes is the most a batch's payload may weigh: Lambda's 6 MB
// limit for synchronous invocations. A batch is cut before it would pass
// it (a single larger record is still sent alone).
const MaxPayloadBytes = 6 * 1024 * 1024

// MappingTarget invokes an integration with batches of records, as a Lambda
// event source mapping on a DynamoDB stream does:
//
//   - Handle drops the records that do not pass Filter and FilterCriteria
//     (counted in TargetStats.Filtered), as Lambda's filtering does
//     before batching, and cuts the rest into batches of at most
//     BatchSize records and MaxPayloadBytes, and invokes synchronously with
//     {"Records":[...]} (events.DynamoDBEvent), one batch after the other.
//   - A failed invocation (a *integration.FunctionError, a timeout, or any
//     other error: wsgate cannot tell a backend's infrastructure failure
//     from its handler's, so unlike Lambda every failure counts as a
//     function error) is retried after an exponential backoff, blocking
//     the shard, until it succeeds or MaximumRetryAttempts retries are
//     spent (-1: forever).
//   - With BisectBatchOnFunctionError, a failed batch of more than one
//     record is split in two halves which are delivered one after the
//     other; each half inherits the retry count of the batch it came from,
//     since splitting does not count as a retry.
//   - With ReportBatchItemFailures, the answer is read as
//     {"batchItemFailures":[{"itemIdentifier":"<SequenceNumber>"}]}. An
//     empty or null answer or list is full success; otherwise the records
//     before the lowest reported sequence number succeeded and the rest is
//     retried (this is also where a bisecting mapping splits). Malformed
//     JSON, an empty, null or unknown itemIdentifier fails the whole batch.
//   - Records older than MaximumRecordAgeInSeconds (by
//     ApproximateCreationDateTime) are given up before each attempt.
//
// A batch given up is logged at level ERROR with its shard and sequence
// numbers, and the shard moves on. There is no on-failure destination.
// Handle returns an error only when ctx is done or, for a call made
// through HandleWithGrace, once the run is stopping and an invocation
// failed (the source does not advance then): a stopping run's call
// finishes the invocation under way, and starts no retry.
type MappingTarget struct {
	cfg    TargetConfig
	filter recordFilter
	inv    integration.Integration
	log    *slog.Logger

	// Backoff is the delay between retries of a failed batch. Default
	// 100 ms doubling up to 30 s. Set it before the first Handle.
	Backoff Backoff

	now        func() time.Time
	maxPayload int
	stats      struct {
		invocations, failures, discarded, filtered atomic.Int64
	}
}

var (
	_ Handler = (*MappingTarget)(nil)
	_ Batcher = (*MappingTarget)(nil)
)

// TargetStats counts what a MappingTarget did.
type TargetStats struct {
	// Invocations counts calls of the integration, failed ones included.
	Invocations int64
	// Failures counts failed invocations, partial failures included.
	Failures int64
	// Discarded counts records given up (retries spent or too old).
	Discarded int64
	// Filtered counts records the filters (Filter, FilterCriteria)
	// dropped: the stream moved past them without an invocation.
	Filtered int64
}

// NewMappingTarget returns the target of cfg (validated by cfg.Validate)
// over inv, which it does not close. A FilterCriteria that does not
// compile makes every Handle fail with a Permanent error.
func NewMappingTarget(cfg TargetConfig, inv integration.Integration, logger *slog.Logger) *MappingTarget {
	return &MappingTarget{
		cfg:        cfg,
		filter:     newRecordFilter(cfg),
		inv:        inv,
		log:        logger,
		Backoff:    Backoff{Min: 100 * time.Millisecond, Max: 30 * time.Second},
		now:        time.Now,
		maxPayload: MaxPayloadBytes,
	}
}

// Batching implements Batcher from BatchSize and
// MaximumBatchingWindowInSeconds.
func (m *MappingTarget) Batching() (int, time.Duration) {
	return m.cfg.batchSize(), m.cfg.window()
}

// Stats reports what the target did so far; safe for concurrent use.
func (m *MappingTarget) Stats() TargetStats {
	return TargetStats{
		Invocations: m.stats.invocations.Load(),
		Failures:    m.stats.failures.Load(),
		Discarded:   m.stats.discarded.Load(),
		Filtered:    m.stats.filtered.Load(),
	}
}

// Handle delivers recs in batches, in order, and returns nil once each
// batch succeeded or was given up.
func (m *MappingTarget) Handle(ctx context.Context, shard string, recs []Record) error {
	if m.filter.err != nil {
		return Permanent(fmt.Errorf("filterCriteria: %w", m.filter.err))
	}
	all := recs
	recs = make([]Record, 0, len(all))
	enc := make([][]byte, 0, len(all))
	for i := range all {
		b, err := json.Marshal(&all[i])
		if err != nil {
			// Cannot happen for records a source built; give the
			// record up rather than block the shard on it forever.
			m.discard(shard, all[i:i+1], "EncodingFailed", err)
			continue
		}
		if !m.filter.pass(&all[i], b) {
			m.stats.filtered.Add(1)
			continue
		}
		recs, enc = append(recs, all[i]), append(enc, b)
	}
	size := m.cfg.batchSize()
	for len(recs) > 0 {
		n, weight := 0, 0
		for n < len(recs) && n < size {
			if n > 0 && weight+len(enc[n])+1 > m.maxPayload-len(`{"Records":[]}`) {
				break
			}
			weight += len(enc[n]) + 1
			n++
		}
		if err := m.deliver(ctx, shard, recs[:n], enc[:n], 0); err != nil {
			return err
		}
		recs, enc = recs[n:], enc[n:]
	}
	return nil
}

// deliver invokes with one batch until it succeeds or is given up.
// retries is how often the batch, or the batch it was bisected from, was
// retried already.
func (m *MappingTarget) deliver(ctx context.Context, shard string, recs []Record, enc [][]byte, retries int) error {
	for {
		recs, enc = m.dropExpired(shard, recs, enc)
		if len(recs) == 0 {
			return nil
		}
		failed, err := m.invoke(ctx, recs, enc)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("delivering batch: %w", ctx.Err())
		}
		m.stats.failures.Add(1)
		if stopped(ctx) {
			// The run is stopping: the call under way had its grace;
			// the next run retries the batch.
			return fmt.Errorf("delivering batch: stream stopping: %w", err)
		}
		m.log.Warn("stream batch failed",
			"shard", shard, "records", len(recs), "firstSequenceNumber", recs[0].Change.SequenceNumber,
			"retries", retries, "error", err)
		if failed > 0 {
			// The records before the lowest reported failure are
			// done: Lambda checkpoints there, and bisects there.
			recs, enc = recs[failed:], enc[failed:]
		} else if m.cfg.BisectBatchOnFunctionError && len(recs) > 1 {
			half := len(recs) / 2
			if err := m.deliver(ctx, shard, recs[:half], enc[:half], retries); err != nil {
				return err
			}
			return m.deliver(ctx, shard, recs[half:], enc[half:], retries)
		}
		retries++
		if limit := m.cfg.retryAttempts(); limit >= 0 && retries > limit {
			m.discard(shard, recs, "RetryAttemptsExhausted", err)
			return nil
		}
		if err := sleepUnlessStopped(ctx, m.Backoff.Delay(retries)); err != nil {
			return fmt.Errorf("delivering batch: %w", err)
		}
	}
}

// invoke calls the integration once. On failure, failed is the index of
// the first record to retry (0: the whole batch).
func (m *MappingTarget) invoke(ctx context.Context, recs []Record, enc [][]byte) (failed int, err error) {
	var p bytes.Buffer
	p.WriteString(`{"Records":[`)
	for i, b := range enc {
		if i > 0 {
			p.WriteByte(',')
		}
		p.Write(b)
	}
	p.WriteString(`]}`)
	m.stats.invocations.Add(1)
	out, err := m.inv.Invoke(ctx, &integration.Invocation{Payload: p.Bytes()})
	if err != nil {
		return 0, err
	}
	if !m.cfg.reportItemFailures() {
		return 0, nil
	}
	return itemFailures(out, recs)
}

// itemFailures reads a partial batch response. It returns the index of the
// record with the lowest reported sequence number and an error, or 0 and
// nil when the batch succeeded.
func itemFailures(out []byte, recs []Record) (int, error) {
	out = bytes.TrimSpace(out)
	if len(out) == 0 || string(out) == "null" {
		return 0, nil
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return 0, fmt.Errorf("malformed partial batch response: %w", err)
	}
	if len(resp.BatchItemFailures) == 0 {
		return 0, nil
	}
	lowest := len(recs)
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == nil || *f.ItemIdentifier == "" {
			return 0, errors.New("partial batch response: empty itemIdentifier")
		}
		i := indexOfSequence(recs, *f.ItemIdentifier)
		if i < 0 {
			return 0, fmt.Errorf("partial batch response: unknown itemIdentifier %q", *f.ItemIdentifier)
		}
		lowest = min(lowest, i)
	}
	return lowest, fmt.Errorf("%d of %d records reported failed", len(resp.BatchItemFailures), len(recs))
}

func indexOfSequence(recs []Record, seq string) int {
	for i := range recs {
		if recs[i].Change.SequenceNumber == seq {
			return i
		}
	}
	return -1
}

// dropExpired gives up the records older than MaximumRecordAgeInSeconds.
func (m *MappingTarget) dropExpired(shard string, recs []Record, enc [][]byte) ([]Record, [][]byte) {
	maxAge := m.cfg.maxAge()
	if maxAge == 0 {
		return recs, enc
	}
	now := m.now()
	old := func(r *Record) bool { return now.Sub(r.Change.ApproximateCreationDateTime.Time) > maxAge }
	var keepR []Record
	var keepE [][]byte
	for i := range recs {
		if old(&recs[i]) {
			if keepR == nil {
				keepR, keepE = append([]Record{}, recs[:i]...), append([][]byte{}, enc[:i]...)
			}
			m.discard(shard, recs[i:i+1], "RecordAgeExceeded", nil)
			continue
		}
		if keepR != nil {
			keepR, keepE = append(keepR, recs[i]), append(keepE, enc[i])
		}
	}
	if keepR == nil {
		return recs, enc
	}
	return keepR, keepE
}

// discard logs records given up.
func (m *MappingTarget) discard(shard string, recs []Record, condition string, err error) {
	m.stats.discarded.Add(int64(len(recs)))
	attrs := []any{
		"shard", shard, "condition", condition, "records", len(recs),
		"startSequenceNumber", recs[0].Change.SequenceNumber,
		"endSequenceNumber", recs[len(recs)-1].Change.SequenceNumber,
	}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	m.log.Error("stream batch given up", attrs...)
}
