package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// moto gives every stream exactly one shard that never closes
// (moto/dynamodb/models/table.py StreamShard), so lineage, pagination,
// closed shards and the error paths are tested against this fake
// DynamoDB Streams endpoint, which speaks the same awsJson1.0 protocol to
// the real SDK client.

const fakeARN = "arn:aws:dynamodb:us-east-1:123456789012:table/Fake/stream/2024-01-01T00:00:00.000"

type fakeShard struct {
	ID     string `json:"ShardId"`
	Parent string `json:"ParentShardId,omitempty"`
	closed bool
	seqs   []int
	item   string
}

type fakeStreams struct {
	mu     sync.Mutex
	shards []*fakeShard
	// failNext maps "Operation shardId" to an error type returned once.
	failNext  map[string]string
	iterCalls map[string]int
	describes int
	deleted   bool // the stream is gone: DescribeStream fails
}

// takeFailure returns the error type injected for key, "" for none. A
// value "Type*N" fails the next N calls.
func (f *fakeStreams) takeFailure(key string) string {
	e := f.failNext[key]
	typ, count, ok := strings.Cut(e, "*")
	n, _ := strconv.Atoi(count)
	if ok && n > 1 {
		f.failNext[key] = fmt.Sprintf("%s*%d", typ, n-1)
	} else {
		delete(f.failNext, key)
	}
	return typ
}

