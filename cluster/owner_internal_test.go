package cluster

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fakeEntry is a registry change as the watcher gets it.
type fakeEntry struct {
	jetstream.KeyValueEntry
	key   string
	value []byte
	rev   uint64
	op    jetstream.KeyValueOp
}

func (e fakeEntry) Key() string                     { return e.key }
func (e fakeEntry) Value() []byte                   { return e.value }
func (e fakeEntry) Revision() uint64                { return e.rev }
func (e fakeEntry) Operation() jetstream.KeyValueOp { return e.op }

// TestOwnerDeadline: a node answers on its byte only until its last
// applied write's time to live (less the margin) ends, even while its view
// of the registry still names it (a stalled process wakes before its
// watcher delivers anything), and not at all once the view names another
// incarnation or none, until a write of its own under the view naming it.
func TestOwnerDeadline(t *testing.T) {
	t.Parallel()
	h := &Hub{self: 5, inc: "i1", claimed: true, peers: map[byte]*peer{
		5: {present: true, rev: 3, e: entry{Inc: "i1", State: stateJoining}},
	}}
	h.initGoneSignal()
	ttl := 3 * time.Second
	now := time.Now()
	if h.owner(now) {
		t.Fatal("answers before any write of its entry")
	}
	h.ownedUntilLocked("i1", now.Add(-ttl), ttl) // stalled for the whole TTL
	if h.owner(now) {
		t.Fatal("answers past its entry's time to live, its view still naming it")
	}
	h.ownedUntilLocked("i1", now, ttl)
	if !h.owner(now) || !h.owner(now.Add(ttl-ttl/8-time.Millisecond)) || h.owner(now.Add(ttl-ttl/8)) {
		t.Fatal("the deadline is not the write's send time + TTL − TTL/8")
	}
	h.ownedUntilLocked("i0", now.Add(time.Minute), ttl) // another incarnation's write
	if h.owner(now.Add(ttl)) {
		t.Fatal("a write of another incarnation extended the deadline")
	}

	// The view names another incarnation: silent at once.
	h.apply(fakeEntry{key: nodeKey(5), value: []byte(`{"inc":"i2","state":"joining"}`), rev: 4, op: jetstream.KeyValuePut})
	if h.owner(now) {
		t.Fatal("answers with its byte held by another incarnation in its view")
	}
	h.ownedUntilLocked("i1", now, ttl) // a write of its own refused: not called; nor does this extend
	if h.owner(now) {
		t.Fatal("extended with its view naming another incarnation")
	}
	// Its own entry again (a claim), then removed (expired): silent.
	h.apply(fakeEntry{key: nodeKey(5), value: []byte(`{"inc":"i1","state":"joining"}`), rev: 5, op: jetstream.KeyValuePut})
	h.ownedUntilLocked("i1", now, ttl)
	if !h.owner(now) {
		t.Fatal("silent after a write of its own, its view naming it")
	}
	h.apply(fakeEntry{key: nodeKey(5), rev: 6, op: jetstream.KeyValueDelete})
	if h.owner(now) {
		t.Fatal("answers with its entry removed in its view")
	}
}

// TestUnsureWriteCredit: a write of the node's entry found applied by a
// read, not by its answer, is credited as of the first write noted since
// the last one credited, and only for its own byte and incarnation at a
// revision later than any the node knows it wrote.
func TestUnsureWriteCredit(t *testing.T) {
	t.Parallel()
	h := &Hub{self: 5, inc: "i1", claimed: true, ownRev: 3, peers: map[byte]*peer{
		5: {present: true, rev: 3, e: entry{Inc: "i1", State: "up"}},
	}}
	h.initGoneSignal()
	first := h.sending(5, "i1")
	h.sending(5, "i1") // a later write, its answer lost too
	for _, tc := range []struct {
		name string
		b    byte
		inc  string
		rev  uint64
		want time.Time
	}{
		{"a revision the node wrote", 5, "i1", 3, time.Time{}},
		{"a later revision", 5, "i1", 4, first},
		{"another incarnation", 5, "i2", 4, time.Time{}},
		{"another byte", 6, "i1", 4, time.Time{}},
	} {
		if got := h.appliedSinceLocked(tc.b, tc.inc, tc.rev); !got.Equal(tc.want) {
			t.Errorf("%s: credited %v, want %v", tc.name, got, tc.want)
		}
	}
	h.ownedUntilLocked("i1", first.Add(-time.Millisecond), time.Minute) // a write sent before the first noted
	if got := h.appliedSinceLocked(5, "i1", 4); !got.Equal(first) {
		t.Fatalf("credit of an earlier write dropped the note: %v", got)
	}
	h.ownedUntilLocked("i1", first, time.Minute)
	if got := h.appliedSinceLocked(5, "i1", 4); !got.IsZero() {
		t.Fatalf("credited the note's write, still noted: %v", got)
	}
	h.sending(5, "i1")
	h.inc = "i2" // a fence's new incarnation: the note is about its claim
	fence := h.sending(5, "i2")
	if got := h.appliedSinceLocked(5, "i1", 4); !got.IsZero() {
		t.Fatalf("a note of another incarnation credited this one: %v", got)
	}
	h.sending(5, "i1") // a renewal of the claim given up, during the fence
	if got := h.appliedSinceLocked(5, "i2", 4); !got.Equal(fence) {
		t.Fatalf("a write of the incarnation given up replaced the fence's note: %v, want %v", got, fence)
	}
}
