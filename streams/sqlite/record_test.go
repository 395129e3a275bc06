package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// checkRecord checks what every decoded record must be: an operation
// with the images it implies, keys, and attributes that survive the trip
// through JSON to a Lambda function unchanged.
func checkRecord(t *testing.T, rec events.DynamoDBEventRecord) {
	t.Helper()
	switch rec.EventName {
	case "INSERT", "MODIFY", "REMOVE":
	default:
		t.Fatalf("eventName %q", rec.EventName)
	}
	if len(rec.Change.Keys) == 0 {
		t.Fatal("no keys")
	}
	for _, img := range []map[string]events.DynamoDBAttributeValue{rec.Change.Keys, rec.Change.NewImage, rec.Change.OldImage} {
		for name, v := range img {
			switch v.DataType() {
			case events.DataTypeString:
				if !utf8.ValidString(v.String()) {
					t.Fatalf("%s: S %q is not UTF-8", name, v.String())
				}
			case events.DataTypeNumber:
				if _, err := strconv.ParseFloat(v.Number(), 64); err != nil {
					t.Fatalf("%s: N %q is not a number", name, v.Number())
				}
			case events.DataTypeBinary, events.DataTypeNull:
			default:
				t.Fatalf("%s: type %v", name, v.DataType())
			}
		}
	}
	payload, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back events.DynamoDBEventRecord
	if err := json.Unmarshal(payload, &back); err != nil {
		t.Fatalf("aws-lambda-go cannot decode %s: %v", payload, err)
	}
	again, err := json.Marshal(back)
	if err != nil || !bytes.Equal(again, payload) {
		t.Fatalf("changed through JSON:\n%s\n%s", payload, again)
	}
}

// FuzzLogRow: whatever a log row holds (hand-edited, another version's,
// corrupt), decoding it yields a well-formed record or an error naming the
// change; the source sets a row that errors aside (TestUndecodableChange-
// SetAside), so no row can stall the stream.
func FuzzLogRow(f *testing.F) {
	for _, seed := range []struct {
		op                     string
		keys, newImage, oldImg string
		newNull, oldNull       bool
		ts                     float64
	}{
		{"INSERT", `{"id":"i1"}`, `{"id":"i1","n":"tE282AC","b":"b00FF","r":"rInf","z":"n","y":null}`, "", false, true, 1.7e9},
		{"MODIFY", `{"id":"i-9223372036854775808"}`, `{"x":"r-0.0"}`, `{"x":"r1.0e+300"}`, false, false, 1},
		{"REMOVE", `{"rowid":"i7"}`, "", `{"x":"t"}`, true, false, 0},
		// The earlier encoding, including what SQLite before 3.45 wrote
		// for an infinite REAL and a JSON-subtype TEXT.
		{"INSERT", `{"id":["integer",1]}`, `{"r":["real",Inf],"s":["real",-Inf],"j":["text",{"a":[1]}],"b":["blob","00"],"n":["null",null]}`, "", false, true, 2},
		{"INSERT", `{"id":["integer",1]}`, `{"r":["real",9.0e+999],"t":["text","x\u0000y"]}`, "", false, true, 2},
		// Not what the triggers write.
		{"INSERT", `{"id":"i1"}`, `{"id":["blob","zz"]}`, "", false, true, 1},
		{"UPSERT", `{"id":"i1"}`, `{"id":"i1"}`, "", false, true, 1},
		{"INSERT", `{}`, `{"id":"i1"}`, "", false, true, 1},
		{"INSERT", `{"id":"i99999999999999999999"}`, `{"id":"q"}`, "", false, true, math.NaN()},
		{"INSERT", `null`, `[]`, "", false, true, math.Inf(1)},
	} {
		f.Add(seed.op, []byte(seed.keys), []byte(seed.newImage), []byte(seed.oldImg), seed.newNull, seed.oldNull, seed.ts)
	}
	f.Fuzz(func(t *testing.T, op string, keys, newImage, oldImage []byte, newNull, oldNull bool, ts float64) {
		r := logRow{seq: 42, table: "items", op: op, keys: keys, newImage: newImage, oldImage: oldImage, ts: ts}
		if newNull {
			r.newImage = nil
		}
		if oldNull {
			r.oldImage = nil
		}
		for _, enc := range []textEncoding{utf8Text, utf16LE, utf16BE} {
			rec, err := r.record("us-east-1", enc)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "change 42: ") {
					t.Fatalf("error %q does not name the change", err)
				}
				continue
			}
			checkRecord(t, rec)
		}
	})
}

