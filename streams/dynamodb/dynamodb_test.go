package dynamodb

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

const waitFor = 20 * time.Second

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// running is a Source started in the background.
type running struct {
	src  *Source
	stop context.CancelFunc
	done chan struct{}
	err  error
}

func (r *running) halt(t *testing.T) {
	t.Helper()
	r.stop()
	<-r.done
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}

func run(t *testing.T, cfg streams.SourceConfig, h streams.Handler, opts ...Option) *running {
	t.Helper()
	src, err := New(cfg, testLogger(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, stop: cancel, done: make(chan struct{})}
	go func() { r.err = src.Run(ctx, h); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func put(t *testing.T, db *dynamodb.Client, table string, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
}

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPutUpdateDeleteArrive(t *testing.T) {
	endpoint := motoEndpoint(t)
	db := tableClient(t, endpoint)
	table := uniqueTable("items")
	arn := createTable(t, db, table, true)
	ckpt := filepath.Join(t.TempDir(), "ckpt.json")
	h := &streamtest.Collector{}
	r := run(t, streams.SourceConfig{Type: "dynamodb", Table: table, Endpoint: endpoint, Region: "us-east-1",
		StartingPosition: "TRIM_HORIZON", Checkpoint: ckpt, PollMillis: 20}, h)

	put(t, db, table, map[string]types.AttributeValue{
		"id":   &types.AttributeValueMemberS{Value: "a"},
		"n":    &types.AttributeValueMemberN{Value: "1"},
		"ok":   &types.AttributeValueMemberBOOL{Value: true},
		"bin":  &types.AttributeValueMemberB{Value: []byte{1, 2}},
		"tags": &types.AttributeValueMemberSS{Value: []string{"x"}},
		"m":    &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberNULL{Value: true}}}}},
	})
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("a"),
		UpdateExpression:          aws.String("SET n = :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key("a")}); err != nil {
		t.Fatal(err)
	}

	recs := h.WaitRecords(t, waitFor, 3)
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	for i, want := range []string{"INSERT", "MODIFY", "REMOVE"} {
		rec := recs[i]
		if rec.EventName != want || rec.EventSource != "aws:dynamodb" || rec.EventSourceArn != arn || rec.AWSRegion != "us-east-1" || rec.EventID == "" {
			t.Errorf("record %d header = %s %s %s %s, want %s aws:dynamodb %s", i, rec.EventName, rec.EventSource, rec.EventSourceArn, rec.AWSRegion, want, arn)
		}
		if got := js(t, rec.Change.Keys); got != `{"id":{"S":"a"}}` {
			t.Errorf("%s Keys = %s", want, got)
		}
		if rec.Change.StreamViewType != "NEW_AND_OLD_IMAGES" || rec.Change.SequenceNumber == "" || rec.Change.SizeBytes <= 0 {
			t.Errorf("%s stream record incomplete: %+v", want, rec.Change)
		}
		if age := time.Since(rec.Change.ApproximateCreationDateTime.Time); age < 0 || age > time.Hour {
			t.Errorf("%s ApproximateCreationDateTime = %v", want, rec.Change.ApproximateCreationDateTime)
		}
		var back events.DynamoDBEvent
		if err := json.Unmarshal([]byte(js(t, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})), &back); err != nil {
			t.Errorf("%s does not decode with aws-lambda-go: %v", want, err)
		}
	}
	ins, mod, rem := recs[0].Change, recs[1].Change, recs[2].Change
	wantNew := `{"bin":{"B":"AQI="},"id":{"S":"a"},"m":{"M":{"l":{"L":[{"NULL":true}]}}},"n":{"N":"1"},"ok":{"BOOL":true},"tags":{"SS":["x"]}}`
	if got := js(t, ins.NewImage); got != wantNew || ins.OldImage != nil {
		t.Errorf("INSERT images = new %s old %s, want new %s and no old", got, js(t, ins.OldImage), wantNew)
	}
	if mod.NewImage["n"].Number() != "2" || mod.OldImage["n"].Number() != "1" {
		t.Errorf("MODIFY images = new %s old %s", js(t, mod.NewImage), js(t, mod.OldImage))
	}
	if rem.NewImage != nil || rem.OldImage["n"].Number() != "2" {
		t.Errorf("REMOVE images = new %s old %s", js(t, rem.NewImage), js(t, rem.OldImage))
	}
	if recs[0].Change.SequenceNumber >= recs[2].Change.SequenceNumber {
		t.Errorf("sequence numbers out of order")
	}

	// The checkpoint holds the last accepted record of the shard.
	testenv.Eventually(t, waitFor, func() error {
		b, err := os.ReadFile(ckpt)
		if err != nil {
			return err
		}
		var f checkpointFile
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		if f.StreamARN != arn || len(f.Shards) != 1 {
			return fmt.Errorf("checkpoint = %s", b)
		}
		for _, s := range f.Shards {
			if s.SequenceNumber != rem.SequenceNumber {
				return fmt.Errorf("checkpoint at %s, want %s", s.SequenceNumber, rem.SequenceNumber)
			}
		}
		return nil
	})
	if st := r.src.Stats(); st.Delivered != 3 {
		t.Errorf("Stats.Delivered = %d, want 3", st.Delivered)
	}
	if b := h.Accepted(); len(b) == 0 || !strings.HasPrefix(b[0].Shard, "shardId-") {
		t.Errorf("batches = %v, want them on the stream's shard ids", b)
	}
}

