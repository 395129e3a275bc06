package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/eventfilter"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
)

// handlerIntegration is an integration.Integration running a Go function
// in process, as a Lambda handler for DynamoDB events would: it decodes the
// payload with aws-lambda-go's types and answers what fn returns.
type handlerIntegration struct {
	fn func(call int, ev events.DynamoDBEvent) (any, error)

	mu    sync.Mutex
	calls [][]string // sequence numbers of each invocation
}

func (h *handlerIntegration) Invoke(ctx context.Context, inv *integration.Invocation) ([]byte, error) {
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(inv.Payload, &ev); err != nil {
		return nil, &integration.FunctionError{Type: "Runtime.UnmarshalError", Message: err.Error()}
	}
	h.mu.Lock()
	seqs := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		seqs[i] = r.Change.SequenceNumber
	}
	h.calls = append(h.calls, seqs)
	call := len(h.calls)
	h.mu.Unlock()
	out, err := h.fn(call, ev)
	if err != nil {
		return nil, err
	}
	if raw, ok := out.(string); ok {
		return []byte(raw), nil
	}
	return json.Marshal(out)
}

func (h *handlerIntegration) Close() error { return nil }

func (h *handlerIntegration) invocations() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func seqNo(i int) string { return fmt.Sprintf("%021d", i) }

// records returns n INSERT records with sequence numbers first.. and key
// id = sequence number.
func records(first, n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		seq := first + i
		key := map[string]events.DynamoDBAttributeValue{"id": events.NewNumberAttribute(fmt.Sprint(seq))}
		recs[i] = Record{
			EventID:        fmt.Sprintf("%032x", seq),
			EventName:      "INSERT",
			EventVersion:   "1.1",
			EventSource:    "aws:dynamodb",
			AWSRegion:      "us-east-1",
			EventSourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/1970-01-01T00:00:00.000",
			Change: events.DynamoDBStreamRecord{
				ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Now().Truncate(time.Second)},
				Keys:                        key,
				NewImage:                    key,
				SequenceNumber:              seqNo(seq),
				SizeBytes:                   10,
				StreamViewType:              "NEW_AND_OLD_IMAGES",
			},
		}
	}
	return recs
}

func seqs(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Change.SequenceNumber
	}
	return out
}

func intp(i int) *int { return &i }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTarget(cfg TargetConfig, inv integration.Integration) *MappingTarget {
	m := NewMappingTarget(cfg, inv, quietLogger())
	m.Backoff = Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}
	return m
}

func fnErr(msg string) error { return &integration.FunctionError{Type: "Error", Message: msg} }

