package postgres

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/jackc/pglogrepl"

	"github.com/wsgate/wsgate/streams"
)

// Type OIDs from pg_type.dat that do not map to S.
const (
	oidBool    = 16
	oidBytea   = 17
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidOID     = 26
	oidFloat4  = 700
	oidFloat8  = 701
	oidNumeric = 1700
)

// relation is a table as the last Relation message described it.
type relation struct {
	table string // schema.name
	names []string
	oids  []uint32
	keys  []int // indexes of the key columns
}

// newRelation caches a Relation message. pk is the table's primary key read
// at start; without one the replica identity columns (flag 1) are the keys.
// Under REPLICA IDENTITY FULL pgoutput flags every column, which is why the
// primary key is preferred.
func newRelation(m *pglogrepl.RelationMessage, pk []string) *relation {
	r := &relation{table: m.Namespace + "." + m.RelationName}
	for i, c := range m.Columns {
		r.names = append(r.names, c.Name)
		r.oids = append(r.oids, c.DataType)
		if len(pk) == 0 && c.Flags&1 != 0 {
			r.keys = append(r.keys, i)
		}
	}
	for _, name := range pk {
		if i := slices.Index(r.names, name); i >= 0 {
			r.keys = append(r.keys, i)
		}
	}
	return r
}

type image = map[string]events.DynamoDBAttributeValue

// image converts a tuple; with onlyKeys it keeps only the key columns.
// Unchanged TOAST columns ('u') are taken from fill when it has them and
// left out otherwise.
func (r *relation) image(t *pglogrepl.TupleData, onlyKeys bool, fill image) (image, error) {
	if t == nil {
		return nil, nil
	}
	if len(t.Columns) != len(r.names) {
		return nil, fmt.Errorf("relation %s: tuple has %d columns, relation %d", r.table, len(t.Columns), len(r.names))
	}
	img := make(image, len(t.Columns))
	for i, c := range t.Columns {
		if onlyKeys && !slices.Contains(r.keys, i) {
			continue
		}
		name := r.names[i]
		if c.DataType == pglogrepl.TupleDataTypeToast {
			if v, ok := fill[name]; ok {
				img[name] = v
			}
			continue
		}
		v, err := attribute(r.oids[i], c)
		if err != nil {
			return nil, fmt.Errorf("column %s.%s: %w", r.table, name, err)
		}
		img[name] = v
	}
	return img, nil
}

// keysOf picks the key columns out of a full image.
func (r *relation) keysOf(img image) image {
	k := make(image, len(r.keys))
	for _, i := range r.keys {
		if v, ok := img[r.names[i]]; ok {
			k[r.names[i]] = v
		}
	}
	return k
}

// sameKeys reports whether two key images are equal.
func sameKeys(a, b image) bool {
	return maps.EqualFunc(a, b, func(x, y events.DynamoDBAttributeValue) bool {
		return x.DataType() == y.DataType() && attrText(x) == attrText(y)
	})
}

// attrText is a comparable text form of a scalar attribute.
func attrText(v events.DynamoDBAttributeValue) string {
	switch v.DataType() {
	case events.DataTypeBinary:
		return string(v.Binary())
	case events.DataTypeBoolean:
		return fmt.Sprint(v.Boolean())
	case events.DataTypeNull:
		return ""
	case events.DataTypeNumber:
		return v.Number()
	default:
		return v.String()
	}
}

// attribute maps one column value (see the package doc for the table).
func attribute(oid uint32, c *pglogrepl.TupleDataColumn) (events.DynamoDBAttributeValue, error) {
	switch c.DataType {
	case pglogrepl.TupleDataTypeNull:
		return events.NewNullAttribute(), nil
	case pglogrepl.TupleDataTypeBinary:
		return events.NewBinaryAttribute(c.Data), nil
	case pglogrepl.TupleDataTypeText:
	default:
		return events.DynamoDBAttributeValue{}, fmt.Errorf("unknown tuple data kind %q", c.DataType)
	}
	s := string(c.Data)
	switch oid {
	case oidInt2, oidInt4, oidInt8, oidOID, oidFloat4, oidFloat8, oidNumeric:
		if strings.ContainsAny(s, "aInN") { // NaN, Infinity, -Infinity
			return events.NewStringAttribute(s), nil
		}
		return events.NewNumberAttribute(s), nil
	case oidBool:
		return events.NewBooleanAttribute(s == "t"), nil
	case oidBytea:
		b, err := hex.DecodeString(strings.TrimPrefix(s, `\x`))
		if err != nil {
			return events.DynamoDBAttributeValue{}, fmt.Errorf("decoding bytea: %w (set bytea_output = hex)", err)
		}
		return events.NewBinaryAttribute(b), nil
	}
	return events.NewStringAttribute(s), nil
}

