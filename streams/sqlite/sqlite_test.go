package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

const wait = 10 * time.Second

// cli runs statements with the sqlite3 CLI, another process writing the
// same file as any application would.
func cli(t testing.TB, path, sql string) {
	t.Helper()
	bin := testenv.LookPath(t, "sqlite3", "apt-get install -y sqlite3")
	out, err := exec.Command(bin, "-bail", "-cmd", ".timeout 5000", path, sql).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v: %s", sql, err, out)
	}
}

// cliQuery returns what the sqlite3 CLI prints for a query.
func cliQuery(t testing.TB, path, sql string) string {
	t.Helper()
	bin := testenv.LookPath(t, "sqlite3", "apt-get install -y sqlite3")
	out, err := exec.Command(bin, "-cmd", ".timeout 5000", path, sql).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func logger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newSource creates the file with schema (through the CLI), a source on
// tables, and installs its triggers.
func newSource(t testing.TB, schema string, tables ...string) (*Source, string) {
	t.Helper()
	// Characters a file: URI would misread.
	path := filepath.Join(t.TempDir(), "app ?#%.db")
	cli(t, path, schema)
	src, err := New(streams.SourceConfig{Type: "sqlite", Path: path, Tables: tables}, logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.trimDelay = 10 * time.Millisecond
	return src, path
}

// run starts src.Run; the returned stop cancels it and returns Run's error.
func run(t testing.TB, src *Source, h streams.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func attrs(m map[string]events.DynamoDBAttributeValue) string {
	if m == nil {
		return "nil"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestCLIWritesBecomeRecords(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);
		CREATE TABLE rooms(name TEXT PRIMARY KEY, topic TEXT);`, "items", "rooms")
	c := &streamtest.Collector{}
	run(t, src, c)

	cli(t, path, `INSERT INTO items VALUES (1, 'apple');`)
	cli(t, path, `UPDATE items SET name = 'pear' WHERE id = 1;`)
	cli(t, path, `INSERT INTO rooms VALUES ('lobby', 'hi'); DELETE FROM items WHERE id = 1;`)
	recs := c.WaitRecords(t, wait, 4)

	// Through JSON as a Lambda handler would read them.
	payload, err := json.Marshal(events.DynamoDBEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatalf("aws-lambda-go cannot decode the event: %v\n%s", err, payload)
	}
	want := []struct {
		name, table, keys, newImage, oldImage string
	}{
		{"INSERT", "items", `{"id":{"N":"1"}}`, `{"id":{"N":"1"},"name":{"S":"apple"}}`, "nil"},
		{"MODIFY", "items", `{"id":{"N":"1"}}`, `{"id":{"N":"1"},"name":{"S":"pear"}}`, `{"id":{"N":"1"},"name":{"S":"apple"}}`},
		{"INSERT", "rooms", `{"name":{"S":"lobby"}}`, `{"name":{"S":"lobby"},"topic":{"S":"hi"}}`, "nil"},
		{"REMOVE", "items", `{"id":{"N":"1"}}`, "nil", `{"id":{"N":"1"},"name":{"S":"pear"}}`},
	}
	if len(ev.Records) != len(want) {
		t.Fatalf("%d records, want %d", len(ev.Records), len(want))
	}
	ids := map[string]bool{}
	for i, r := range ev.Records {
		w := want[i]
		if r.EventName != w.name || attrs(r.Change.Keys) != w.keys || attrs(r.Change.NewImage) != w.newImage || attrs(r.Change.OldImage) != w.oldImage {
			t.Errorf("record %d: %s keys %s new %s old %s; want %+v", i, r.EventName,
				attrs(r.Change.Keys), attrs(r.Change.NewImage), attrs(r.Change.OldImage), w)
		}
		if r.EventSourceArn != StreamARN("us-east-1", w.table) ||
			r.EventSourceArn != "arn:aws:dynamodb:us-east-1:000000000000:table/"+w.table+"/stream/1970-01-01T00:00:00.000" {
			t.Errorf("record %d: eventSourceARN %s", i, r.EventSourceArn)
		}
		if r.EventSource != "aws:dynamodb" || r.EventVersion != "1.1" || r.AWSRegion != "us-east-1" ||
			r.Change.StreamViewType != "NEW_AND_OLD_IMAGES" || r.Change.SizeBytes <= 0 {
			t.Errorf("record %d: %+v", i, r)
		}
		if age := time.Since(r.Change.ApproximateCreationDateTime.Time); age < 0 || age > time.Minute {
			t.Errorf("record %d: ApproximateCreationDateTime %v", i, r.Change.ApproximateCreationDateTime.Time)
		}
		if i > 0 && r.Change.SequenceNumber <= ev.Records[i-1].Change.SequenceNumber {
			t.Errorf("sequence numbers not increasing: %s after %s", r.Change.SequenceNumber, ev.Records[i-1].Change.SequenceNumber)
		}
		if ids[r.EventID] {
			t.Errorf("eventID %s repeated", r.EventID)
		}
		ids[r.EventID] = true
	}
	testenv.Eventually(t, wait, func() error {
		if n := cliQuery(t, path, `SELECT count(*) FROM _wsgate_changes`); n != "0" {
			return fmt.Errorf("%s delivered rows left in the change log", n)
		}
		return nil
	})
	if st := src.Stats(); st.Delivered != 4 || st.LastError != "" {
		t.Fatalf("stats %+v", st)
	}
}

func TestTypes(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE v(k TEXT PRIMARY KEY, i INTEGER, big INTEGER, r REAL, b BLOB, n TEXT, untyped)`, "v")
	c := &streamtest.Collector{}
	run(t, src, c)
	cli(t, path, `INSERT INTO v VALUES ('x', -42, 9007199254740993, 1.5, x'00ff10', NULL, 'it''s "quoted"');`)
	r := c.WaitRecords(t, wait, 1)[0]
	img := r.Change.NewImage
	checks := []struct {
		col  string
		want string
	}{
		{"k", `{"S":"x"}`},
		{"i", `{"N":"-42"}`},
		{"big", `{"N":"9007199254740993"}`},
		{"r", `{"N":"1.5"}`},
		{"b", `{"B":"AP8Q"}`},
		{"n", `{"NULL":true}`},
		{"untyped", `{"S":"it's \"quoted\""}`},
	}
	for _, ch := range checks {
		got, _ := json.Marshal(img[ch.col])
		if string(got) != ch.want {
			t.Errorf("%s = %s, want %s", ch.col, got, ch.want)
		}
	}
	if b := img["b"].Binary(); !slices.Equal(b, []byte{0, 0xff, 0x10}) {
		t.Errorf("blob = %x", b)
	}
}

func TestRowidAndKeyChanges(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE log(msg TEXT); CREATE TABLE kv(a TEXT, b INTEGER, v TEXT, PRIMARY KEY (b, a));`, "log", "kv")
	c := &streamtest.Collector{}
	run(t, src, c)
	cli(t, path, `INSERT INTO log VALUES ('hello');
		INSERT INTO kv VALUES ('x', 1, 'one');
		UPDATE kv SET v = 'one' WHERE a = 'x';
		UPDATE kv SET b = 2 WHERE a = 'x';
		INSERT INTO log VALUES ('done');`)
	recs := c.WaitRecords(t, wait, 5)
	var got []string
	for _, r := range recs {
		got = append(got, r.EventName+" "+attrs(r.Change.Keys))
	}
	want := []string{
		`INSERT {"rowid":{"N":"1"}}`,
		`INSERT {"a":{"S":"x"},"b":{"N":"1"}}`,
		// The update that changes nothing is not logged; the key change
		// is a REMOVE and an INSERT, as DynamoDB cannot change a key.
		`REMOVE {"a":{"S":"x"},"b":{"N":"1"}}`,
		`INSERT {"a":{"S":"x"},"b":{"N":"2"}}`,
		`INSERT {"rowid":{"N":"2"}}`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRestartLosesNothing(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY, n INTEGER)`, "items")
	// Only stopping trims the log here, so a clean stop is what keeps the
	// next source from redelivering.
	src.trimDelay = time.Hour
	c := &streamtest.Collector{}
	stop := run(t, src, c)
	cli(t, path, `INSERT INTO items VALUES (1, 0); INSERT INTO items VALUES (2, 0); INSERT INTO items VALUES (3, 0);`)
	c.WaitRecords(t, wait, 3)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Written while no source runs.
	cli(t, path, `INSERT INTO items VALUES (4, 0); UPDATE items SET n = 1 WHERE id = 1;`)
	cli(t, path, `DELETE FROM items WHERE id = 2;`)

	src2, err := New(streams.SourceConfig{Type: "sqlite", Path: path, Tables: []string{"items"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	run(t, src2, c)
	cli(t, path, `INSERT INTO items VALUES (5, 0);`)
	recs := c.WaitRecords(t, wait, 7)
	var got []string
	for i, r := range recs {
		got = append(got, r.EventName+" "+r.Change.Keys["id"].Number())
		if i > 0 && r.Change.SequenceNumber <= recs[i-1].Change.SequenceNumber {
			t.Errorf("out of order or repeated: %s after %s", r.Change.SequenceNumber, recs[i-1].Change.SequenceNumber)
		}
	}
	want := []string{"INSERT 1", "INSERT 2", "INSERT 3", "INSERT 4", "MODIFY 1", "REMOVE 2", "INSERT 5"}
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
}

func TestHandlerErrorRedelivers(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	c := streamtest.Refusing(func(call int, _ streamtest.Batch) error {
		if call <= 2 {
			return errors.New("target down")
		}
		return nil
	})
	run(t, src, c)
	// One transaction: both changes come in the first offer.
	cli(t, path, `BEGIN; INSERT INTO items VALUES (1); INSERT INTO items VALUES (2); COMMIT;`)
	recs := c.WaitRecords(t, wait, 2)
	offers := c.Offers()
	if len(offers) != 3 {
		t.Fatalf("%d offers, want 3", len(offers))
	}
	for _, o := range offers {
		if r := o.Records; len(r) != 2 || r[0].EventID != recs[0].EventID || r[1].EventID != recs[1].EventID {
			t.Fatalf("offer %v differs from the accepted records", r)
		}
	}
	if st := src.Stats(); st.Delivered != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Trimmed right after the handler accepted.
	testenv.Eventually(t, wait, func() error {
		if n := cliQuery(t, path, `SELECT count(*) FROM _wsgate_changes`); n != "0" {
			return fmt.Errorf("%s rows left", n)
		}
		return nil
	})
}

// TestOldestPendingWhileHandlerRefuses: Stats reports the log time of the
// change the handler keeps refusing, and nothing once it is accepted.
func TestOldestPendingWhileHandlerRefuses(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	h := streamtest.Refusing(streamtest.FailFirst(1 << 30))
	run(t, src, h)
	cli(t, path, `INSERT INTO items VALUES (1)`)
	streamtest.CheckOldestPending(t, wait, h, src.Stats)
}

func TestSchemaChange(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT)`, "items")
	before := cliQuery(t, path, `SELECT group_concat(sql, ';') FROM sqlite_master WHERE type = 'trigger'`)
	if err := src.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again := cliQuery(t, path, `SELECT group_concat(sql, ';') FROM sqlite_master WHERE type = 'trigger'`); again != before {
		t.Fatal("installing again changed the triggers")
	}
	if n := cliQuery(t, path, `SELECT count(*) FROM sqlite_master WHERE type = 'trigger'`); n != "4" {
		t.Fatalf("%s triggers, want 4", n)
	}

	c := &streamtest.Collector{}
	run(t, src, c)
	cli(t, path, `ALTER TABLE items ADD COLUMN price REAL`)
	testenv.Eventually(t, wait, func() error {
		if !strings.Contains(cliQuery(t, path, `SELECT sql FROM sqlite_master WHERE name = '_wsgate_items_insert'`), "price") {
			return errors.New("triggers not rebuilt for the new column")
		}
		return nil
	})
	cli(t, path, `INSERT INTO items VALUES (1, 'tea', 2.25)`)
	r := c.WaitRecords(t, wait, 1)[0]
	if got := attrs(r.Change.NewImage); got != `{"id":{"N":"1"},"name":{"S":"tea"},"price":{"N":"2.25"}}` {
		t.Fatalf("NewImage %s", got)
	}
}

func TestFatalErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	cli(t, path, `CREATE TABLE items(id INTEGER PRIMARY KEY)`)
	no := false
	tests := []struct {
		name, want string
		cfg        streams.SourceConfig
	}{
		{"missing table", "does not exist", streams.SourceConfig{Path: path, Tables: []string{"nope"}}},
		{"missing file", "unable to open", streams.SourceConfig{Path: path + ".missing", Tables: []string{"items"}}},
		{"create false without triggers", "create is false", streams.SourceConfig{Path: path, Tables: []string{"items"}, Create: &no}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := New(tc.cfg, logger())
			if err != nil {
				t.Fatal(err)
			}
			err = src.Run(context.Background(), &streamtest.Collector{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(streams.SourceConfig{Type: "postgres", Path: path}, logger()); err == nil {
		t.Fatal("New accepted a postgres config")
	}
}

func TestCreateFalseWithTriggers(t *testing.T) {
	_, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	no := false
	src2, err := New(streams.SourceConfig{Path: path, Tables: []string{"items"}, Create: &no, Region: "eu-west-1"}, logger())
	if err != nil {
		t.Fatal(err)
	}
	c := &streamtest.Collector{}
	run(t, src2, c)
	cli(t, path, `INSERT INTO items VALUES (7)`)
	if r := c.WaitRecords(t, wait, 1)[0]; r.AWSRegion != "eu-west-1" || !strings.HasPrefix(r.EventSourceArn, "arn:aws:dynamodb:eu-west-1:") {
		t.Fatalf("region not applied: %s %s", r.AWSRegion, r.EventSourceArn)
	}
}

func TestBatching(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	// Size 3, and a window far longer than the test: the first Handle
	// can only come when 3 records are there.
	c := &streamtest.Collector{Size: 3, Window: time.Hour}
	run(t, src, c)
	cli(t, path, `INSERT INTO items VALUES (1); INSERT INTO items VALUES (2);`)
	cli(t, path, `INSERT INTO items VALUES (3); INSERT INTO items VALUES (4);`)
	c.WaitRecords(t, wait, 3)
	if o := c.Offers(); len(o[0].Records) != 3 {
		t.Fatalf("first batch has %d records, want 3", len(o[0].Records))
	}

	// Without a window, the batch size still caps a Handle call.
	src2, path2 := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	var values []string
	for i := range 250 {
		values = append(values, fmt.Sprintf("(%d)", i))
	}
	cli(t, path2, `INSERT INTO items VALUES `+strings.Join(values, ","))
	c2 := &streamtest.Collector{}
	run(t, src2, c2)
	c2.WaitRecords(t, wait, 250)
	for _, o := range c2.Offers() {
		if len(o.Records) > streams.DefaultBatchSize {
			t.Fatalf("a batch of %d records, more than %d", len(o.Records), streams.DefaultBatchSize)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE "odd ""name"""(id INTEGER PRIMARY KEY, "the value" INTEGER)`, `odd "name"`)
	c := &streamtest.Collector{}
	run(t, src, c)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var sql strings.Builder
			for i := range each {
				// Separate transactions, each a commit the source races.
				fmt.Fprintf(&sql, `INSERT INTO "odd ""name""" VALUES (%d, 0); UPDATE "odd ""name""" SET "the value" = 1 WHERE id = %d;`, w*each+i, w*each+i)
			}
			cli(t, path, sql.String())
		})
	}
	wg.Wait()
	recs := c.WaitRecords(t, wait, 2*writers*each)
	if len(recs) != 2*writers*each {
		t.Fatalf("%d records, want %d", len(recs), 2*writers*each)
	}
	seen := map[string]string{} // id -> last eventName
	for _, r := range recs {
		id := r.Change.Keys["id"].Number()
		switch r.EventName {
		case "INSERT":
			if seen[id] != "" {
				t.Fatalf("id %s: INSERT after %s", id, seen[id])
			}
		case "MODIFY":
			if seen[id] != "INSERT" || r.Change.NewImage["the value"].Number() != "1" {
				t.Fatalf("id %s: MODIFY after %q with %s", id, seen[id], attrs(r.Change.NewImage))
			}
		}
		seen[id] = r.EventName
		if !strings.Contains(r.EventSourceArn, `table/odd "name"/stream/`) {
			t.Fatalf("eventSourceARN %s", r.EventSourceArn)
		}
	}
}

