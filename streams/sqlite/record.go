package sqlite

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

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
}

// record converts a change-log row into a DynamoDB stream record.
func (r *logRow) record(region string) (streams.Record, error) {
	keys, err := image(r.keys)
	if err != nil {
		return streams.Record{}, fmt.Errorf("change %d keys: %w", r.seq, err)
	}
	newImage, err := image(r.newImage)
	if err != nil {
		return streams.Record{}, fmt.Errorf("change %d new image: %w", r.seq, err)
	}
	oldImage, err := image(r.oldImage)
	if err != nil {
		return streams.Record{}, fmt.Errorf("change %d old image: %w", r.seq, err)
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

// committed is when the change was written.
func (r *logRow) committed() time.Time {
	return time.UnixMilli(int64(math.Round(r.ts * 1000)))
}

// image decodes the triggers' {"column":["type",value],...} into DynamoDB
// attribute values: TEXT → S, INTEGER and REAL → N, BLOB → B, NULL → NULL.
func image(data []byte) (map[string]events.DynamoDBAttributeValue, error) {
	if data == nil {
		return nil, nil
	}
	var cols map[string][2]json.RawMessage
	if err := json.Unmarshal(data, &cols); err != nil {
		return nil, err
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(cols))
	for name, tv := range cols {
		var typ string
		if err := json.Unmarshal(tv[0], &typ); err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		v, err := value(typ, tv[1])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

func value(typ string, raw json.RawMessage) (events.DynamoDBAttributeValue, error) {
	if typ == "null" || bytes.Equal(raw, []byte("null")) {
		// A REAL that is NaN is null in SQLite's JSON too.
		return events.NewNullAttribute(), nil
	}
	switch typ {
	case "text":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewStringAttribute(s), nil
	case "integer", "real":
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewNumberAttribute(n.String()), nil
	case "blob":
		var h string
		if err := json.Unmarshal(raw, &h); err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewBinaryAttribute(b), nil
	}
	return events.DynamoDBAttributeValue{}, fmt.Errorf("unknown SQLite type %q", typ)
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
