package dynamodb

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/streams"
)

// TestCorruptCheckpointIsPermanent: a checkpoint that cannot be read back
// stops the source with a permanent error that names the file and the way
// out, and the file is left as it was: no silent fresh start at LATEST.
func TestCorruptCheckpointIsPermanent(t *testing.T) {
	good := `{"streamArn":"` + fakeARN + `","shards":{"shardId-A":{"sequenceNumber":"7"}}}`
	tests := []struct {
		name, content, want string
	}{
		{"truncated", good[:len(good)/2], "unexpected end of JSON input"},
		{"empty", "", "unexpected end of JSON input"},
		{"not json", "\x00\x00\x00\x00", "invalid character"},
		{"null", "null", "names no streamArn"},
		{"no stream", `{"shards":{}}`, "names no streamArn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ckpt.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			// The stream ARN is given and the endpoint unreachable: the
			// checkpoint is judged before AWS is asked anything.
			src, err := New(streams.SourceConfig{StreamARN: fakeARN, Endpoint: "http://127.0.0.1:1", Checkpoint: path}, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			err = src.Run(ctx, &streamtest.Collector{})
			if !streams.IsPermanent(err) {
				t.Fatalf("Run = %v, want a permanent error", err)
			}
			for _, want := range []string{path, "is corrupt", tt.want, "move it aside", "startingPosition LATEST"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Errorf("checkpoint rewritten to %q", b)
			}
		})
	}
}

// TestCheckpointOfAnotherStreamStartsAfresh: positions of a previous
// stream of the table (disabled and enabled again) are dropped, not an
// error.
func TestCheckpointOfAnotherStreamStartsAfresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.json")
	old := strings.Replace(fakeARN, "2024-01-01", "2023-01-01", 1)
	if err := os.WriteFile(path, []byte(`{"streamArn":"`+old+`","shards":{"shardId-X":{"sequenceNumber":"9"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := readCheckpoint(context.Background(), fileStore{path}, "LATEST")
	if err != nil {
		t.Fatal(err)
	}
	if fresh := ck.useStream(fakeARN, testLogger()); !fresh {
		t.Error("positions of another stream were kept")
	}
	if _, ok := ck.shard("shardId-X"); ok {
		t.Error("shard of the other stream still in the checkpoint")
	}
}

// TestSaveIsAtomic: a save leaves the complete new file and no temporary
// file behind.
func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.json")
	ck, err := readCheckpoint(context.Background(), fileStore{path}, "LATEST")
	if err != nil {
		t.Fatal(err)
	}
	ck.useStream(fakeARN, testLogger())
	for i := range 20 {
		if err := ck.note([]string{"shardId-" + strings.Repeat("x", i)}, "LATEST"); err != nil {
			t.Fatal(err)
		}
	}
	back, err := readCheckpoint(context.Background(), fileStore{path}, "LATEST")
	if err != nil || len(back.state.Shards) != 20 {
		t.Fatalf("read back %v shards, error %v", back, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the checkpoint", len(entries))
	}
}

// TestOldestPendingWhileHandlerRefuses: Stats reports the creation time of
// the record the handler keeps refusing, and nothing once it is accepted.
func TestOldestPendingWhileHandlerRefuses(t *testing.T) {
	fake := &fakeStreams{
		shards:    []*fakeShard{{ID: "shardId-A", seqs: []int{1}, item: "a"}},
		failNext:  map[string]string{},
		iterCalls: map[string]int{},
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	h := streamtest.Refusing(streamtest.FailFirst(1 << 30))
	r := run(t, streams.SourceConfig{Type: "dynamodb", StreamARN: fakeARN, Endpoint: srv.URL,
		StartingPosition: "TRIM_HORIZON", Checkpoint: filepath.Join(t.TempDir(), "ckpt.json"), PollMillis: 10}, h)
	streamtest.CheckOldestPending(t, waitFor, h, r.src.Stats)
}
