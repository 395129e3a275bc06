package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/internal/streamtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// valueCase is one stored value and the attribute it must become.
type valueCase struct {
	name string
	sql  string // the value as SQL (cli) or
	arg  any    // as a bound parameter (Go writer)
	want string // the attribute as JSON
}

var pointOne = 0.1 // a variable: 0.1 + 0.2 in constants is 0.3

// edgeValues are the values of every storage class at their edges.
var edgeValues = []valueCase{
	{name: "null", sql: `NULL`, arg: nil, want: `{"NULL":true}`},
	{name: "NaN is NULL in SQLite", sql: `1e999 - 1e999`, arg: math.NaN(), want: `{"NULL":true}`},
	{name: "max int64", sql: `9223372036854775807`, arg: int64(math.MaxInt64), want: `{"N":"9223372036854775807"}`},
	{name: "min int64", sql: `-9223372036854775808`, arg: int64(math.MinInt64), want: `{"N":"-9223372036854775808"}`},
	{name: "zero", sql: `0`, arg: int64(0), want: `{"N":"0"}`},
	{name: "+Inf", sql: `1e999`, arg: math.Inf(1), want: `{"N":"Infinity"}`},
	{name: "-Inf", sql: `-1e999`, arg: math.Inf(-1), want: `{"N":"-Infinity"}`},
	{name: "-0.0", sql: `-0.0`, arg: math.Copysign(0, -1), want: `{"N":"0"}`},
	{name: "0.1", sql: `0.1`, arg: 0.1, want: `{"N":"0.1"}`},
	{name: "0.1+0.2", sql: `0.1 + 0.2`, arg: pointOne + 0.2, want: `{"N":"0.30000000000000004"}`},
	{name: "integral real", sql: `3.0`, arg: 3.0, want: `{"N":"3"}`},
	{name: "large real", sql: `123456789012345678.0`, arg: 123456789012345678.0, want: `{"N":"123456789012345680"}`},
	{name: "huge real", sql: `1e300`, arg: 1e300, want: `{"N":"1e+300"}`},
	{name: "smallest subnormal", sql: `4.9e-324`, arg: 5e-324, want: `{"N":"5e-324"}`},
	{name: "text", sql: `'héllo ☃ 😀 "q" \'`, arg: `héllo ☃ 😀 "q" \`, want: `{"S":"héllo ☃ 😀 \"q\" \\"}`},
	{name: "empty text", sql: `''`, arg: "", want: `{"S":""}`},
	{name: "embedded NUL", sql: `'a' || char(0) || 'b'`, arg: "a\x00b", want: `{"S":"a\u0000b"}`},
	{name: "invalid UTF-8 text is B", sql: `CAST(x'ff00fe' AS TEXT)`, arg: "\xff\x00\xfe", want: `{"B":"/wD+"}`},
	{name: "json object", sql: `json('{ "a" : 1 }')`, want: `{"S":"{\"a\":1}"}`},
	{name: "json array", sql: `json_array(1, 'x')`, want: `{"S":"[1,\"x\"]"}`},
	{name: "json number", sql: `json('3')`, want: `{"S":"3"}`},
	{name: "json quoted", sql: `json_quote('q')`, want: `{"S":"\"q\""}`},
	{name: "blob", sql: `x'00ff10'`, arg: []byte{0, 0xff, 0x10}, want: `{"B":"AP8Q"}`},
	{name: "empty blob", sql: `x''`, arg: []byte{}, want: `{"B":""}`},
	{name: "zeroblob", sql: `zeroblob(3)`, want: `{"B":"AAAA"}`},
}

// wantRecords checks that the records carry, in order, the values of cases
// in column x (new image, and the key when keyed), then the marker row.
func wantRecords(t *testing.T, recs []events.DynamoDBEventRecord, cases []valueCase, keyed bool) {
	t.Helper()
	// Through JSON as a Lambda function would read them.
	payload, err := json.Marshal(events.DynamoDBEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatalf("aws-lambda-go cannot decode the event: %v", err)
	}
	for i, tc := range cases {
		r := ev.Records[i]
		got, _ := json.Marshal(r.Change.NewImage["x"])
		if string(got) != tc.want {
			t.Errorf("%s: x = %s, want %s", tc.name, got, tc.want)
		}
		if keyed {
			if got, _ := json.Marshal(r.Change.Keys["x"]); string(got) != tc.want {
				t.Errorf("%s: key x = %s, want %s", tc.name, got, tc.want)
			}
		}
	}
	if last := ev.Records[len(cases)]; last.Change.NewImage["x"].String() != "after" {
		t.Errorf("last record %s, want the ordinary write after the edge values", attrs(last.Change.NewImage))
	}
}

func TestEdgeValuesCLI(t *testing.T) {
	// In a UTF-16 file TEXT has whole 16-bit units (SQLite drops an odd
	// last byte); what is not text there is a lone surrogate.
	notText := map[string]valueCase{
		"UTF-16le": {name: "lone surrogate is B", sql: `CAST(x'00d8' AS TEXT)`, want: `{"B":"ANg="}`},
		"UTF-16be": {name: "lone surrogate is B", sql: `CAST(x'd800' AS TEXT)`, want: `{"B":"2AA="}`},
	}
	for _, enc := range []string{"UTF-8", "UTF-16le", "UTF-16be"} {
		t.Run(enc, func(t *testing.T) {
			edgeValues := slices.Clone(edgeValues)
			if tc, ok := notText[enc]; ok {
				i := slices.IndexFunc(edgeValues, func(tc valueCase) bool { return tc.name == "invalid UTF-8 text is B" })
				edgeValues[i] = tc
			}
			src, path := newSource(t, fmt.Sprintf(`PRAGMA encoding = '%s'; CREATE TABLE v(k INTEGER PRIMARY KEY, x)`, enc), "v")
			c := &streamtest.Collector{}
			run(t, src, c)
			// One statement each: a single-row INSERT hands the trigger
			// the value as the expression produced it, JSON subtype and
			// all.
			var sql strings.Builder
			for _, tc := range edgeValues {
				fmt.Fprintf(&sql, "INSERT INTO v(x) VALUES (%s);\n", tc.sql)
			}
			sql.WriteString(`INSERT INTO v(x) VALUES ('after');`)
			cli(t, path, sql.String())
			wantRecords(t, c.WaitRecords(t, wait, len(edgeValues)+1), edgeValues, false)
		})
	}
}

func TestEdgeValuesAsKeys(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE v(x PRIMARY KEY, n INTEGER)`, "v")
	c := &streamtest.Collector{}
	run(t, src, c)
	var sql strings.Builder
	var cases []valueCase
	for _, tc := range edgeValues {
		if tc.want == `{"NULL":true}` || tc.name == "-0.0" {
			continue // not unique as keys
		}
		cases = append(cases, tc)
		fmt.Fprintf(&sql, "INSERT INTO v(x) VALUES (%s);\n", tc.sql)
	}
	sql.WriteString(`INSERT INTO v(x) VALUES ('after');`)
	cli(t, path, sql.String())
	wantRecords(t, c.WaitRecords(t, wait, len(cases)+1), cases, true)
}

