package sqlite

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/streams"
)

// streamLabel is the fixed label of every SQLite stream ARN. A real label is
// the time the stream was enabled; a fixed one keeps the ARN stable across
// restarts and machines, which is what consumers key on.
const streamLabel = "1970-01-01T00:00:00.000"

// AccountID is the account in every SQLite stream ARN, as in DynamoDB Local.
const AccountID = "000000000000"

// StreamARN is the eventSourceARN of the records of a captured table:
// arn:aws:dynamodb:{region}:000000000000:table/{table}/stream/1970-01-01T00:00:00.000.
func StreamARN(region, table string) string {
	return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/%s", region, AccountID, table, streamLabel)
}

// SequenceNumber is the SequenceNumber of the change-log row seq: 21 zero
// padded decimal digits, so that string order is numeric order as with
// DynamoDB's sequence numbers.
func SequenceNumber(seq int64) string { return fmt.Sprintf("%021d", seq) }

// logRow is one row of the change log.
type logRow struct {
	seq                      int64
	table, op                string
	keys, newImage, oldImage []byte // JSON, nil for SQL NULL
	ts                       float64
	tsErr                    error // ts was not a number
}

// maxTS bounds a row's ts (Unix seconds): the year 10000.
const maxTS = 253402300800

// record converts a change-log row into a DynamoDB stream record, or says
// why the row is not one the triggers write. It never fails on a row the
// triggers wrote, whatever the values (see value).
func (r *logRow) record(region string, enc textEncoding) (streams.Record, error) {
	fail := func(format string, args ...any) (streams.Record, error) {
		return streams.Record{}, fmt.Errorf("change %d: %s", r.seq, fmt.Sprintf(format, args...))
	}
	switch {
	case r.tsErr != nil:
		return fail("ts: %v", r.tsErr)
	case !r.timed():
		return fail("ts %v out of range", r.ts)
	}
	// The images each operation has; the triggers write NULL for the
	// other one.
	var wantNew, wantOld bool
	switch r.op {
	case "INSERT":
		wantNew = true
	case "MODIFY":
		wantNew, wantOld = true, true
	case "REMOVE":
		wantOld = true
	default:
		return fail("unknown operation %q", clip(r.op))
	}
	keys, err := image(r.keys, enc)
	if err != nil {
		return fail("keys: %v", err)
	}
	if len(keys) == 0 {
		return fail("no keys")
	}
	newImage, err := image(r.newImage, enc)
	if err != nil {
		return fail("new image: %v", err)
	}
	oldImage, err := image(r.oldImage, enc)
	if err != nil {
		return fail("old image: %v", err)
	}
	if (newImage != nil) != wantNew || (oldImage != nil) != wantOld {
		return fail("%s with new image %t and old image %t", r.op, newImage != nil, oldImage != nil)
	}
	return streams.Record{
		EventID:        fmt.Sprintf("%032x", r.seq),
		EventName:      r.op,
		EventVersion:   "1.1",
		EventSource:    "aws:dynamodb",
		AWSRegion:      region,
		EventSourceArn: StreamARN(region, r.table),
		Change: events.DynamoDBStreamRecord{
			// Whole seconds, rounded down, as DynamoDB writes them.
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Unix(int64(math.Floor(r.ts)), 0)},
			Keys:                        keys,
			NewImage:                    newImage,
			OldImage:                    oldImage,
			SequenceNumber:              SequenceNumber(r.seq),
			SizeBytes:                   size(keys) + size(newImage) + size(oldImage),
			StreamViewType:              "NEW_AND_OLD_IMAGES",
		},
	}, nil
}

// timed reports whether ts is a time the triggers can have written (not
// NaN, not before 1970, before the year 10000).
func (r *logRow) timed() bool { return r.tsErr == nil && r.ts >= 0 && r.ts < maxTS }

// committed is when the change was written.
func (r *logRow) committed() time.Time {
	return time.UnixMilli(int64(math.Round(r.ts * 1000)))
}