func TestMappingBatches(t *testing.T) {
	h := &handlerIntegration{fn: func(int, events.DynamoDBEvent) (any, error) { return nil, nil }}
	m := newTarget(TargetConfig{BatchSize: 100}, h)
	recs := records(1, 250)
	if err := m.Handle(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	calls := h.invocations()
	var sizes []int
	var all []string
	for _, c := range calls {
		sizes = append(sizes, len(c))
		all = append(all, c...)
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Fatalf("batch sizes %v, want [100 100 50]", sizes)
	}
	if !slices.Equal(all, seqs(recs)) {
		t.Fatal("records not delivered once each in order")
	}
	if st := m.Stats(); st.Invocations != 3 || st.Failures != 0 || st.Discarded != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMappingPayloadLimit(t *testing.T) {
	h := &handlerIntegration{fn: func(int, events.DynamoDBEvent) (any, error) { return nil, nil }}
	m := newTarget(TargetConfig{}, h)
	m.maxPayload = 6 << 10 // scaled down from 6 MiB to keep the test fast
	recs := records(1, 5)
	big := events.NewStringAttribute(strings.Repeat("x", 2<<10))
	for i := range recs {
		recs[i].Change.NewImage = map[string]events.DynamoDBAttributeValue{"blob": big}
	}
	if err := m.Handle(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, c := range h.invocations() {
		sizes = append(sizes, len(c))
	}
	// 2 KiB each: two fit under 6 KiB, a third would not.
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("batch sizes %v, want [2 2 1]", sizes)
	}
}

func TestMappingRetriesUntilSuccess(t *testing.T) {
	for _, fail := range []error{fnErr("boom"), integration.ErrTimeout, errors.New("connection refused")} {
		t.Run(fail.Error(), func(t *testing.T) {
			h := &handlerIntegration{fn: func(call int, _ events.DynamoDBEvent) (any, error) {
				if call <= 2 {
					return nil, fail
				}
				return nil, nil
			}}
			m := newTarget(TargetConfig{}, h)
			recs := records(1, 3)
			if err := m.Handle(context.Background(), "s", recs); err != nil {
				t.Fatal(err)
			}
			calls := h.invocations()
			if len(calls) != 3 {
				t.Fatalf("%d invocations, want 3", len(calls))
			}
			for _, c := range calls {
				if !slices.Equal(c, seqs(recs)) {
					t.Fatalf("retry sent %v, want the same batch %v", c, seqs(recs))
				}
			}
			if st := m.Stats(); st.Failures != 2 || st.Discarded != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestMappingMaximumRetryAttempts(t *testing.T) {
	h := &handlerIntegration{fn: func(_ int, ev events.DynamoDBEvent) (any, error) {
		if ev.Records[0].Change.SequenceNumber == seqNo(1) {
			return nil, fnErr("poison")
		}
		return nil, nil
	}}
	m := newTarget(TargetConfig{BatchSize: 2, MaximumRetryAttempts: intp(2)}, h)
	if err := m.Handle(context.Background(), "s", records(1, 4)); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{seqNo(1), seqNo(2)}, {seqNo(1), seqNo(2)}, {seqNo(1), seqNo(2)}, // first try and 2 retries
		{seqNo(3), seqNo(4)}, // given up, the shard moves on
	}
	if got := h.invocations(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("invocations %v, want %v", got, want)
	}
	if st := m.Stats(); st.Discarded != 2 {
		t.Fatalf("discarded %d, want 2", st.Discarded)
	}
}

func TestMappingZeroRetries(t *testing.T) {
	h := &handlerIntegration{fn: func(int, events.DynamoDBEvent) (any, error) { return nil, fnErr("no") }}
	m := newTarget(TargetConfig{MaximumRetryAttempts: intp(0)}, h)
	if err := m.Handle(context.Background(), "s", records(1, 3)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.invocations()); n != 1 {
		t.Fatalf("%d invocations, want 1", n)
	}
}

func TestMappingBisect(t *testing.T) {
	poison := seqNo(6)
	var delivered []string
	h := &handlerIntegration{fn: func(_ int, ev events.DynamoDBEvent) (any, error) {
		for _, r := range ev.Records {
			if r.Change.SequenceNumber == poison {
				return nil, fnErr("poison")
			}
		}
		for _, r := range ev.Records {
			delivered = append(delivered, r.Change.SequenceNumber)
		}
		return nil, nil
	}}
	m := newTarget(TargetConfig{BisectBatchOnFunctionError: true, MaximumRetryAttempts: intp(1)}, h)
	recs := records(1, 8)
	if err := m.Handle(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		seqs(recs),      // fails
		seqs(recs[0:4]), // ok
		seqs(recs[4:8]), // fails
		seqs(recs[4:6]), // fails
		seqs(recs[4:5]), // ok
		seqs(recs[5:6]), // fails: splitting did not count, this is attempt 1
		seqs(recs[5:6]), // retry 1 fails: given up
		seqs(recs[6:8]), // ok
	}
	if got := h.invocations(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("invocations\n%v\nwant\n%v", got, want)
	}
	wantDelivered := slices.Delete(seqs(recs), 5, 6)
	if !slices.Equal(delivered, wantDelivered) {
		t.Fatalf("delivered %v, want %v", delivered, wantDelivered)
	}
	if st := m.Stats(); st.Discarded != 1 {
		t.Fatalf("discarded %d, want 1", st.Discarded)
	}
}

func TestMappingReportBatchItemFailures(t *testing.T) {
	for _, cfg := range []TargetConfig{
		{ReportBatchItemFailures: true},
		{FunctionResponseTypes: []string{"ReportBatchItemFailures"}},
	} {
		h := &handlerIntegration{fn: func(call int, ev events.DynamoDBEvent) (any, error) {
			if call == 1 {
				// Two failures; the lowest one is where retrying starts.
				return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{
					{ItemIdentifier: ev.Records[4].Change.SequenceNumber},
					{ItemIdentifier: ev.Records[2].Change.SequenceNumber},
				}}, nil
			}
			return events.DynamoDBEventResponse{}, nil
		}}
		m := newTarget(cfg, h)
		recs := records(1, 6)
		if err := m.Handle(context.Background(), "s", recs); err != nil {
			t.Fatal(err)
		}
		want := [][]string{seqs(recs), seqs(recs[2:])}
		if got := h.invocations(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("invocations %v, want %v", got, want)
		}
	}
}

func TestMappingReportBatchItemFailuresIgnoredWhenOff(t *testing.T) {
	h := &handlerIntegration{fn: func(int, events.DynamoDBEvent) (any, error) {
		return `{"batchItemFailures":[{"itemIdentifier":"nonsense"}]}`, nil
	}}
	m := newTarget(TargetConfig{}, h)
	if err := m.Handle(context.Background(), "s", records(1, 2)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.invocations()); n != 1 {
		t.Fatalf("%d invocations, want 1: the answer is not read without ReportBatchItemFailures", n)
	}
}

func TestMappingPartialResponses(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		success bool
	}{
		{"empty answer", ``, true},
		{"null answer", `null`, true},
		{"empty object", `{}`, true},
		{"null list", `{"batchItemFailures":null}`, true},
		{"empty list", `{"batchItemFailures":[]}`, true},
		{"malformed JSON", `{"batchItemFailures":[`, false},
		{"not an object", `"ok"`, false},
		{"empty itemIdentifier", `{"batchItemFailures":[{"itemIdentifier":""}]}`, false},
		{"null itemIdentifier", `{"batchItemFailures":[{"itemIdentifier":null}]}`, false},
		{"bad key name", `{"batchItemFailures":[{"itemId":"000000000000000000001"}]}`, false},
		{"unknown itemIdentifier", `{"batchItemFailures":[{"itemIdentifier":"999"}]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &handlerIntegration{fn: func(call int, _ events.DynamoDBEvent) (any, error) {
				if call == 1 {
					return tc.answer, nil
				}
				return ``, nil
			}}
			m := newTarget(TargetConfig{ReportBatchItemFailures: true}, h)
			recs := records(1, 3)
			if err := m.Handle(context.Background(), "s", recs); err != nil {
				t.Fatal(err)
			}
			calls := h.invocations()
			if tc.success && len(calls) != 1 {
				t.Fatalf("%d invocations, want 1 (success)", len(calls))
			}
			if !tc.success && (len(calls) != 2 || !slices.Equal(calls[1], seqs(recs))) {
				t.Fatalf("invocations %v, want the whole batch twice", calls)
			}
		})
	}
}

func TestMappingBisectAtReportedFailure(t *testing.T) {
	h := &handlerIntegration{fn: func(call int, ev events.DynamoDBEvent) (any, error) {
		if call == 1 {
			return `{"batchItemFailures":[{"itemIdentifier":"` + ev.Records[3].Change.SequenceNumber + `"}]}`, nil
		}
		return nil, nil
	}}
	m := newTarget(TargetConfig{ReportBatchItemFailures: true, BisectBatchOnFunctionError: true}, h)
	recs := records(1, 8)
	if err := m.Handle(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	want := [][]string{seqs(recs), seqs(recs[3:])}
	if got := h.invocations(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("invocations %v, want %v", got, want)
	}
}

func TestMappingMaximumRecordAge(t *testing.T) {
	h := &handlerIntegration{fn: func(int, events.DynamoDBEvent) (any, error) { return nil, fnErr("down") }}
	m := newTarget(TargetConfig{MaximumRecordAgeInSeconds: intp(60)}, h)
	now := time.Now()
	var mu sync.Mutex
	m.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	recs := records(1, 4)
	old := events.SecondsEpochTime{Time: now.Add(-2 * time.Minute)}
	recs[0].Change.ApproximateCreationDateTime = old
	recs[1].Change.ApproximateCreationDateTime = old

	done := make(chan error, 1)
	go func() { done <- m.Handle(context.Background(), "s", recs) }()
	// The two old records are never sent; the others fail until they age.
	testenv.Eventually(t, 10*time.Second, func() error { return atLeast(h, 3) })
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range h.invocations() {
		if !slices.Equal(c, seqs(recs[2:])) {
			t.Fatalf("invoked with %v, want only the young records %v", c, seqs(recs[2:]))
		}
	}
	if st := m.Stats(); st.Discarded != 4 {
		t.Fatalf("discarded %d, want 4", st.Discarded)
	}
}

func TestMappingBlocksUntilCancelled(t *testing.T) {
	h := &handlerIntegration{fn: func(int, events.DynamoDBEvent) (any, error) { return nil, fnErr("down") }}
	m := newTarget(TargetConfig{}, h) // retries forever, as Lambda by default
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Handle(ctx, "s", records(1, 2)) }()
	testenv.Eventually(t, 10*time.Second, func() error { return atLeast(h, 5) })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Handle returned %v, want context.Canceled so the source does not advance", err)
	}
}

func TestMappingFilter(t *testing.T) {
	h := &handlerIntegration{fn: func(int, events.DynamoDBEvent) (any, error) { return nil, nil }}
	m := newTarget(TargetConfig{Filter: &Filter{EventNames: []string{"INSERT"}}}, h)
	recs := records(1, 3)
	recs[1].EventName = "REMOVE"
	if err := m.Handle(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{seqNo(1), seqNo(3)}}
	if got := h.invocations(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("invocations %v, want %v", got, want)
	}
	// Nothing passes: no invocation at all.
	m = newTarget(TargetConfig{Filter: &Filter{EventNames: []string{"MODIFY"}}}, h)
	if err := m.Handle(context.Background(), "s", recs); err != nil {
		t.Fatal(err)
	}
	if n := len(h.invocations()); n != 1 {
		t.Fatalf("%d invocations, want none more", n-1)
	}
}

func TestMappingBatching(t *testing.T) {
	m := newTarget(TargetConfig{BatchSize: 500, MaximumBatchingWindowInSeconds: 2}, nil)
	size, window := BatchOptions(m)
	if size != 500 || window != 2*time.Second {
		t.Fatalf("BatchOptions = %d, %v", size, window)
	}
	size, window = BatchOptions(HandlerFunc(func(context.Context, string, []Record) error { return nil }))
	if size != DefaultBatchSize || window != 0 {
		t.Fatalf("BatchOptions of a plain handler = %d, %v", size, window)
	}
}

func atLeast(h *handlerIntegration, n int) error {
	if got := len(h.invocations()); got < n {
		return fmt.Errorf("%d invocations, want at least %d", got, n)
	}
	return nil
}

// TestMappingFilterCriteria: records matching no filter are not invoked
// with and are counted; the batch is cut from the ones that pass. Keys are
// N attributes: strings in the record, so they match by their text.
func TestMappingFilterCriteria(t *testing.T) {
	h := &handlerIntegration{fn: func(int, events.DynamoDBEvent) (any, error) { return nil, nil }}
	fc := &eventfilter.Criteria{Filters: []eventfilter.Filter{
		{Pattern: `{"dynamodb":{"Keys":{"id":{"N":["2","5"]}}}}`},
		{Pattern: `{"dynamodb":{"Keys":{"id":{"N":[{"prefix":"1"}]}}}}`},
	}}
	m := newTarget(TargetConfig{BatchSize: 2, FilterCriteria: fc}, h)
	if err := m.Handle(context.Background(), "s", records(1, 12)); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{seqNo(1), seqNo(2)}, {seqNo(5), seqNo(10)}, {seqNo(11), seqNo(12)}}
	if got := h.invocations(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("invocations %v, want %v", got, want)
	}
	if st := m.Stats(); st.Invocations != 3 || st.Filtered != 6 {
		t.Fatalf("stats %+v", st)
	}

	none := newTarget(TargetConfig{FilterCriteria: &eventfilter.Criteria{Filters: []eventfilter.Filter{{Pattern: `{"eventName":["REMOVE"]}`}}}}, h)
	if err := none.Handle(context.Background(), "s", records(1, 3)); err != nil {
		t.Fatal(err)
	}
	if st := none.Stats(); st.Invocations != 0 || st.Filtered != 3 {
		t.Fatalf("all filtered: stats %+v", st)
	}

	bad := newTarget(TargetConfig{FilterCriteria: &eventfilter.Criteria{Filters: []eventfilter.Filter{{Pattern: `{"a":1}`}}}}, h)
	if err := bad.Handle(context.Background(), "s", records(1, 1)); !IsPermanent(err) {
		t.Fatalf("invalid criteria, unvalidated: %v, want a permanent error", err)
	}
}

// TestGroupTargetFilterCriteria: a group target drops what matches no
// filter and counts it as filtered.
func TestGroupTargetFilterCriteria(t *testing.T) {
	p := &groupRecorder{members: 1}
	cfg := TargetConfig{Group: "orders", FilterCriteria: &eventfilter.Criteria{Filters: []eventfilter.Filter{
		{Pattern: `{"eventName":["INSERT"],"dynamodb":{"NewImage":{"id":{"N":[{"anything-but":["2"]}]}}}}`},
	}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g := NewGroupTarget(cfg, p)
	if err := g.Handle(context.Background(), "s", records(1, 3)); err != nil {
		t.Fatal(err)
	}
	if got, want := g.Stats(), (GroupStats{Published: 2, Filtered: 1, Queued: 2}); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	cfg.FilterCriteria.Filters[0].Pattern = `{"eventName":"INSERT"}`
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "filterCriteria.filters[0].pattern: eventName: want a list") {
		t.Fatalf("Validate: %v", err)
	}
}

// pacer is a PacingPublisher that records, for each Pace, how many
// records and bytes were published since the one before.
type pacer struct {
	groupRecorder
	recs, bytes int
	n, b        int   // since the last Pace
	steps       []int // records between Paces
	stepBytes   []int
	doneCtx     int // Paces given a context that had ended
}

func (p *pacer) PaceEvery() (int, int) { return p.recs, p.bytes }

func (p *pacer) Pace(ctx context.Context, group string) {
	if group != "orders" {
		panic(group)
	}
	if ctx.Err() != nil {
		p.doneCtx++
	}
	p.steps, p.stepBytes = append(p.steps, p.n), append(p.stepBytes, p.b)
	p.n, p.b = 0, 0
}

func (p *pacer) PublishCounted(ctx context.Context, group string, data []byte) (int, int, error) {
	p.n++
	p.b += len(data)
	return p.groupRecorder.PublishCounted(ctx, group, data)
}

// TestGroupTargetPaces: a group target with a PacingPublisher publishes in
// steps of PaceEvery's records or bytes, whichever comes first, counted
// across Handle calls; a record larger than the bytes goes alone; 0
// turns pacing off.
func TestGroupTargetPaces(t *testing.T) {
	size := len(mustJSON(t, records(100, 1)[0])) // every record from 100 to 999 has this size
	for _, tc := range []struct {
		name        string
		recs, bytes int
		batches     []int // records per Handle call
		steps       []int
	}{
		{name: "records", recs: 4, bytes: 1 << 20, batches: []int{10}, steps: []int{4, 4}},
		{name: "across calls", recs: 4, bytes: 1 << 20, batches: []int{3, 3, 3}, steps: []int{4, 4}},
		{name: "bytes", recs: 100, bytes: 3*size + size/2, batches: []int{10}, steps: []int{3, 3, 3}},
		{name: "record larger than the bytes", recs: 100, bytes: size / 2, batches: []int{3}, steps: []int{1, 1}},
		{name: "off", recs: 0, bytes: 1 << 20, batches: []int{10}, steps: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pacer{recs: tc.recs, bytes: tc.bytes}
			g := NewGroupTarget(TargetConfig{Group: "orders"}, p)
			first := 100
			for _, n := range tc.batches {
				if err := g.Handle(context.Background(), "s", records(first, n)); err != nil {
					t.Fatal(err)
				}
				first += n
			}
			if !slices.Equal(p.steps, tc.steps) {
				t.Fatalf("records between paces %v, want %v", p.steps, tc.steps)
			}
			for _, b := range p.stepBytes {
				if b > tc.bytes && b > size {
					t.Fatalf("a step of %d bytes, past %d", b, tc.bytes)
				}
			}
			if got := len(p.got); got != first-100 {
				t.Fatalf("published %d records, want %d", got, first-100)
			}
		})
	}
}

// cutPacer is a pacer that also flushes (FlushingPublisher), and whose
// Pace number cutAt ends the batch's context (a stop's grace running
// out, or a lease lost, while the batch waits).
type cutPacer struct {
	pacer
	cutAt   int
	cancel  context.CancelCauseFunc
	cutSeen bool // the Pace that cut saw its own context end
	flushes int
}

func (p *cutPacer) Pace(ctx context.Context, group string) {
	p.pacer.Pace(ctx, group)
	if len(p.steps) == p.cutAt {
		p.cancel(errGraceOver)
		p.cutSeen = ctx.Err() != nil
	}
}

func (p *cutPacer) Flush(context.Context) error { p.flushes++; return nil }

var errGraceOver = errors.New("delivery grace over")

// TestGroupTargetStopsWhenCut: a batch whose context ends (the delivery
// grace of a stop ran out, the lease was lost) publishes nothing more and
// does not flush; it fails with the context's cause, so the source does
// not advance and the next run delivers it again, paced. Pace gets the
// batch's context, so a wait under way ends with it. Before, Pace got a
// context that did not end and the rest of the batch went out in paced
// steps, each up to hub.PaceWait, or PaceWait and twice the request
// timeout for a cluster node that answers late: a stop of a stream with
// up to MaxBatchSize records in hand waited that many steps. (Before
// that, the ended context made each Pace return at once and the rest
// went out as one burst, which members skipped.)
func TestGroupTargetStopsWhenCut(t *testing.T) {
	t.Run("during a pace", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		p := &cutPacer{pacer: pacer{recs: 4, bytes: 1 << 20}, cutAt: 2, cancel: cancel}
		g := NewGroupTarget(TargetConfig{Group: "orders"}, p)
		err := g.Handle(ctx, "s", records(100, 10))
		if !errors.Is(err, errGraceOver) {
			t.Fatalf("Handle: %v, want the cause %v", err, errGraceOver)
		}
		if !p.cutSeen {
			t.Fatal("the cut did not reach the Pace under way")
		}
		if len(p.got) != 8 || p.flushes != 0 {
			t.Fatalf("%d published, %d flushes; want the 8 before the cut, none", len(p.got), p.flushes)
		}
		if st := g.Stats(); st.Published != 8 {
			t.Fatalf("stats %+v, want 8 published", st)
		}
	})
	t.Run("before the call", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errGraceOver)
		p := &cutPacer{pacer: pacer{recs: 4, bytes: 1 << 20}}
		g := NewGroupTarget(TargetConfig{Group: "orders"}, p)
		if err := g.Handle(ctx, "s", records(100, 10)); !errors.Is(err, errGraceOver) {
			t.Fatalf("Handle: %v, want the cause %v", err, errGraceOver)
		}
		if len(p.got) != 0 || p.flushes != 0 {
			t.Fatalf("%d published, %d flushes; want none", len(p.got), p.flushes)
		}
	})
	t.Run("uncut", func(t *testing.T) {
		p := &cutPacer{pacer: pacer{recs: 4, bytes: 1 << 20}}
		g := NewGroupTarget(TargetConfig{Group: "orders"}, p)
		if err := g.Handle(context.Background(), "s", records(100, 10)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.steps, []int{4, 4}) || len(p.got) != 10 || p.flushes != 1 || p.doneCtx != 0 {
			t.Fatalf("steps %v, %d published, %d flushes, %d paces with an ended context; want [4 4], 10, 1, 0",
				p.steps, len(p.got), p.flushes, p.doneCtx)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