func (f *fakeStreams) shard(id string) *fakeShard {
	for _, s := range f.shards {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func (f *fakeStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDBStreams_20120810.")
	var in map[string]any
	body, _ := io.ReadAll(r.Body)
	json.Unmarshal(body, &in)
	str := func(k string) string { s, _ := in[k].(string); return s }
	fail := func(typ string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected"}`, typ)
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		json.NewEncoder(w).Encode(v)
	}
	switch op {
	case "DescribeStream":
		// One shard per page, to exercise ExclusiveStartShardId paging.
		f.describes++
		if f.deleted {
			fail("ResourceNotFoundException")
			return
		}
		start := 0
		if from := str("ExclusiveStartShardId"); from != "" {
			start = slices.IndexFunc(f.shards, func(s *fakeShard) bool { return s.ID == from }) + 1
		}
		desc := map[string]any{"StreamArn": fakeARN, "StreamStatus": "ENABLED", "StreamViewType": "NEW_AND_OLD_IMAGES", "TableName": "Fake"}
		var page []any
		if start < len(f.shards) {
			s := f.shards[start]
			rng := map[string]any{"StartingSequenceNumber": strconv.Itoa(s.seqs[0])}
			if s.closed {
				rng["EndingSequenceNumber"] = strconv.Itoa(s.seqs[len(s.seqs)-1])
			}
			sh := map[string]any{"ShardId": s.ID, "SequenceNumberRange": rng}
			if s.Parent != "" {
				sh["ParentShardId"] = s.Parent
			}
			page = append(page, sh)
			if start+1 < len(f.shards) {
				desc["LastEvaluatedShardId"] = s.ID
			}
		}
		desc["Shards"] = page
		reply(map[string]any{"StreamDescription": desc})
	case "GetShardIterator":
		id := str("ShardId")
		s := f.shard(id)
		if s == nil {
			fail("ResourceNotFoundException")
			return
		}
		f.iterCalls[id]++
		if e := f.takeFailure(op + " " + id); e != "" {
			fail(e)
			return
		}
		pos := 0
		switch str("ShardIteratorType") {
		case "LATEST":
			pos = len(s.seqs)
		case "AFTER_SEQUENCE_NUMBER":
			n, _ := strconv.Atoi(str("SequenceNumber"))
			pos = slices.Index(s.seqs, n) + 1
		}
		reply(map[string]any{"ShardIterator": fmt.Sprintf("%s|%d", id, pos)})
	case "GetRecords":
		id, p, _ := strings.Cut(str("ShardIterator"), "|")
		pos, _ := strconv.Atoi(p)
		s := f.shard(id)
		if e := f.takeFailure(op + " " + id); e != "" {
			fail(e)
			return
		}
		out := map[string]any{}
		var recs []any
		if pos < len(s.seqs) { // one record per call
			seq := s.seqs[pos]
			recs = append(recs, map[string]any{
				"eventID": fmt.Sprintf("ev%d", seq), "eventName": "MODIFY", "eventVersion": "1.1",
				"eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
				"dynamodb": map[string]any{
					"ApproximateCreationDateTime": float64(time.Now().Unix()),
					"Keys":                        map[string]any{"id": map[string]string{"S": s.item}},
					"NewImage":                    map[string]any{"id": map[string]string{"S": s.item}, "v": map[string]string{"N": strconv.Itoa(seq)}},
					"SequenceNumber":              strconv.Itoa(seq), "SizeBytes": 20, "StreamViewType": "NEW_AND_OLD_IMAGES",
				},
			})
			pos++
		}
		out["Records"] = recs
		if !s.closed || pos < len(s.seqs) {
			out["NextShardIterator"] = fmt.Sprintf("%s|%d", id, pos)
		}
		reply(out)
	default:
		http.Error(w, "unknown operation "+op, http.StatusBadRequest)
	}
}

func TestLineagePagingAndErrors(t *testing.T) {
	// A split: parent P (closed) with children C1 and C2, listed before
	// their parent; G's parent was trimmed away and is not listed.
	fake := &fakeStreams{
		shards: []*fakeShard{
			{ID: "shardId-C1", Parent: "shardId-P", seqs: []int{200, 201}, item: "k"},
			{ID: "shardId-C2", Parent: "shardId-P", seqs: []int{300}, item: "j"},
			{ID: "shardId-G", Parent: "shardId-gone", seqs: []int{400}, item: "g"},
			{ID: "shardId-P", closed: true, seqs: []int{100, 101, 102}, item: "k"},
		},
		failNext: map[string]string{
			"GetRecords shardId-C1":       "ExpiredIteratorException",
			"GetRecords shardId-C2":       "LimitExceededException*2",
			"GetRecords shardId-G":        "TrimmedDataAccessException",
			"GetShardIterator shardId-C2": "InternalServerError",
		},
		iterCalls: map[string]int{},
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	// Without the SDK's own retries every injected error reaches the
	// source's handling, and the test needs no multi-second SDK backoff.
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	cfg := streams.SourceConfig{Type: "dynamodb", StreamARN: fakeARN, Endpoint: srv.URL,
		StartingPosition: "TRIM_HORIZON", Checkpoint: filepath.Join(t.TempDir(), "ckpt.json"), PollMillis: 10}

	h := &streamtest.Collector{}
	r := run(t, cfg, h)
	recs := h.WaitRecords(t, waitFor, 7)
	r.halt(t)

	var order []string
	for _, rec := range recs {
		order = append(order, rec.Change.SequenceNumber)
	}
	if len(order) != 7 {
		t.Fatalf("delivered %v, want 7 records", order)
	}
	pos := func(seq string) int { return slices.Index(order, seq) }
	for _, child := range []string{"200", "201", "300"} {
		if pos(child) < pos("102") {
			t.Errorf("child record %s delivered before the parent's last record: %v", child, order)
		}
	}
	if pos("100") > pos("101") || pos("101") > pos("102") || pos("200") > pos("201") {
		t.Errorf("records of a shard out of order: %v", order)
	}
	for _, b := range h.Accepted() {
		for _, rec := range b.Records {
			if want := map[string]string{"1": "shardId-P", "2": "shardId-C1", "3": "shardId-C2", "4": "shardId-G"}[rec.Change.SequenceNumber[:1]]; b.Shard != want {
				t.Errorf("record %s handed over as shard %s, want %s", rec.Change.SequenceNumber, b.Shard, want)
			}
		}
	}

	ck, err := readCheckpoint(context.Background(), fileStore{cfg.Checkpoint}, "TRIM_HORIZON")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]shardState{
		"shardId-P":  {Start: "TRIM_HORIZON", SequenceNumber: "102", Finished: true},
		"shardId-C1": {Start: "TRIM_HORIZON", SequenceNumber: "201"},
		"shardId-C2": {Start: "TRIM_HORIZON", SequenceNumber: "300"},
		"shardId-G":  {Start: "TRIM_HORIZON", SequenceNumber: "400"},
	}
	for id, w := range want {
		if got, _ := ck.shard(id); got != w {
			t.Errorf("checkpoint[%s] = %+v, want %+v", id, got, w)
		}
	}
	fake.mu.Lock()
	if len(fake.failNext) != 0 {
		t.Errorf("injected errors never hit: %v", fake.failNext)
	}
	fake.mu.Unlock()

	// A restart with the same checkpoint repeats nothing and does not
	// touch the finished parent. Meanwhile C1 got one more record and was
	// split: its child E is found when C1 finishes and read after it.
	fake.mu.Lock()
	fake.iterCalls = map[string]int{}
	c1 := fake.shard("shardId-C1")
	c1.seqs = append(c1.seqs, 202)
	c1.closed = true
	fake.shards = append(fake.shards, &fakeShard{ID: "shardId-E", Parent: "shardId-C1", seqs: []int{500}, item: "k"})
	fake.mu.Unlock()
	// LATEST only applies to a new checkpoint's first listing: E, new
	// since, must still be read from its start.
	cfg.StartingPosition = "LATEST"
	h2 := &streamtest.Collector{}
	r2 := run(t, cfg, h2)
	h2.WaitRecords(t, waitFor, 2)
	testenv.Eventually(t, waitFor, func() error {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if fake.iterCalls["shardId-G"] == 0 {
			return fmt.Errorf("second run has not reached every shard yet")
		}
		return nil
	})
	r2.halt(t)
	var seqs []string
	for _, rec := range h2.Records() {
		seqs = append(seqs, rec.Change.SequenceNumber)
	}
	if strings.Join(seqs, ",") != "202,500" {
		t.Errorf("second run delivered %v, want 202 then 500", seqs)
	}
	ck, err = readCheckpoint(context.Background(), fileStore{cfg.Checkpoint}, "TRIM_HORIZON")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ck.shard("shardId-C1"); !got.Finished {
		t.Errorf("closed shard C1 not finished in the checkpoint: %+v", got)
	}
	if got, _ := ck.shard("shardId-E"); got.Start != "TRIM_HORIZON" || got.SequenceNumber != "500" {
		t.Errorf("new shard E checkpoint = %+v, want start TRIM_HORIZON at 500", got)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if n := fake.iterCalls["shardId-P"]; n != 0 {
		t.Errorf("finished parent was read again (%d GetShardIterator calls)", n)
	}
}

func TestReadyShards(t *testing.T) {
	listing := []shardInfo{
		{id: "c1", parent: "p"}, {id: "c2", parent: "p"}, {id: "p", closed: true},
		{id: "g", parent: "trimmed"}, {id: "gc", parent: "c1"},
	}
	tests := []struct {
		name              string
		finished, running map[string]bool
		want              []string
	}{
		{"fresh", nil, nil, []string{"p", "g"}},
		{"parent running", nil, map[string]bool{"p": true}, []string{"g"}},
		{"parent finished", map[string]bool{"p": true}, map[string]bool{"g": true}, []string{"c1", "c2"}},
		{"grandchild", map[string]bool{"p": true, "c1": true, "g": true}, map[string]bool{"c2": true}, []string{"gc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range readyShards(listing, tt.finished, tt.running) {
				got = append(got, s.id)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ready = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeletedStreamEndsRun(t *testing.T) {
	defer func(d time.Duration) { discoverEvery = d }(discoverEvery)
	discoverEvery = 20 * time.Millisecond
	fake := &fakeStreams{
		shards:    []*fakeShard{{ID: "shardId-A", seqs: []int{1}, item: "a"}},
		failNext:  map[string]string{},
		iterCalls: map[string]int{},
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	h := &streamtest.Collector{}
	r := run(t, streams.SourceConfig{Type: "dynamodb", StreamARN: fakeARN, Endpoint: srv.URL,
		StartingPosition: "TRIM_HORIZON", Checkpoint: filepath.Join(t.TempDir(), "ckpt.json"), PollMillis: 10}, h)
	h.WaitRecords(t, waitFor, 1)
	fake.mu.Lock()
	fake.deleted = true
	fake.mu.Unlock()
	// Run must return the error, having stopped its shard reader.
	select {
	case <-r.done:
	case <-time.After(waitFor):
		t.Fatal("Run did not return after the stream was deleted")
	}
	if r.err == nil || !strings.Contains(r.err.Error(), "ResourceNotFoundException") || !streams.IsPermanent(r.err) {
		t.Errorf("Run = %v, want the ResourceNotFoundException marked permanent", r.err)
	}
}

func TestLatestSkipsOlderRecords(t *testing.T) {
	fake := &fakeStreams{
		shards:    []*fakeShard{{ID: "shardId-A", seqs: []int{1, 2}, item: "a"}},
		failNext:  map[string]string{},
		iterCalls: map[string]int{},
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	h := &streamtest.Collector{}
	run(t, streams.SourceConfig{Type: "dynamodb", StreamARN: fakeARN, Endpoint: srv.URL,
		Checkpoint: filepath.Join(t.TempDir(), "ckpt.json"), PollMillis: 10}, h)
	testenv.Eventually(t, waitFor, func() error {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if fake.iterCalls["shardId-A"] == 0 {
			return errors.New("no iterator yet")
		}
		fake.shards[0].seqs = append(fake.shards[0].seqs, 3)
		return nil
	})
	recs := h.WaitRecords(t, waitFor, 1)
	if len(recs) != 1 || recs[0].Change.SequenceNumber != "3" {
		t.Errorf("LATEST delivered %d records starting at %s, want only 3", len(recs), recs[0].Change.SequenceNumber)
	}
}

func TestBatchingWindowAndSize(t *testing.T) {
	fake := &fakeStreams{
		shards:    []*fakeShard{{ID: "shardId-A", seqs: []int{1, 2, 3, 4, 5}, item: "a"}},
		failNext:  map[string]string{},
		iterCalls: map[string]int{},
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	// At most 3 records per batch, gathered over a window.
	h := &streamtest.Collector{Size: 3, Window: time.Second}
	run(t, streams.SourceConfig{Type: "dynamodb", StreamARN: fakeARN, Endpoint: srv.URL, StartingPosition: "TRIM_HORIZON",
		Checkpoint: filepath.Join(t.TempDir(), "ckpt.json"), PollMillis: 10}, h)
	h.WaitRecords(t, waitFor, 5)
	var sizes []int
	for _, b := range h.Accepted() {
		sizes = append(sizes, len(b.Records))
	}
	// The fake answers one record per GetRecords call: the first three
	// fill a batch, the last two wait for the window.
	if !slices.Equal(sizes, []int{3, 2}) {
		t.Errorf("batch sizes = %v, want [3 2]", sizes)
	}
}