func TestRestartResumesFromCheckpoint(t *testing.T) {
	endpoint := motoEndpoint(t)
	db := tableClient(t, endpoint)
	table := uniqueTable("restart")
	createTable(t, db, table, true)
	cfg := streams.SourceConfig{Type: "dynamodb", Table: table, Endpoint: endpoint,
		StartingPosition: "TRIM_HORIZON", Checkpoint: filepath.Join(t.TempDir(), "ckpt.json"), PollMillis: 20}

	h1 := &streamtest.Collector{}
	r1 := run(t, cfg, h1)
	for _, id := range []string{"1", "2", "3"} {
		put(t, db, table, key(id))
	}
	h1.WaitRecords(t, waitFor, 3)
	r1.halt(t)

	for _, id := range []string{"4", "5"} {
		put(t, db, table, key(id))
	}
	h2 := &streamtest.Collector{}
	r2 := run(t, cfg, h2)
	put(t, db, table, key("6"))
	recs := h2.WaitRecords(t, waitFor, 3)
	r2.halt(t)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.Change.Keys["id"].String())
	}
	// The handler accepted 1..3 and the checkpoint was written before the
	// first run stopped, so the second run neither repeats nor skips.
	if got := strings.Join(ids, ","); got != "4,5,6" {
		t.Errorf("second run delivered %s, want 4,5,6", got)
	}
}

func TestHandlerErrorRedelivers(t *testing.T) {
	endpoint := motoEndpoint(t)
	db := tableClient(t, endpoint)
	table := uniqueTable("redeliver")
	createTable(t, db, table, true)
	put(t, db, table, key("x"))
	put(t, db, table, key("y"))
	h := streamtest.Refusing(streamtest.FailFirst(2))
	r := run(t, streams.SourceConfig{Type: "dynamodb", Table: table, Endpoint: endpoint,
		StartingPosition: "TRIM_HORIZON", Checkpoint: filepath.Join(t.TempDir(), "ckpt.json"), PollMillis: 20}, h)
	recs := h.WaitRecords(t, waitFor, 2)
	offered := h.Offers()
	if len(offered) != 3 {
		t.Fatalf("handler was offered %d batches, want 3 (two failures, one success)", len(offered))
	}
	for i, o := range offered {
		if b := o.Records; len(b) != 2 || b[0].EventID != recs[0].EventID || b[1].EventID != recs[1].EventID {
			t.Errorf("offer %d is not the same batch", i)
		}
	}
	if st := r.src.Stats(); st.Delivered != 2 || !strings.Contains(st.LastError, "injected failure") {
		t.Errorf("Stats = %+v, want Delivered 2 and the handler error", st)
	}
}

func TestTableErrorsAreFatal(t *testing.T) {
	endpoint := motoEndpoint(t)
	db := tableClient(t, endpoint)
	noStream := uniqueTable("nostream")
	createTable(t, db, noStream, false)
	tests := []struct {
		name  string
		table string
		want  string
	}{
		{"no stream", noStream, "has no stream"},
		{"missing table", "does-not-exist", "ResourceNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(streams.SourceConfig{Type: "dynamodb", Table: tt.table, Endpoint: endpoint, Checkpoint: filepath.Join(t.TempDir(), "c.json")}, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if err := src.Run(ctx, &streamtest.Collector{}); err == nil || !strings.Contains(err.Error(), tt.want) || !streams.IsPermanent(err) {
				t.Errorf("Run = %v, want a permanent error containing %q", err, tt.want)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  streams.SourceConfig
		want string
	}{
		{"nothing", streams.SourceConfig{Region: "us-east-1"}, "table or streamArn is required"},
		{"bad arn", streams.SourceConfig{StreamARN: "arn:aws:sqs:us-east-1:1:q"}, "not a DynamoDB stream ARN"},
		{"bad position", streams.SourceConfig{Table: "t", StartingPosition: "AT_TIMESTAMP"}, "startingPosition"},
		{"negative poll", streams.SourceConfig{Table: "t", PollMillis: -1}, "pollMillis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want error containing %q", err, tt.want)
			}
		})
	}
	src, err := New(streams.SourceConfig{StreamARN: "arn:aws:dynamodb:eu-west-2:123456789012:table/Orders/stream/2024-01-01T00:00:00.000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if src.table != "Orders" || src.checkpoint != "wsgate-checkpoint-Orders.json" || src.start != "LATEST" || src.poll != time.Second {
		t.Errorf("defaults not applied: table %q checkpoint %q start %q poll %v", src.table, src.checkpoint, src.start, src.poll)
	}
}
