package streams

import (
	"context"
	"encoding/json"
	"fmt"
)

// Publisher sends a message to every connection in a group. The gateway's
// hub implements it.
type Publisher interface {
	// Publish delivers data to the group's members. An error means the
	// message may not have reached them; the stream retries it.
	Publish(ctx context.Context, group string, data []byte) error
}

// GroupTarget publishes each record that passes Filter, as the JSON of one
// DynamoDB stream record (what json.Marshal of an
// events.DynamoDBEventRecord gives), to Group.
//
// A publish error fails the whole Handle call, so the source offers the
// batch again and records published before the error are published again:
// subscribers see each record at least once, in order per shard.
type GroupTarget struct {
	Group     string
	Filter    *Filter
	Publisher Publisher
}

var _ Handler = (*GroupTarget)(nil)

// NewGroupTarget returns the target of cfg, which must have Group set.
func NewGroupTarget(cfg TargetConfig, p Publisher) *GroupTarget {
	return &GroupTarget{Group: cfg.Group, Filter: cfg.Filter, Publisher: p}
}

// Handle publishes recs in order and stops at the first error.
func (t *GroupTarget) Handle(ctx context.Context, shard string, recs []Record) error {
	for i := range recs {
		if !t.Filter.Match(&recs[i]) {
			continue
		}
		data, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("encoding record %s: %w", recs[i].EventID, err)
		}
		if err := t.Publisher.Publish(ctx, t.Group, data); err != nil {
			return fmt.Errorf("publishing to group %s: %w", t.Group, err)
		}
	}
	return nil
}
