package dynamodb

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// shardInfo is what the scheduler needs of a DescribeStream shard.
type shardInfo struct {
	id     string
	parent string // "" for none
	closed bool   // has an EndingSequenceNumber
}

func shardInfos(shards []types.Shard) []shardInfo {
	out := make([]shardInfo, 0, len(shards))
	for _, s := range shards {
		si := shardInfo{id: aws.ToString(s.ShardId), parent: aws.ToString(s.ParentShardId)}
		if r := s.SequenceNumberRange; r != nil && r.EndingSequenceNumber != nil {
			si.closed = true
		}
		out = append(out, si)
	}
	return out
}

// readyShards returns the shards of listing that may be read now, in
// listing order: not finished, not already running, and whose parent is
// either finished or no longer listed (trimmed after 24 hours, so nothing
// of it can still be read). Because a child waits until its parent is
// finished, not merely running, a parent and its child are never read at
// the same time, which keeps the order of every item's records across a
// shard split.
func readyShards(listing []shardInfo, finished, running map[string]bool) []shardInfo {
	listed := make(map[string]bool, len(listing))
	for _, s := range listing {
		listed[s.id] = true
	}
	var ready []shardInfo
	for _, s := range listing {
		if finished[s.id] || running[s.id] {
			continue
		}
		if s.parent != "" && listed[s.parent] && !finished[s.parent] {
			continue
		}
		ready = append(ready, s)
	}
	return ready
}
