package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wsgate/wsgate/streams"
)

// saveTimeout bounds one checkpoint save.
const saveTimeout = 10 * time.Second

// checkpoint is the durable position of one stream: per shard the last
// sequence number the handler accepted, and which shards are finished.
// It is safe for concurrent use; every change is saved to its store before
// the method returns.
type checkpoint struct {
	store streams.CheckpointStore
	ctx   context.Context // for saves: Run's values, not its cancellation

	mu    sync.Mutex
	state checkpointFile
}

// checkpointFile is the JSON kept in the store.
type checkpointFile struct {
	// StreamARN is the stream the positions belong to. A re-enabled stream
	// has a new ARN, and positions of the old one are meaningless there.
	StreamARN string                `json:"streamArn"`
	Shards    map[string]shardState `json:"shards"`
}

type shardState struct {
	// Start is the iterator type used while no record has been accepted:
	// the configured StartingPosition for shards found when the stream was
	// first read, TRIM_HORIZON for shards that appeared later, so that
	// nothing written to a new shard is skipped.
	Start string `json:"start,omitempty"`
	// SequenceNumber is the last record the handler accepted.
	SequenceNumber string `json:"sequenceNumber,omitempty"`
	// Finished is set when the shard is closed and fully delivered.
	Finished bool `json:"finished,omitempty"`
}

// newCheckpoint parses what a store loaded (nil: no checkpoint yet). A
// checkpoint that cannot be parsed (truncated, empty, overwritten) or that
// names no stream is corrupt: the error is streams.Permanent and says how
// to recover, because guessing a position would skip changes (LATEST) or
// repeat them (TRIM_HORIZON) without anyone knowing. start is the
// configured StartingPosition, for that message.
func newCheckpoint(ctx context.Context, store streams.CheckpointStore, b []byte, start string) (*checkpoint, error) {
	c := &checkpoint{store: store, ctx: context.WithoutCancel(ctx)}
	if b == nil {
		c.state.Shards = map[string]shardState{}
		return c, nil
	}
	if err := json.Unmarshal(b, &c.state); err != nil {
		return nil, corruptCheckpoint(store, start, err)
	}
	if c.state.StreamARN == "" {
		return nil, corruptCheckpoint(store, start, errors.New("it names no streamArn"))
	}
	if c.state.Shards == nil {
		c.state.Shards = map[string]shardState{}
	}
	return c, nil
}

// readCheckpoint loads the checkpoint of store.
func readCheckpoint(ctx context.Context, store streams.CheckpointStore, start string) (*checkpoint, error) {
	b, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	return newCheckpoint(ctx, store, b, start)
}

func corruptCheckpoint(store streams.CheckpointStore, start string, cause error) error {
	skip := "changes made since the last checkpoint are then skipped"
	if start == "TRIM_HORIZON" {
		skip = "up to 24 hours of changes are then delivered again"
	}
	return streams.Permanent(fmt.Errorf("checkpoint %s is corrupt (%v) and wsgate will not guess the stream's position: "+
		"restore it from a backup, or move it aside to start again at startingPosition %s (%s), then restart wsgate",
		store, cause, start, skip))
}

// useStream keeps the positions when they belong to arn and reports
// whether there were none (fresh). Positions of another stream (the table's
// stream was disabled and enabled again, which gives it a new ARN) mean
// nothing on this one and are dropped.
func (c *checkpoint) useStream(arn string, logger *slog.Logger) (fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.StreamARN == arn {
		return false
	}
	if c.state.StreamARN != "" {
		logger.Warn("checkpoint holds positions of another stream; starting this one afresh",
			"checkpoint", c.store.String(), "checkpointStream", c.state.StreamARN)
	}
	c.state = checkpointFile{StreamARN: arn, Shards: map[string]shardState{}}
	return true
}

// shard returns the state of one shard.
func (c *checkpoint) shard(id string) (shardState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.state.Shards[id]
	return s, ok
}

// finished returns the set of finished shards.
func (c *checkpoint) finished() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := map[string]bool{}
	for id, s := range c.state.Shards {
		if s.Finished {
			f[id] = true
		}
	}
	return f
}

// note adds the shards that are not in the checkpoint yet, starting at
// start, and saves when it added any.
func (c *checkpoint) note(ids []string, start string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	added := false
	for _, id := range ids {
		if _, ok := c.state.Shards[id]; !ok {
			c.state.Shards[id] = shardState{Start: start}
			added = true
		}
	}
	if !added {
		return nil
	}
	return c.saveLocked()
}

// advance records that the handler accepted shard's records up to seq.
func (c *checkpoint) advance(shard, seq string) error {
	return c.update(shard, func(s *shardState) { s.SequenceNumber = seq })
}

// finish records that shard is closed and fully delivered.
func (c *checkpoint) finish(shard string) error {
	return c.update(shard, func(s *shardState) { s.Finished = true })
}

// forget drops the shards that are not in keep (trimmed from the stream),
// so the file does not grow without bound.
func (c *checkpoint) forget(keep map[string]bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for id := range c.state.Shards {
		if !keep[id] {
			delete(c.state.Shards, id)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return c.saveLocked()
}

func (c *checkpoint) update(shard string, f func(*shardState)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.state.Shards[shard]
	f(&s)
	c.state.Shards[shard] = s
	return c.saveLocked()
}

// saveLocked saves the state to the store.
func (c *checkpoint) saveLocked() error {
	b, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, saveTimeout)
	defer cancel()
	if err := c.store.Save(ctx, append(b, '\n')); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	return nil
}

// fileStore keeps a checkpoint in a file: the default outside a cluster.
type fileStore struct{ path string }

var _ streams.CheckpointStore = fileStore{}

func (f fileStore) String() string {
	if abs, err := filepath.Abs(f.path); err == nil {
		return "file " + abs
	}
	return "file " + f.path
}

// Load reads the file; a missing file is no checkpoint. A file wsgate may
// not read is a permanent error that says so.
func (f fileStore) Load(context.Context) ([]byte, error) {
	b, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, fs.ErrPermission):
		return nil, streams.Permanent(fmt.Errorf("%w: give wsgate read and write access to it and its directory, then restart wsgate", err))
	case err != nil:
		return nil, err
	}
	if b == nil {
		b = []byte{} // an empty file is there, and corrupt
	}
	return b, nil
}

// Save writes the file atomically: a temporary file in the same
// directory, synced, renamed over the old one, and the directory synced so
// the rename itself survives a crash. A reader therefore sees the old file
// or the new one, never a part of either.
func (f fileStore) Save(_ context.Context, b []byte) error {
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(f.path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
