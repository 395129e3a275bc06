package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/eventfilter"
)

// Publisher sends a message to every connection in a group. The gateway's
// hub implements it.
type Publisher interface {
	// Publish delivers data to the group's members. An error means the
	// message may not have reached them; the stream retries it.
	Publish(ctx context.Context, group string, data []byte) error
}

// CountingPublisher is a Publisher that also reports whom a message
// reached. GroupTarget publishes through PublishCounted when its Publisher
// has it (the server's does), and only then can tell GroupStats.Queued,
// Skipped and NoSubscribers; with a plain Publisher they stay 0.
type CountingPublisher interface {
	Publisher
	// PublishCounted is Publish that reports how many members had data
	// queued and how many were skipped (their outbound queue was full, or
	// they were closing). It never waits for a member's socket.
	PublishCounted(ctx context.Context, group string, data []byte) (queued, skipped int, err error)
}

// FlushingPublisher is a Publisher that hands messages on asynchronously
// (a cluster's NATS connection): Flush returns once everything published
// before it was taken over, or fails. GroupTarget flushes after each batch
// and fails the batch when the flush fails, so the source offers it again.
type FlushingPublisher interface {
	Publisher
	Flush(ctx context.Context) error
}

// PacingPublisher is a Publisher that can hold a burst back (the gateway's
// hubs, hub.Pacer): a stream catching up after a takeover or a restart
// publishes its backlog as fast as it reads it, faster than members'
// sockets drain, and a member whose outbound queue fills skips records.
// GroupTarget calls Pace each time it has published PaceEvery's records
// or bytes since the last call, so no member is sent more than that
// between two waits.
type PacingPublisher interface {
	Publisher
	// PaceEvery is how many records, and how many bytes of their JSON, may
	// be published before Pace is called again (half a member's outbound
	// queue). A value <= 0 turns pacing off.
	PaceEvery() (records, bytes int)
	// Pace returns once the group's members took in what was published to
	// them, within a bound (hub.Pacer); it never fails.
	Pace(ctx context.Context, group string)
}

// GroupTarget publishes each record that passes Filter and Criteria, as
// the JSON of one DynamoDB stream record (what json.Marshal of an
// events.DynamoDBEventRecord gives), to Group.
//
// What it guarantees is at most once, in order per shard, to the
// connections that are members of the group when the record is published,
// and nothing to anyone else:
//
//   - A record published while the group has no member (for instance right
//     after a restart, before clients subscribe again) reaches nobody; it
//     is counted in GroupStats.NoSubscribers and is gone. A connection that
//     joins later never gets it: there is no replay.
//   - A member whose outbound queue is full does not get the record
//     (GroupStats.Skipped); one that stays full is closed as a slow
//     consumer.
//   - Handle returns nil once every record was queued to the members of
//     the moment, so the source advances past records nobody received:
//     the source's at-least-once ends at the hub, not at the clients.
//   - A publish error fails the whole Handle call, so the source offers the
//     batch again and the records published before the error are published
//     again: members then see them twice. The in-memory hub never fails a
//     publish. In a cluster the publish goes to this node's members and
//     to NATS (for the other nodes' members), and the batch is accepted
//     only once NATS took it (FlushingPublisher).
//   - With a PacingPublisher, a burst (a backlog caught up) goes out in
//     steps of half a member's queue, each after the members took in the
//     step before (Pace): a member that keeps up with the steady rate
//     keeps up with the burst too; a member that does not drain within
//     hub.PaceWait (or hub.PaceBudget over several waits) is excused and
//     skips records as above.
//   - A call under way when the run is stopped (a shutdown, a reload, a
//     handover) goes on, paced, for the source's delivery grace
//     (SourceConfig.DeliverGraceSeconds, HandleWithGrace); when its
//     context ends (the grace is over, or the runner lost its lease) the
//     Pace or Flush under way ends with it, nothing more is published,
//     and the call fails: the source does not advance, and the next run
//     delivers the whole batch again, paced. So a stop waits for a batch
//     the grace at most, whatever the members and the other nodes do, and
//     the members see the records published before the cut twice and skip
//     none for it.
type GroupTarget struct {
	Group  string
	Filter *Filter
	// Criteria is the compiled FilterCriteria; the zero Matcher passes
	// everything.
	Criteria  eventfilter.Matcher
	Publisher Publisher

	// err is an invalid FilterCriteria given to NewGroupTarget.
	err error

	stats struct {
		published, filtered, queued, skipped, noSubscribers atomic.Int64
	}

	// Records and bytes published since the last Pace (PacingPublisher),
	// over every shard.
	paceMu                sync.Mutex
	unpaced, unpacedBytes int
}