// FuzzTriggerValues: every value a writer can store, logged by the real
// triggers, decodes to the attribute that represents it (see value).
func FuzzTriggerValues(f *testing.F) {
	f.Add(int64(math.MinInt64), math.Inf(-1), []byte("\xff\x00"))
	f.Add(int64(0), math.Copysign(0, -1), []byte(`{"a":1}`))
	f.Add(int64(math.MaxInt64), 5e-324, []byte{})
	f.Add(int64(-1), math.MaxFloat64, []byte("héllo\x00"))
	// No fsync: each input is a few commits.
	db, err := sql.Open("sqlite", fileURI(filepath.Join(f.TempDir(), "fuzz.db"))+"?_pragma=synchronous(off)&_pragma=journal_mode(memory)")
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE v(k INTEGER PRIMARY KEY, i, r, t, b, j)`); err != nil {
		f.Fatal(err)
	}
	if _, err := install(ctx, conn, []string{"v"}, true); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, i int64, r float64, b []byte) {
		if b == nil {
			b = []byte{} // nil binds as NULL
		}
		_, err := conn.ExecContext(ctx, `INSERT INTO v(i, r, t, b, j) VALUES (?, ?, CAST(? AS TEXT), ?, json_quote(CAST(? AS TEXT)))`, i, r, b, b, b)
		if err != nil {
			t.Fatal(err)
		}
		var row logRow
		var ts any
		err = conn.QueryRowContext(ctx, `SELECT seq, tbl, op, keys_json, new_json, ts FROM `+ChangeTable+` ORDER BY seq DESC LIMIT 1`).
			Scan(&row.seq, &row.table, &row.op, &row.keys, &row.newImage, &ts)
		if err != nil {
			t.Fatal(err)
		}
		row.ts, row.tsErr = asFloat(ts)
		for _, table := range []string{"v", ChangeTable} {
			if _, err := conn.ExecContext(ctx, `DELETE FROM `+table); err != nil {
				t.Fatal(err)
			}
		}
		rec, err := row.record("us-east-1", utf8Text)
		if err != nil {
			t.Fatalf("a stored value does not decode: %v", err)
		}
		checkRecord(t, rec)
		img := rec.Change.NewImage
		if got, _ := json.Marshal(img["i"]); string(got) != `{"N":"`+strconv.FormatInt(i, 10)+`"}` {
			t.Errorf("INTEGER %d is %s", i, got)
		}
		if math.IsNaN(r) {
			if img["r"].DataType() != events.DataTypeNull {
				t.Errorf("NaN is %v, want NULL as SQLite stores it", img["r"].DataType())
			}
		} else if img["r"].DataType() != events.DataTypeNumber {
			t.Errorf("REAL %v is %v", r, img["r"].DataType())
		} else if got, err := strconv.ParseFloat(img["r"].Number(), 64); err != nil || got != r {
			t.Errorf("REAL %v is %q", r, img["r"].Number())
		}
		text, blob := events.NewStringAttribute(string(b)), events.NewBinaryAttribute(b)
		if !utf8.Valid(b) {
			text = blob
		}
		for _, c := range []struct {
			col  string
			want events.DynamoDBAttributeValue
		}{{"t", text}, {"b", blob}} {
			got, _ := json.Marshal(img[c.col])
			want, _ := json.Marshal(c.want)
			if !bytes.Equal(got, want) {
				t.Errorf("%q in %s is %s, want %s", b, c.col, got, want)
			}
		}
		if img["j"].DataType() != events.DataTypeString && img["j"].DataType() != events.DataTypeBinary {
			t.Errorf("JSON-subtype TEXT is %v", img["j"].DataType())
		}
	})
}