// asBytes is a log column as read into any: TEXT and BLOB as their bytes,
// a number as its decimal text (which no image decodes), NULL as nil.
func asBytes(v any) []byte {
	switch v := v.(type) {
	case nil:
		return nil
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	return fmt.Append(nil, v)
}

// asFloat is the ts column as read into any.
func asFloat(v any) (float64, error) {
	switch v := v.(type) {
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case nil:
		return 0, errors.New("NULL")
	}
	f, err := strconv.ParseFloat(string(asBytes(v)), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", clip(string(asBytes(v))))
	}
	return f, nil
}

// textEncoding is a database's text encoding: TEXT in the log is in hex
// of its bytes as stored.
type textEncoding int

const (
	utf8Text textEncoding = iota
	utf16LE
	utf16BE
)

// image decodes the triggers' {"column":value,...} into DynamoDB
// attribute values; nil for SQL NULL.
func image(data []byte, enc textEncoding) (map[string]events.DynamoDBAttributeValue, error) {
	if data == nil {
		return nil, nil
	}
	var cols map[string]json.RawMessage
	if err := json.Unmarshal(data, &cols); err != nil {
		// Triggers before the current encoding logged an infinite REAL
		// as a bare Inf, which is not JSON (an SQLite before 3.45).
		fixed := bytes.ReplaceAll(bytes.ReplaceAll(data, []byte(`["real",Inf]`), []byte(`["real",9e999]`)),
			[]byte(`["real",-Inf]`), []byte(`["real",-9e999]`))
		if bytes.Equal(fixed, data) || json.Unmarshal(fixed, &cols) != nil {
			return nil, err
		}
	}
	if cols == nil {
		return nil, errors.New("not an object")
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(cols))
	for name, raw := range cols {
		v, err := value(raw, enc)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", clip(name), err)
		}
		out[name] = v
	}
	return out, nil
}

// value decodes one logged value (see encode in triggers.go) into the
// DynamoDB attribute that represents it faithfully:
//
//	NULL                    NULL (so is NaN, which SQLite stores as NULL)
//	INTEGER                 N, exact (all of int64)
//	REAL                    N, the shortest decimal that reads back as
//	                        the same double: plain below 1e21 and from
//	                        1e-7, else with an exponent ("1e+300"); -0.0
//	                        is "0"; +Inf and -Inf are "Infinity" and
//	                        "-Infinity", which JavaScript's Number, Python's
//	                        Decimal and Go's strconv read (DynamoDB itself
//	                        holds no infinity, nor magnitudes beyond
//	                        1e126)
//	TEXT, valid UTF-8       S, byte for byte (NUL included); a value made
//	                        by SQLite's JSON functions is its JSON text
//	TEXT, not valid UTF-8   B with the stored bytes, as S must be UTF-8
//	                        (UTF-16 files: TEXT that is not valid UTF-16)
//	BLOB                    B, empty included
//
// It also reads the [type, value] pairs triggers logged before this
// encoding, so changes pending across an upgrade are delivered.
func value(raw json.RawMessage, enc textEncoding) (events.DynamoDBAttributeValue, error) {
	var v events.DynamoDBAttributeValue
	switch {
	case string(raw) == "null":
		return events.NewNullAttribute(), nil
	case len(raw) > 0 && raw[0] == '[':
		return legacyValue(raw)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s == "" {
		return v, fmt.Errorf("not an encoded value: %s", clip(string(raw)))
	}
	body := s[1:]
	switch s[0] {
	case 'n':
		if body != "" {
			return v, fmt.Errorf("null %q", clip(body))
		}
		return events.NewNullAttribute(), nil
	case 'i':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return v, fmt.Errorf("integer %q", clip(body))
		}
		return events.NewNumberAttribute(strconv.FormatInt(n, 10)), nil
	case 'r':
		f, err := strconv.ParseFloat(body, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return v, fmt.Errorf("real %q", clip(body))
		}
		return realAttribute(f), nil
	case 't':
		b, err := hex.DecodeString(body)
		if err != nil {
			return v, fmt.Errorf("text: %w", err)
		}
		return textAttribute(b, enc), nil
	case 'b':
		b, err := hex.DecodeString(body)
		if err != nil {
			return v, fmt.Errorf("blob: %w", err)
		}
		return events.NewBinaryAttribute(b), nil
	}
	return v, fmt.Errorf("unknown value type %q", s[:1])
}

