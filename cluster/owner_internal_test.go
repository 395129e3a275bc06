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
	h := &Hub{self: 5, inc: "i1", claimed: true, goneSignal: make(chan struct{}), peers: map[byte]*peer{
		5: {present: true, rev: 3, e: entry{Inc: "i1", State: stateJoining}},
	}}
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