// txn collects the records of one transaction between Begin and Commit.
type txn struct {
	finalLSN   pglogrepl.LSN
	commitTime time.Time
	recs       []streams.Record
}

// recordMeta is what every record of a source shares.
type recordMeta struct {
	region string
	slot   string
}

// add appends a record for one change.
func (m recordMeta) add(tx *txn, r *relation, name string, keys, newImg, oldImg image) {
	i := len(tx.recs)
	rec := streams.Record{
		EventID:        fmt.Sprintf("%016X%08X", uint64(tx.finalLSN), i),
		EventName:      name,
		EventVersion:   "1.1",
		EventSource:    "aws:dynamodb",
		AWSRegion:      m.region,
		EventSourceArn: fmt.Sprintf("arn:aws:dynamodb:%s:000000000000:table/%s/stream/%s", m.region, r.table, m.slot),
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: tx.commitTime.Truncate(time.Second)},
			Keys:                        keys,
			NewImage:                    newImg,
			OldImage:                    oldImg,
			SequenceNumber:              fmt.Sprintf("%020d%010d", uint64(tx.finalLSN), i),
			SizeBytes:                   imageSize(keys) + imageSize(newImg) + imageSize(oldImg),
			StreamViewType:              "NEW_AND_OLD_IMAGES",
		},
	}
	tx.recs = append(tx.recs, rec)
}

// imageSize approximates DynamoDB's item size: names plus value bytes.
func imageSize(img image) int64 {
	var n int64
	for k, v := range img {
		n += int64(len(k))
		switch v.DataType() {
		case events.DataTypeBoolean, events.DataTypeNull:
			n++
		default:
			n += int64(len(attrText(v)))
		}
	}
	return n
}

// change turns one Insert, Update or Delete into records on tx.
func (m recordMeta) change(tx *txn, rels map[uint32]*relation, msg pglogrepl.Message) error {
	switch msg := msg.(type) {
	case *pglogrepl.InsertMessage:
		r, err := lookup(rels, msg.RelationID)
		if err != nil {
			return err
		}
		newImg, err := r.image(msg.Tuple, false, nil)
		if err != nil {
			return err
		}
		m.add(tx, r, "INSERT", r.keysOf(newImg), newImg, nil)
	case *pglogrepl.UpdateMessage:
		r, err := lookup(rels, msg.RelationID)
		if err != nil {
			return err
		}
		// 'O' carries the whole old row (REPLICA IDENTITY FULL), 'K' only
		// the old key and only when the key changed, no old tuple otherwise.
		oldImg, err := r.image(msg.OldTuple, msg.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey, nil)
		if err != nil {
			return err
		}
		newImg, err := r.image(msg.NewTuple, false, oldImg)
		if err != nil {
			return err
		}
		newKeys := r.keysOf(newImg)
		if oldImg == nil {
			oldImg = newKeys
		}
		if oldKeys := r.keysOf(oldImg); !sameKeys(oldKeys, newKeys) {
			m.add(tx, r, "REMOVE", oldKeys, nil, oldImg)
			m.add(tx, r, "INSERT", newKeys, newImg, nil)
			return nil
		}
		m.add(tx, r, "MODIFY", newKeys, newImg, oldImg)
	case *pglogrepl.DeleteMessage:
		r, err := lookup(rels, msg.RelationID)
		if err != nil {
			return err
		}
		oldImg, err := r.image(msg.OldTuple, msg.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey, nil)
		if err != nil {
			return err
		}
		m.add(tx, r, "REMOVE", r.keysOf(oldImg), nil, oldImg)
	}
	return nil
}

func lookup(rels map[uint32]*relation, id uint32) (*relation, error) {
	r, ok := rels[id]
	if !ok {
		return nil, fmt.Errorf("change for relation %d before its Relation message", id)
	}
	return r, nil
}
