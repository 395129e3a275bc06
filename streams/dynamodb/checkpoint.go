package dynamodb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/wsgate/wsgate/streams"
)

// checkpoint is the durable position of one stream: per shard the last
// sequence number the handler accepted, and which shards are finished.
// It is safe for concurrent use; every change is written to disk before
// the method returns.
type checkpoint struct {
	path string

	mu    sync.Mutex
	state checkpointFile
}

// checkpointFile is the JSON in the checkpoint file.
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

// readCheckpoint reads path; a missing file is an empty checkpoint. A file
// that cannot be parsed (truncated, empty, overwritten) or that names no
// stream is corrupt, and so is one wsgate may not read: the error is
// streams.Permanent and says how to recover, because guessing a position
// would skip changes (LATEST) or repeat them (TRIM_HORIZON) without anyone
// knowing. start is the configured StartingPosition, for that message.
func readCheckpoint(path, start string) (*checkpoint, error) {
	c := &checkpoint{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.state.Shards = map[string]shardState{}
		return c, nil
	case errors.Is(err, fs.ErrPermission):
		return nil, streams.Permanent(fmt.Errorf("reading checkpoint: %w: give wsgate read and write access to it and its directory, then restart wsgate", err))
	case err != nil:
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &c.state); err != nil {
		return nil, corruptCheckpoint(path, start, err)
	}
	if c.state.StreamARN == "" {
		return nil, corruptCheckpoint(path, start, errors.New("it names no streamArn"))
	}
	if c.state.Shards == nil {
		c.state.Shards = map[string]shardState{}
	}
	return c, nil
}

func corruptCheckpoint(path, start string, cause error) error {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	skip := "changes made since the last checkpoint are then skipped"
	if start == "TRIM_HORIZON" {
		skip = "up to 24 hours of changes are then delivered again"
	}
	return streams.Permanent(fmt.Errorf("checkpoint file %s is corrupt (%v) and wsgate will not guess the stream's position: "+
		"restore the file from a backup, or move it aside to start again at startingPosition %s (%s), then restart wsgate",
		path, cause, start, skip))
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
			"checkpoint", c.path, "checkpointStream", c.state.StreamARN)
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

// saveLocked writes the file atomically: a temporary file in the same
// directory, synced, renamed over the old one, and the directory synced so
// the rename itself survives a crash. A reader therefore sees the old file
// or the new one, never a part of either.
func (c *checkpoint) saveLocked() error {
	b, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	dir := filepath.Dir(c.path)
	f, err := os.CreateTemp(dir, filepath.Base(c.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	return nil
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