// lambdaHandler is an integration.Integration running an in-process Go
// function over the decoded DynamoDBEvent, as a Lambda function would.
type lambdaHandler func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

func (f lambdaHandler) Invoke(ctx context.Context, inv *integration.Invocation) ([]byte, error) {
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(inv.Payload, &ev); err != nil {
		return nil, &integration.FunctionError{Type: "Runtime.UnmarshalError", Message: err.Error()}
	}
	resp, err := f(ev)
	if err != nil {
		return nil, &integration.FunctionError{Type: "errorString", Message: err.Error()}
	}
	return json.Marshal(resp)
}

func (f lambdaHandler) Close() error { return nil }

func TestMappingTargetEndToEnd(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT)`, "orders")
	var mu sync.Mutex
	var processed []string
	fn := lambdaHandler(func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		var resp events.DynamoDBEventResponse
		for _, r := range ev.Records {
			if r.Change.NewImage["item"].String() == "poison" {
				// Report it, and everything after it is retried.
				resp.BatchItemFailures = append(resp.BatchItemFailures,
					events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
				return resp, nil
			}
			processed = append(processed, r.Change.NewImage["item"].String())
		}
		return resp, nil
	})
	retries := 1
	target := streams.NewMappingTarget(streams.TargetConfig{
		BatchSize: 10, ReportBatchItemFailures: true, MaximumRetryAttempts: &retries,
	}, fn, logger())
	target.Backoff = streams.Backoff{Min: time.Millisecond, Max: time.Millisecond}
	run(t, src, target)
	// One transaction: the three come in one batch.
	cli(t, path, `BEGIN; INSERT INTO orders VALUES (1, 'tea'); INSERT INTO orders VALUES (2, 'poison'); INSERT INTO orders VALUES (3, 'cake'); COMMIT;`)
	// Once tea is processed, the first batch is in flight and jam can
	// only come in a later one.
	testenv.Eventually(t, wait, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(processed) == 0 {
			return errors.New("nothing processed")
		}
		return nil
	})
	cli(t, path, `INSERT INTO orders VALUES (4, 'jam');`)
	testenv.Eventually(t, wait, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(processed, "jam") {
			return fmt.Errorf("processed %v", processed)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	// tea once; poison never; cake, behind poison in the same batch, given
	// up with it after one retry; then jam.
	if !slices.Equal(processed, []string{"tea", "jam"}) {
		t.Fatalf("processed %v", processed)
	}
	if st := target.Stats(); st.Discarded != 2 {
		t.Fatalf("target stats %+v: the poison batch was not given up", st)
	}
}

func TestWideTable(t *testing.T) {
	// 70 columns, 140 arguments: more than one json_object call can take in SQLite's
	// default limit of 127 function arguments.
	var cols, vals []string
	for i := range 70 {
		cols = append(cols, fmt.Sprintf("c%d INTEGER", i))
		vals = append(vals, fmt.Sprint(i))
	}
	src, path := newSource(t, `CREATE TABLE wide(`+strings.Join(cols, ", ")+`, PRIMARY KEY (c0))`, "wide")
	c := &streamtest.Collector{}
	run(t, src, c)
	cli(t, path, `INSERT INTO wide VALUES (`+strings.Join(vals, ", ")+`)`)
	img := c.WaitRecords(t, wait, 1)[0].Change.NewImage
	if len(img) != 70 || img["c69"].Number() != "69" || img["c60"].Number() != "60" {
		t.Fatalf("image of %d columns: %s", len(img), attrs(img))
	}
}

func TestChangeLogDroppedWhileRunning(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	c := &streamtest.Collector{}
	run(t, src, c)
	cli(t, path, `INSERT INTO items VALUES (1)`)
	c.WaitRecords(t, wait, 1)
	// Someone drops the log (and with it every pending change): the
	// source puts it back rather than stopping.
	cli(t, path, `DROP TABLE _wsgate_changes`)
	testenv.Eventually(t, wait, func() error {
		if n := cliQuery(t, path, `SELECT count(*) FROM sqlite_master WHERE name = '_wsgate_changes'`); n != "1" {
			return errors.New("change log not recreated")
		}
		return nil
	})
	cli(t, path, `INSERT INTO items VALUES (2)`)
	if r := c.WaitRecords(t, wait, 2)[1]; r.Change.Keys["id"].Number() != "2" {
		t.Fatalf("record after recreation: %s", attrs(r.Change.Keys))
	}
}

func TestUninstall(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE a(id INTEGER PRIMARY KEY); CREATE TABLE b(id INTEGER PRIMARY KEY)`, "a", "b")
	cli(t, path, `INSERT INTO a VALUES (1); INSERT INTO b VALUES (1);`)
	onlyA, err := New(streams.SourceConfig{Path: path, Tables: []string{"a"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := onlyA.Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	cli(t, path, `INSERT INTO a VALUES (2); INSERT INTO b VALUES (2);`)
	if got := cliQuery(t, path, `SELECT group_concat(tbl) FROM _wsgate_changes`); got != "b,b" {
		t.Fatalf("change log holds %q, want only b's changes", got)
	}
	if err := src.Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := cliQuery(t, path, `SELECT count(*) FROM sqlite_master WHERE name LIKE '\_wsgate\_%' ESCAPE '\'`); got != "0" {
		t.Fatalf("%s wsgate objects left", got)
	}
	cli(t, path, `INSERT INTO a VALUES (3); INSERT INTO b VALUES (3);`) // plain writes work again
}
