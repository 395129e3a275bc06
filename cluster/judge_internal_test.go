package cluster

import (
	"testing"
	"time"
)

// TestHeardLater: a peer answers a judgement ping with Wsg-Heard only when
// it heard a heartbeat of the judged node's incarnation later than the
// asking node's last one; the ping carries that last heartbeat (0 when the
// asking node never heard the incarnation the registry holds).
func TestHeardLater(t *testing.T) {
	t.Parallel()
	asking := &Hub{prefix: "wsg.t", peers: map[byte]*peer{
		5: {present: true, e: entry{Inc: "i1"}, lastSeen: time.Now(), hb: heartbeat{Inc: "i1", Seq: 10}},
		6: {present: true, e: entry{Inc: "i2"}, lastSeen: time.Now(), hb: heartbeat{Inc: "i1", Seq: 40}}, // the registry's is a new one
		7: {present: true, e: entry{Inc: "i3"}},                                                          // never heard
	}}
	for b, want := range map[byte]string{5: "10", 6: "0", 7: "0"} {
		m := asking.probe(b)(1)
		if m.Subject != "wsg.t.n.01.c" || m.Header.Get(hdrOp) != "ping" || m.Header.Get(hdrSeen) != want || m.Header.Get(hdrInc) != asking.peers[b].e.Inc {
			t.Errorf("probe about %d: %s %v, want seen %s", b, m.Subject, m.Header, want)
		}
	}
	if m := asking.probe(9)(1); m.Header.Get(hdrAbout) != "" {
		t.Errorf("probe about a byte without an entry: %v", m.Header)
	}

	answering := &Hub{peers: map[byte]*peer{
		5: {present: true, e: entry{Inc: "i1"}, lastSeen: time.Now(), hb: heartbeat{Inc: "i1", Seq: 12}},
		7: {present: true, e: entry{Inc: "i3"}}, // never heard
	}}
	for _, c := range []struct {
		about, inc, seen string
		want             bool
	}{
		{"05", "i1", "11", true},  // heard b after the asking node did
		{"05", "i1", "0", true},   // the asking node never heard it
		{"05", "i1", "12", false}, // the same last heartbeat: b died, say
		{"05", "i1", "13", false}, // the asking node heard it later
		{"05", "i0", "1", false},  // another incarnation
		{"07", "i3", "0", false},  // never heard here either
		{"08", "i4", "0", false},  // unknown here
		{"05", "i1", "x", false},
		{"zz", "i1", "0", false},
		{"", "", "", false}, // a plain ping (a node of the previous version)
	} {
		m := answering.ping(1)
		if c.about != "" {
			m.Header.Set(hdrAbout, c.about)
			m.Header.Set(hdrInc, c.inc)
			m.Header.Set(hdrSeen, c.seen)
		}
		if got := answering.heardLater(m); got != c.want {
			t.Errorf("about %s inc %s seen %s: heard later %v, want %v", c.about, c.inc, c.seen, got, c.want)
		}
	}
}
