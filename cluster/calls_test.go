package cluster

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// A batch and its reply survive the wire, and every truncation of either
// is refused rather than misread.
func TestBatchWire(t *testing.T) {
	items := []item{
		{op: opPost, deadline: 1764400000123, id: "AAAAAAAAAAAAAAA=", key: "sdk:AKID:0f3c", body: []byte("hello\nworld")},
		{op: opJoin, deadline: 1, id: "BBBBBBBBBBBBBBB=", key: "req:9f2c.1", arg: "room.1"},
		{op: opDelete, deadline: 2, id: "CCCCCCCCCCCCCCC=", arg: "going_away"},
	}
	var atts []*attempt
	for i := range items {
		atts = append(atts, &attempt{it: &items[i]})
	}
	data := encodeBatch(atts)
	got, err := decodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if len(got[i].body) == 0 {
			got[i].body = nil
		}
	}
	if !reflect.DeepEqual(got, items) {
		t.Fatalf("decoded %+v, want %+v", got, items)
	}
	for n := range len(data) {
		if _, err := decodeBatch(data[:n]); err == nil {
			t.Fatalf("a batch cut at %d of %d bytes decoded", n, len(data))
		}
	}

	var reply []byte
	reply = binary.AppendUvarint(reply, 3)
	reply = appendResult(reply, 200, "", nil)
	reply = appendResult(reply, 429, "too many groups", nil)
	reply = appendResult(reply, 200, "", []byte(`{"connectionId":"x"}`))
	rs, err := decodeResults(reply, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].status != 200 || rs[1].status != 429 || rs[1].text != "too many groups" || string(rs[2].body) != `{"connectionId":"x"}` {
		t.Fatalf("decoded %+v", rs)
	}
	if _, err := decodeResults(reply, 2); err == nil {
		t.Fatal("3 answers accepted for 2 calls")
	}
	for n := range len(reply) {
		if _, err := decodeResults(reply[:n], 3); err == nil {
			t.Fatalf("a reply cut at %d of %d bytes decoded", n, len(reply))
		}
	}
}