func TestEdgeValuesUpdated(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE v(k INTEGER PRIMARY KEY, x)`, "v")
	c := &streamtest.Collector{}
	run(t, src, c)
	var sql strings.Builder
	sql.WriteString(`INSERT INTO v VALUES (1, NULL);`)
	for _, tc := range edgeValues {
		fmt.Fprintf(&sql, "UPDATE v SET x = %s WHERE k = 1;\n", tc.sql)
	}
	cli(t, path, sql.String())
	// NULL then NaN (NULL) change nothing, so are not logged: one INSERT,
	// then a MODIFY for each other value, its old image the one before.
	changed := edgeValues[2:]
	recs := c.WaitRecords(t, wait, 1+len(changed))
	prev := `{"NULL":true}`
	for i, tc := range changed {
		r := recs[1+i]
		newX, _ := json.Marshal(r.Change.NewImage["x"])
		oldX, _ := json.Marshal(r.Change.OldImage["x"])
		if r.EventName != "MODIFY" || string(newX) != tc.want || string(oldX) != prev {
			t.Errorf("%s: %s new %s old %s, want MODIFY new %s old %s", tc.name, r.EventName, newX, oldX, tc.want, prev)
		}
		prev = tc.want
	}
}

func TestEdgeValuesGoWriter(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE v(k INTEGER PRIMARY KEY, x)`, "v")
	c := &streamtest.Collector{}
	run(t, src, c)
	w, err := sql.Open("sqlite", fileURI(path)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Exact only from SQLite 3.43 (what wsgate embeds): an older
	// library's printf can be off in the 17th digit at the extremes.
	cases := append(slices.Clone(edgeValues), valueCase{name: "max float64", arg: math.MaxFloat64, want: `{"N":"1.7976931348623157e+308"}`})
	for _, tc := range cases {
		var err error
		if tc.arg != nil || tc.name == "null" {
			_, err = w.ExecContext(context.Background(), `INSERT INTO v(x) VALUES (?)`, tc.arg)
		} else {
			_, err = w.ExecContext(context.Background(), `INSERT INTO v(x) VALUES (`+tc.sql+`)`)
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if _, err := w.Exec(`INSERT INTO v(x) VALUES ('after')`); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, c.WaitRecords(t, wait, len(cases)+1), cases, false)
}

func TestUndecodableChangeSetAside(t *testing.T) {
	src, path := newSource(t, `CREATE TABLE items(id INTEGER PRIMARY KEY)`, "items")
	c := &streamtest.Collector{}
	stop := run(t, src, c)
	// Rows the triggers never write: hand-edited, of other types than
	// the log's, or of a future format.
	bad := []string{
		`'items', 'INSERT', '{"id":"i1"}', '{"id":["blob","zz"]}', NULL, 1`,
		`'items', 'INSERT', '{"id":"i1"}', x'7b7d', NULL, 'yesterday'`,
		`'items', 'UPSERT', '{"id":"i1"}', '{"id":"i1"}', NULL, 1`,
		`'items', 'INSERT', 42, '{"id":"i1"}', NULL, 1`,
		`'items', 'INSERT', '{"id":"i1"}', '{"id":"q1"}', NULL, 1`,
		`'items', 'REMOVE', '{"id":"i1"}', NULL, NULL, 1`,
		`'items', 'INSERT', '{}', '{"id":"i1"}', NULL, 1`,
	}
	var sql strings.Builder
	sql.WriteString(`INSERT INTO items VALUES (1);`)
	for _, b := range bad {
		fmt.Fprintf(&sql, "INSERT INTO _wsgate_changes(tbl, op, keys_json, new_json, old_json, ts) VALUES (%s);\n", b)
	}
	sql.WriteString(`INSERT INTO items VALUES (2);`)
	cli(t, path, sql.String())
	// Neither blocks the changes after them.
	if got := keysOf(c.WaitRecords(t, wait, 2)); got[0] != "INSERT items 1" || got[1] != "INSERT items 2" {
		t.Fatalf("records %q", got)
	}
	testenv.Eventually(t, wait, func() error {
		if n := src.SetAside(); n != int64(len(bad)) {
			return fmt.Errorf("%d set aside, want %d", n, len(bad))
		}
		return nil
	})
	// Kept in the log for a person, out of the stream's way.
	if got := cliQuery(t, path, `SELECT count(*) FROM _wsgate_changes WHERE tbl = '`+rejectedPrefix+`items'`); got != fmt.Sprint(len(bad)) {
		t.Fatalf("%s rows kept, want %d", got, len(bad))
	}
	if n := len(c.Records()); n != 2 {
		t.Fatalf("%d records, want 2", n)
	}
	// The replay the package doc gives puts them back in the stream at the
	// next start, where they are set aside again.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cli(t, path, `UPDATE _wsgate_changes SET tbl = substr(tbl, 18) WHERE tbl LIKE '\_wsgate\_rejected:%' ESCAPE '\'`)
	if got := cliQuery(t, path, `SELECT count(*) FROM _wsgate_changes WHERE tbl = 'items'`); got != fmt.Sprint(len(bad)) {
		t.Fatalf("%s rows replayed, want %d", got, len(bad))
	}
	src2, err := New(streams.SourceConfig{Path: path, Tables: []string{"items"}}, logger())
	if err != nil {
		t.Fatal(err)
	}
	run(t, src2, c)
	testenv.Eventually(t, wait, func() error {
		if n := src2.SetAside(); n != int64(len(bad)) {
			return fmt.Errorf("%d set aside, want %d", n, len(bad))
		}
		return nil
	})
}
