package dynamodb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/natstest"
	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// startNATS runs a standalone NATS server with JetStream on loopback: the
// external mode's NATS.
func startNATS(t *testing.T) string { return natstest.Start(t) }

// startNode starts a cluster node named name on the NATS at url: the KV
// checkpoint store's home.
func startNode(t *testing.T, url, name string) *cluster.Hub {
	t.Helper()
	cfg := cluster.Config{Name: "ckpt", Node: cluster.NodeConfig{Name: name}, NATS: cluster.NATSConfig{URL: url}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h, err := cluster.Start(cfg, cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// clusterWait bounds each wait of the cluster tests: moto, NATS and the
// source share a loaded machine with other test binaries.
const clusterWait = 60 * time.Second

// items returns the "id" keys of recs.
func items(recs []streams.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Change.Keys["id"].String()
	}
	return out
}

// TestClusterDynamoCheckpointFence: a stream's checkpoint in cluster KV.
// The first runner imports the checkpoint file a single node left; when a
// second runner takes the stream over (leadership moved), the first one's
// next save fails with streams.ErrFenced and its Run stops, and the second
// resumes from the KV checkpoint: every record is delivered, the ones the
// first runner had saved are not delivered again.
func TestClusterDynamoCheckpointFence(t *testing.T) {
	endpoint := motoEndpoint(t)
	db := tableClient(t, endpoint)
	table := uniqueTable("fence")
	createTable(t, db, table, true)
	file := filepath.Join(t.TempDir(), "ckpt.json")
	cfg := streams.SourceConfig{Type: "dynamodb", Table: table, Endpoint: endpoint, Region: "us-east-1",
		StartingPosition: "TRIM_HORIZON", Checkpoint: file, PollMillis: 20}
	putItem := func(i int) {
		put(t, db, table, map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: strconv.Itoa(i)}})
	}

	// A single node reads items 0..9 and leaves its checkpoint file.
	single := &streamtest.Collector{}
	r := run(t, cfg, single)
	for i := range 10 {
		putItem(i)
	}
	single.WaitRecords(t, clusterWait, 10)
	r.halt(t)
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no checkpoint file: %v", err)
	}

	url := startNATS(t)
	n1, n2 := startNode(t, url, "n1"), startNode(t, url, "n2")
	// The old leader imports the file: it goes on with item 10.
	oldH := &streamtest.Collector{}
	old := run(t, cfg, oldH, WithCheckpoints(n1.Checkpoints))
	for i := 10; i < 20; i++ {
		putItem(i)
	}
	got := items(oldH.WaitRecords(t, clusterWait, 10))
	if got[0] != "10" {
		t.Fatalf("after the import the first record is item %s, want 10 (the file's position was not imported)", got[0])
	}
	oldAccepted := oldH.Accepted()
	lastOld := oldAccepted[len(oldAccepted)-1]

	// Leadership moves: the new leader takes the checkpoint over. The
	// old one has not noticed; its next save fails and it stops.
	newH := &streamtest.Collector{}
	run(t, cfg, newH, WithCheckpoints(n2.Checkpoints))
	next := 20
	testenv.Eventually(t, clusterWait, func() error {
		putItem(next)
		next++
		select {
		case <-old.done:
			return nil
		default:
			return errors.New("the old leader still runs")
		}
	})
	if !errors.Is(old.err, streams.ErrFenced) || streams.IsPermanent(old.err) {
		t.Fatalf("old leader's Run = %v, want an error wrapping streams.ErrFenced, not permanent", old.err)
	}
	for i := range 5 {
		putItem(next + i)
	}
	next += 5

	// Every item reached a runner; the new one redelivered at most the
	// old one's last batch (accepted, perhaps not yet saved when the
	// takeover came).
	testenv.Eventually(t, clusterWait, func() error {
		seen := map[string]bool{}
		for _, id := range append(items(single.Records()), append(items(oldH.Records()), items(newH.Records())...)...) {
			seen[id] = true
		}
		for i := range next {
			if !seen[strconv.Itoa(i)] {
				return fmt.Errorf("item %d not delivered", i)
			}
		}
		return nil
	})
	mayRepeat := map[string]bool{}
	for _, id := range items(lastOld.Records) {
		mayRepeat[id] = true
	}
	for _, id := range items(newH.Records()) {
		if n, _ := strconv.Atoi(id); n < 20 && !mayRepeat[id] {
			t.Errorf("new leader redelivered item %s, saved by the old leader before the takeover (KV checkpoint not used)", id)
		}
	}
}

// TestSourceID: the table and its stream ARN name the same source; the id
// is the hash of "ddb:<stream ARN>", another table's differs, and a
// missing table is an error retrying cannot heal.
func TestSourceID(t *testing.T) {
	endpoint := motoEndpoint(t)
	db := tableClient(t, endpoint)
	table, other := uniqueTable("sid"), uniqueTable("sid")
	arn := createTable(t, db, table, true)
	createTable(t, db, other, true)
	id := func(cfg streams.SourceConfig) string {
		t.Helper()
		cfg.Endpoint, cfg.Region = endpoint, "us-east-1"
		src, err := New(cfg, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.SourceID(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	byTable, byARN := id(streams.SourceConfig{Table: table}), id(streams.SourceConfig{StreamARN: arn})
	if byTable != byARN || byTable != streams.HashSourceID("ddb:"+arn) || len(byTable) != 16 {
		t.Errorf("SourceID by table %q, by ARN %q, want both the 16-hex hash of ddb:%s", byTable, byARN, arn)
	}
	if id(streams.SourceConfig{Table: other}) == byTable {
		t.Error("another table's stream has the same id")
	}
	missing, err := New(streams.SourceConfig{Table: "missing_" + table, Endpoint: endpoint, Region: "us-east-1"}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.SourceID(t.Context()); !streams.IsPermanent(err) {
		t.Errorf("SourceID of a missing table = %v, want a permanent error", err)
	}
}

// TestClusterImportsNoCorruptFile: a corrupt checkpoint file is not
// imported into an empty KV store as a fresh start; Run stops with the
// same permanent error as on a single node, naming the file.
func TestClusterImportsNoCorruptFile(t *testing.T) {
	node := startNode(t, startNATS(t), "n1")
	path := filepath.Join(t.TempDir(), "ckpt.json")
	if err := os.WriteFile(path, []byte(`{"shards":`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The stream ARN is given and the endpoint unreachable: nothing is
	// asked of AWS before the checkpoint is judged.
	src, err := New(streams.SourceConfig{StreamARN: fakeARN, Endpoint: "http://127.0.0.1:1", Checkpoint: path}, testLogger(), WithCheckpoints(node.Checkpoints))
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(t.Context(), &streamtest.Collector{})
	if !streams.IsPermanent(err) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is corrupt") {
		t.Fatalf("Run = %v, want a permanent error naming the corrupt file", err)
	}
}