// legacyValue decodes the earlier encoding, [typeof, value] with BLOBs in
// hex.
func legacyValue(raw json.RawMessage) (events.DynamoDBAttributeValue, error) {
	var v events.DynamoDBAttributeValue
	var pair []json.RawMessage
	var typ string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 || json.Unmarshal(pair[0], &typ) != nil {
		return v, fmt.Errorf("not an encoded value: %s", clip(string(raw)))
	}
	val := pair[1]
	if string(val) == "null" {
		// A REAL that is NaN is null in SQLite's JSON too.
		return events.NewNullAttribute(), nil
	}
	switch typ {
	case "text":
		var s string
		if json.Unmarshal(val, &s) == nil {
			return events.NewStringAttribute(s), nil
		}
		// A value with SQLite's JSON subtype was embedded as JSON: its
		// text is what the column holds.
		var buf bytes.Buffer
		if err := json.Compact(&buf, val); err != nil {
			return v, err
		}
		return events.NewStringAttribute(buf.String()), nil
	case "integer", "real":
		var n json.Number
		if err := json.Unmarshal(val, &n); err != nil {
			return v, fmt.Errorf("%s %s", typ, clip(string(val)))
		}
		if i, err := n.Int64(); err == nil {
			return events.NewNumberAttribute(strconv.FormatInt(i, 10)), nil
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return v, fmt.Errorf("%s %s", typ, clip(string(val)))
		}
		return realAttribute(f), nil
	case "blob":
		var h string
		if err := json.Unmarshal(val, &h); err != nil {
			return v, err
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return v, err
		}
		return events.NewBinaryAttribute(b), nil
	}
	return v, fmt.Errorf("unknown SQLite type %q", clip(typ))
}

// realAttribute is the attribute of a REAL (see value).
func realAttribute(f float64) events.DynamoDBAttributeValue {
	var n string
	switch a := math.Abs(f); {
	case math.IsNaN(f):
		return events.NewNullAttribute()
	case math.IsInf(f, 1):
		n = "Infinity"
	case math.IsInf(f, -1):
		n = "-Infinity"
	case f == 0:
		n = "0"
	case a >= 1e-7 && a < 1e21:
		n = strconv.FormatFloat(f, 'f', -1, 64)
	default:
		n = strconv.FormatFloat(f, 'e', -1, 64)
	}
	return events.NewNumberAttribute(n)
}

// textAttribute is the attribute of a TEXT's stored bytes (see value).
func textAttribute(b []byte, enc textEncoding) events.DynamoDBAttributeValue {
	if enc == utf8Text {
		if utf8.Valid(b) {
			return events.NewStringAttribute(string(b))
		}
		return events.NewBinaryAttribute(b)
	}
	if len(b)%2 != 0 {
		return events.NewBinaryAttribute(b)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if enc == utf16BE {
		order = binary.BigEndian
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = order.Uint16(b[2*i:])
	}
	var out strings.Builder
	for i := 0; i < len(units); i++ {
		r := rune(units[i])
		if utf16.IsSurrogate(r) {
			if i+1 == len(units) {
				return events.NewBinaryAttribute(b)
			}
			if r = utf16.DecodeRune(r, rune(units[i+1])); r == utf8.RuneError {
				return events.NewBinaryAttribute(b)
			}
			i++
		}
		out.WriteRune(r)
	}
	return events.NewStringAttribute(out.String())
}

// size approximates DynamoDB's item size: attribute name lengths plus
// value lengths (strings and binaries by bytes, numbers by digits, 1 for
// NULL).
func size(img map[string]events.DynamoDBAttributeValue) int64 {
	var n int64
	for name, v := range img {
		n += int64(len(name))
		switch v.DataType() {
		case events.DataTypeString:
			n += int64(len(v.String()))
		case events.DataTypeNumber:
			n += int64(len(v.Number()))
		case events.DataTypeBinary:
			n += int64(len(v.Binary()))
		default:
			n++
		}
	}
	return n
}
