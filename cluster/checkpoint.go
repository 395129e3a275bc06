package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/streams"
)

// checkpointBucket is the KV bucket of stream positions.
func (h *Hub) checkpointBucket() string { return "WSGATE_" + h.cfg.Name + "_CHECKPOINTS" }

// Checkpoints returns the checkpoint store of the source sourceID: key
// stream.<sourceID> in the KV bucket WSGATE_<cluster>_CHECKPOINTS, created
// when missing (file storage, history 1, no TTL, as many replicas as the
// node registry). Its signature is what dynamodb.WithCheckpoints takes; a
// source calls it once per run, so a bucket deleted meanwhile is created
// again by the next run.
//
// Each Load takes the checkpoint over: it writes a takeover revision, and
// every Save is an Update against the revision this store wrote last, so
// a Save by a store that loaded before (a runner that lost the stream's
// lease and has not noticed yet) fails with streams.ErrFenced.
func (h *Hub) Checkpoints(ctx context.Context, sourceID string) (streams.CheckpointStore, error) {
	js, err := jetstream.New(h.ctl)
	if err != nil {
		return nil, err
	}
	st, err := h.kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the node registry's replicas: %w", err)
	}
	replicas := 1
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		replicas = max(1, bs.StreamInfo().Config.Replicas)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: h.checkpointBucket(), History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the checkpoint store (JetStream KV %s): %w", h.checkpointBucket(), err)
	}
	return &kvCheckpoint{h: h, kv: kv, key: "stream." + sourceID}, nil
}

// checkpointValue is the JSON of a checkpoint key: the source's bytes and
// who wrote them.
type checkpointValue struct {
	Node       string          `json:"node"` // node name
	Inc        string          `json:"inc"`  // its incarnation
	At         int64           `json:"at"`   // unix ms of the write
	Takeover   bool            `json:"takeover,omitempty"`
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"`
}

// kvCheckpoint is one source's checkpoint in KV.
type kvCheckpoint struct {
	h   *Hub
	kv  jetstream.KeyValue
	key string

	mu  sync.Mutex
	rev uint64 // revision of this store's last write; 0 before Load
}

var _ streams.CheckpointStore = (*kvCheckpoint)(nil)

func (c *kvCheckpoint) String() string {
	return "in JetStream KV " + c.h.checkpointBucket() + " key " + c.key
}

func (c *kvCheckpoint) value(b []byte, takeover bool) []byte {
	v, _ := json.Marshal(checkpointValue{
		Node: c.h.cfg.Node.Name, Inc: c.h.incarnation(), At: time.Now().UnixMilli(),
		Takeover: takeover, Checkpoint: b,
	})
	return v
}

// takeoverAttempts bounds Load's compare-and-set loop against other
// runners loading at the same moment.
const takeoverAttempts = 10

// Load reads the checkpoint and takes it over: it writes it back (or an
// empty one when there is none) as a takeover revision, by
// compare-and-set, so that every store that loaded before fails its next
// Save.
func (c *kvCheckpoint) Load(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range takeoverAttempts {
		e, err := c.kv.Get(ctx, c.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			rev, err := c.kv.Create(ctx, c.key, c.value(nil, true))
			if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
				continue // another runner created it meanwhile: take it from them
			}
			if err != nil {
				return nil, fmt.Errorf("taking over checkpoint %s: %w", c, err)
			}
			c.rev = rev
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading checkpoint %s: %w", c, err)
		}
		var v checkpointValue
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return nil, streams.Permanent(fmt.Errorf("checkpoint %s is not a wsgate checkpoint (%v): delete the key (nats kv del %s %s) to start again at the stream's startingPosition, then restart wsgate",
				c, err, c.h.checkpointBucket(), c.key))
		}
		rev, err := c.kv.Update(ctx, c.key, c.value(v.Checkpoint, true), e.Revision())
		if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
			continue // written meanwhile: read the newer one
		}
		if err != nil {
			return nil, fmt.Errorf("taking over checkpoint %s: %w", c, err)
		}
		c.rev = rev
		if string(v.Checkpoint) == "null" {
			return nil, nil
		}
		return v.Checkpoint, nil
	}
	return nil, fmt.Errorf("taking over checkpoint %s: it changed %d times while being read; other runners are loading it", c, takeoverAttempts)
}

// Save writes b if this store still holds the checkpoint: an Update
// against the revision it wrote last. A revision written by another store
// since (its Load) fails it with streams.ErrFenced, and so do all later
// saves of this store.
func (c *kvCheckpoint) Save(ctx context.Context, b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rev == 0 {
		return errors.New("checkpoint saved before it was loaded")
	}
	rev, err := c.kv.Update(ctx, c.key, c.value(b, false), c.rev)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) || errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("checkpoint %s was written by another runner since this one loaded it (revision %d): %w", c, c.rev, streams.ErrFenced)
	case err != nil:
		return err
	}
	c.rev = rev
	return nil
}
