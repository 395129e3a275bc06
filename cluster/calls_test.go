package cluster

import (
	"encoding/binary"
	"testing"
)

// A batch and its reply survive the wire, and every truncation of either
// is refused rather than misread.
func TestBatchWire(t *testing.T) {
	t.Parallel()
	items := []item{
		{op: opPost, deadline: 1764400000123, id: "AAAAAAAAAAAAAAA=", key: "sdk:AKID:0f3c", body: []byte("hello\nworld")},
		{op: opJoin, deadline: 1, id: "BBBBBBBBBBBBBBB=", seq: 46, arg: "room.1"},
		{op: opDelete, deadline: 2, id: "CCCCCCCCCCCCCCC=", seq: 1<<64 - 1, arg: "going_away"},
	}
	// A call without a key of its own gets the origin's prefix and its
	// seq in base 36.
	keys := []string{"sdk:AKID:0f3c", "req:9f2c.1a", "req:9f2c.3w5e11264sgsf"}
	var atts []*attempt
	for i := range items {
		atts = append(atts, &attempt{it: items[i]})
	}
	data := encodeBatch(atts, "req:9f2c.", 1<<40+7)
	seq, got, err := decodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if seq != 1<<40+7 || len(got) != len(items) {
		t.Fatalf("batch %d of %d calls, want %d of %d", seq, len(got), uint64(1<<40+7), len(items))
	}
	for i, g := range got {
		w := items[i]
		if g.op != w.op || g.deadline != w.deadline || g.id != w.id || string(g.keyb) != keys[i] || g.arg != w.arg || string(g.body) != string(w.body) {
			t.Fatalf("call %d decoded %+v (key %q), want %+v (key %q)", i, g, g.keyb, w, keys[i])
		}
	}
	for n := range len(data) {
		if _, _, err := decodeBatch(data[:n]); err == nil {
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

// take sends the queue in order, leaves abandoned attempts out and keeps
// a batch within its bounds.
func TestLinkTake(t *testing.T) {
	t.Parallel()
	var l link
	var want []*attempt
	for i := range maxBatch + 3 {
		a := &attempt{it: item{op: opPost, id: "AAAAAAAAAAAAAAA=", body: make([]byte, 100)}}
		if i == 1 {
			a.abandoned.Store(true)
		} else {
			want = append(want, a)
		}
		l.queue = append(l.queue, a)
	}
	got := l.take(1 << 20)
	if len(got) != maxBatch || got[0] != want[0] || got[1] != want[1] || got[maxBatch-1] != want[maxBatch-1] {
		t.Fatalf("first batch: %d attempts, want the first %d live ones in order", len(got), maxBatch)
	}
	if got := l.take(400); len(got) != 2 || got[0] != want[maxBatch] {
		t.Fatalf("second batch within 400 bytes: %d attempts, want 2", len(got))
	}
	if got := l.take(1); len(got) != 0 {
		t.Fatalf("an empty queue gave %d attempts", len(got))
	}
	l.queue = append(l.queue, &attempt{it: item{body: make([]byte, 1000)}})
	if got := l.take(10); len(got) != 1 {
		t.Fatalf("a call larger than the limit: %d attempts, want it alone", len(got))
	}
}
