package streams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// ErrFenced is wrapped by errors of a runner that another runner of the
// same source has taken over from (in a cluster, after the stream's lease
// moved). Run returns such an error, not marked Permanent: the stale
// runner stops delivering at once. A Supervisor restarts it like any
// transient failure, and the restarted run takes the checkpoint back; a
// runner that really lost its lease is stopped by the lease, whose loss
// cancels its context within a renewal interval. Until then two runners
// can only deliver records twice, never skip one: each takes over from
// the position the other saved.
var ErrFenced = errors.New("another runner took this source over")

// CheckpointStore keeps the position of a source that has no position of
// its own in the database (DynamoDB Streams): a file on one node, a
// JetStream KV key in a cluster. The bytes are the source's; the store
// neither reads nor changes them.
type CheckpointStore interface {
	// Load returns the checkpoint last saved, nil when there is none. A
	// source calls it once at the start of Run, before any Save. A store
	// shared by several runners takes the checkpoint over here: from then
	// on, a Save by a runner that loaded it before fails with ErrFenced.
	Load(ctx context.Context) ([]byte, error)
	// Save replaces the checkpoint durably. An error wrapping ErrFenced
	// means another runner has loaded it since: the caller must stop.
	// Other errors are transient; the caller keeps its position in memory
	// and saves it again later.
	Save(ctx context.Context, b []byte) error
	// String says where the checkpoint lives, for messages: "file
	// /var/lib/wsgate/ckpt.json".
	String() string
}

// HashSourceID turns the text that names a physical source
// ("pg:<system_identifier>:<dbname>:<slot>", "ddb:<stream ARN>") into its
// source id: the first 16 hex digits of its SHA-256. Sources return it
// from their SourceID method; a cluster keys the source's lease (and its
// checkpoint) with it, so every node that reads the same database agrees
// on it whatever its config calls the stream.
func HashSourceID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:8])
}
