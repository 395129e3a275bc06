package streams

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/integration"
)

// groupRecorder is a CountingPublisher that keeps what was published,
// failing when fail is set; it reports members queued and full skipped.
type groupRecorder struct {
	mu            sync.Mutex
	fail          error
	members, full int
	got           []string // group + " " + data
}

func (g *groupRecorder) Publish(ctx context.Context, group string, data []byte) error {
	_, _, err := g.PublishCounted(ctx, group, data)
	return err
}

func (g *groupRecorder) PublishCounted(ctx context.Context, group string, data []byte) (int, int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return 0, 0, g.fail
	}
	g.got = append(g.got, group+" "+string(data))
	return g.members, g.full, nil
}

func TestGroupTarget(t *testing.T) {
	p := &groupRecorder{}
	g := NewGroupTarget(TargetConfig{Group: "orders", Filter: &Filter{Keys: map[string][]string{"id": {"1", "3"}}}}, p)
	recs := records(1, 3)
	if err := g.Handle(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	if len(p.got) != 2 {
		t.Fatalf("published %d messages, want 2 (id 1 and 3)", len(p.got))
	}
	for i, want := range []Record{recs[0], recs[2]} {
		group, data, _ := strings.Cut(p.got[i], " ")
		if group != "orders" {
			t.Fatalf("published to %q", group)
		}
		var got events.DynamoDBEventRecord
		if err := json.Unmarshal([]byte(data), &got); err != nil {
			t.Fatalf("message is not a DynamoDB stream record: %v", err)
		}
		if got.EventID != want.EventID || got.Change.SequenceNumber != want.Change.SequenceNumber ||
			got.Change.Keys["id"].Number() != want.Change.Keys["id"].Number() || got.EventName != "INSERT" {
			t.Fatalf("message %d = %s", i, data)
		}
	}

	p.fail = errors.New("hub closed")
	if err := g.Handle(context.Background(), "s", recs); err == nil {
		t.Fatal("publish error not returned; the source would advance past undelivered records")
	}
}

// TestGroupTargetCounts: a record published to an empty group is counted
// as reaching nobody, not as delivered to someone.
func TestGroupTargetCounts(t *testing.T) {
	p := &groupRecorder{}
	g := NewGroupTarget(TargetConfig{Group: "orders", Filter: &Filter{EventNames: []string{"INSERT"}}}, p)
	recs := records(1, 2)
	recs[1].EventName = "REMOVE"
	if err := g.Handle(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	if got, want := g.Stats(), (GroupStats{Published: 1, Filtered: 1, NoSubscribers: 1}); got != want {
		t.Fatalf("with no members: %+v, want %+v", got, want)
	}
	p.members, p.full = 2, 1
	if err := g.Handle(context.Background(), "s", records(3, 1)); err != nil {
		t.Fatal(err)
	}
	if got, want := g.Stats(), (GroupStats{Published: 2, Filtered: 1, Queued: 2, Skipped: 1, NoSubscribers: 1}); got != want {
		t.Fatalf("with 2 members queued and 1 full: %+v, want %+v", got, want)
	}
}

func TestFilter(t *testing.T) {
	rec := records(7, 1)[0]
	rec.EventName = "MODIFY"
	rec.Change.NewImage = map[string]events.DynamoDBAttributeValue{
		"id":     events.NewNumberAttribute("7"),
		"room":   events.NewStringAttribute("lobby"),
		"active": events.NewBooleanAttribute(true),
		"blob":   events.NewBinaryAttribute([]byte("x")),
	}
	removed := rec
	removed.EventName = "REMOVE"
	removed.Change.OldImage, removed.Change.NewImage = rec.Change.NewImage, nil
	tests := []struct {
		name   string
		filter *Filter
		rec    Record
		want   bool
	}{
		{"nil filter", nil, rec, true},
		{"empty filter", &Filter{}, rec, true},
		{"event name", &Filter{EventNames: []string{"INSERT", "MODIFY"}}, rec, true},
		{"other event name", &Filter{EventNames: []string{"INSERT"}}, rec, false},
		{"key N", &Filter{Keys: map[string][]string{"id": {"7"}}}, rec, true},
		{"key other value", &Filter{Keys: map[string][]string{"id": {"8"}}}, rec, false},
		{"key missing", &Filter{Keys: map[string][]string{"room": {"lobby"}}}, rec, false},
		{"attribute S", &Filter{Attributes: map[string][]string{"room": {"hall", "lobby"}}}, rec, true},
		{"attribute BOOL", &Filter{Attributes: map[string][]string{"active": {"true"}}}, rec, true},
		{"attribute B never matches", &Filter{Attributes: map[string][]string{"blob": {"x"}}}, rec, false},
		{"attribute of removed item", &Filter{Attributes: map[string][]string{"room": {"lobby"}}}, removed, true},
		{"all criteria", &Filter{EventNames: []string{"MODIFY"}, Keys: map[string][]string{"id": {"7"}},
			Attributes: map[string][]string{"room": {"hall"}}}, rec, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.filter.Match(&tc.rec); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	sqlite := SourceConfig{Type: "sqlite", Path: "app.db", Tables: []string{"orders"}}
	fn := &integration.Config{Type: "mock"}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"group", Config{Source: sqlite, Target: TargetConfig{Group: "g"}}, ""},
		{"integration with everything", Config{Source: sqlite, Target: TargetConfig{Integration: fn, BatchSize: 10000,
			MaximumBatchingWindowInSeconds: 300, MaximumRetryAttempts: intp(-1), MaximumRecordAgeInSeconds: intp(604800),
			BisectBatchOnFunctionError: true, FunctionResponseTypes: []string{"ReportBatchItemFailures"}}}, ""},
		{"no source type", Config{Target: TargetConfig{Group: "g"}}, "source.type: required"},
		{"sqlite without tables", Config{Source: SourceConfig{Type: "sqlite", Path: "x"}, Target: TargetConfig{Group: "g"}}, "source.tables: required"},
		{"postgres without dsn", Config{Source: SourceConfig{Type: "postgres", Tables: []string{"t"}}, Target: TargetConfig{Group: "g"}}, "source.dsn: required"},
		{"dynamodb without table", Config{Source: SourceConfig{Type: "dynamodb"}, Target: TargetConfig{Group: "g"}}, "needs table or streamArn"},
		{"bad starting position", Config{Source: SourceConfig{Type: "dynamodb", Table: "t", StartingPosition: "AT_TIMESTAMP"}, Target: TargetConfig{Group: "g"}}, "startingPosition"},
		{"no target", Config{Source: sqlite}, "needs group or integration"},
		{"both targets", Config{Source: sqlite, Target: TargetConfig{Group: "g", Integration: fn}}, "exclusive"},
		{"bad integration", Config{Source: sqlite, Target: TargetConfig{Integration: &integration.Config{}}}, "target.integration.type: required"},
		{"batch size", Config{Source: sqlite, Target: TargetConfig{Integration: fn, BatchSize: 10001}}, "batchSize"},
		{"window", Config{Source: sqlite, Target: TargetConfig{Integration: fn, MaximumBatchingWindowInSeconds: 301}}, "maximumBatchingWindowInSeconds"},
		{"retries", Config{Source: sqlite, Target: TargetConfig{Integration: fn, MaximumRetryAttempts: intp(-2)}}, "maximumRetryAttempts"},
		{"age", Config{Source: sqlite, Target: TargetConfig{Integration: fn, MaximumRecordAgeInSeconds: intp(604801)}}, "maximumRecordAgeInSeconds"},
		{"response type", Config{Source: sqlite, Target: TargetConfig{Integration: fn, FunctionResponseTypes: []string{"X"}}}, "functionResponseTypes"},
		{"grace bounds", Config{Source: SourceConfig{Type: "sqlite", Path: "x", Tables: []string{"t"}, DeliverGraceSeconds: intp(60)}, Target: TargetConfig{Group: "g"}}, ""},
		{"grace zero", Config{Source: SourceConfig{Type: "sqlite", Path: "x", Tables: []string{"t"}, DeliverGraceSeconds: intp(0)}, Target: TargetConfig{Group: "g"}}, ""},
		{"grace too long", Config{Source: SourceConfig{Type: "sqlite", Path: "x", Tables: []string{"t"}, DeliverGraceSeconds: intp(61)}, Target: TargetConfig{Group: "g"}}, "source.deliverGraceSeconds"},
		{"grace negative", Config{Source: SourceConfig{Type: "postgres", DSN: "x", Tables: []string{"t"}, DeliverGraceSeconds: intp(-1)}, Target: TargetConfig{Group: "g"}}, "source.deliverGraceSeconds"},
		{"filter event name", Config{Source: sqlite, Target: TargetConfig{Group: "g", Filter: &Filter{EventNames: []string{"UPDATE"}}}}, "eventName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	a := Config{Source: SourceConfig{Type: "sqlite", Path: "app.db", Tables: []string{"orders", "users"}}, Target: TargetConfig{Group: "a"}}
	b := Config{Name: "b", Source: SourceConfig{Type: "sqlite", Path: "app.db", Tables: []string{"rooms"}}, Target: TargetConfig{Group: "b"}}
	if err := ValidateAll([]Config{a, b}); err != nil {
		t.Fatal(err)
	}
	b.Source.Tables = []string{"users"}
	if err := ValidateAll([]Config{a, b}); err == nil || !strings.Contains(err.Error(), "already captured") {
		t.Fatalf("ValidateAll = %v, want a table captured twice", err)
	}
	b.Name = ""
	b.Source.Tables = []string{"rooms"}
	if err := ValidateAll([]Config{a, b}); err == nil || !strings.Contains(err.Error(), "[1].name: \"sqlite:app.db\" used twice") {
		t.Fatalf("ValidateAll = %v, want a duplicate name", err)
	}
}