// GroupStats counts what a GroupTarget did.
type GroupStats struct {
	// Published counts records handed to the group (that passed the
	// filter), whoever received them.
	Published int64
	// Filtered counts records the filters (Filter, FilterCriteria)
	// dropped.
	Filtered int64
	// Queued counts copies queued to members, summed over the records: a
	// record published to a group of three adds 3.
	Queued int64
	// Skipped counts copies not queued to a member (full outbound queue,
	// or closing), summed over the records.
	Skipped int64
	// NoSubscribers counts records published while the group had no
	// member: they reached nobody and are gone.
	NoSubscribers int64
}

var _ Handler = (*GroupTarget)(nil)

// NewGroupTarget returns the target of cfg (validated by cfg.Validate),
// which must have Group set. A FilterCriteria that does not compile makes
// every Handle fail with a Permanent error.
func NewGroupTarget(cfg TargetConfig, p Publisher) *GroupTarget {
	f := newRecordFilter(cfg)
	return &GroupTarget{Group: cfg.Group, Filter: f.simple, Criteria: f.criteria, Publisher: p, err: f.err}
}

// Stats reports what the target did so far; safe for concurrent use.
func (t *GroupTarget) Stats() GroupStats {
	return GroupStats{
		Published:     t.stats.published.Load(),
		Filtered:      t.stats.filtered.Load(),
		Queued:        t.stats.queued.Load(),
		Skipped:       t.stats.skipped.Load(),
		NoSubscribers: t.stats.noSubscribers.Load(),
	}
}

// Handle publishes recs in order and stops at the first error.
func (t *GroupTarget) Handle(ctx context.Context, shard string, recs []Record) error {
	if t.err != nil {
		return Permanent(fmt.Errorf("filterCriteria: %w", t.err))
	}
	for i := range recs {
		if !t.Filter.Match(&recs[i]) {
			t.stats.filtered.Add(1)
			continue
		}
		data, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("encoding record %s: %w", recs[i].EventID, err)
		}
		if !t.Criteria.MatchJSON(data) {
			t.stats.filtered.Add(1)
			continue
		}
		if pp, ok := t.Publisher.(PacingPublisher); ok && t.due(pp, len(data)) {
			// Bounded by the publisher (hub.PaceWait, the cluster's
			// requests) and by ctx: a stop's grace that ends, or a
			// lease lost, cuts the wait.
			pp.Pace(ctx, t.Group)
		}
		if ctx.Err() != nil {
			// The run was stopped and its grace is over (or it lost its
			// lease): the rest is not published, unpaced or otherwise.
			// The batch fails, so the next run delivers it again, from
			// its first record (HandleWithGrace): the members see the
			// records published so far twice, and skip none.
			return fmt.Errorf("publishing to group %s: stopped before record %d of %d: %w", t.Group, i+1, len(recs), context.Cause(ctx))
		}
		cp, counted := t.Publisher.(CountingPublisher)
		var queued, skipped int
		if counted {
			queued, skipped, err = cp.PublishCounted(ctx, t.Group, data)
		} else {
			err = t.Publisher.Publish(ctx, t.Group, data)
		}
		if err != nil {
			return fmt.Errorf("publishing to group %s: %w", t.Group, err)
		}
		t.stats.published.Add(1)
		t.stats.queued.Add(int64(queued))
		t.stats.skipped.Add(int64(skipped))
		if counted && queued+skipped == 0 {
			t.stats.noSubscribers.Add(1)
		}
	}
	if fp, ok := t.Publisher.(FlushingPublisher); ok {
		// Bounded by the publisher (requestTimeoutMillis) and by ctx, as
		// the loop: a flush that a stop's grace or a lost lease cuts
		// fails the batch, which the next run delivers again.
		if err := fp.Flush(ctx); err != nil {
			return fmt.Errorf("publishing to group %s: %w", t.Group, err)
		}
	}
	return nil
}

// due counts a record of n bytes about to be published and reports
// whether Pace is due before it: it would take the records or bytes
// published since the last Pace past PaceEvery's (it then starts the
// count again, with itself). A record larger than the bytes goes alone.
func (t *GroupTarget) due(pp PacingPublisher, n int) bool {
	recs, bytes := pp.PaceEvery()
	if recs <= 0 || bytes <= 0 {
		return false
	}
	t.paceMu.Lock()
	defer t.paceMu.Unlock()
	if t.unpaced > 0 && (t.unpaced >= recs || t.unpacedBytes+n > bytes) {
		t.unpaced, t.unpacedBytes = 1, n
		return true
	}
	t.unpaced++
	t.unpacedBytes += n
	return false
}
