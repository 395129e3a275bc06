package cluster

import (
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/hub"
)

// A node's judgement that node b is gone rests on its own view of b:
// b's heartbeats silent for nodeTimeoutMillis, or b's subjects without
// responders. That view is only as new as this node's routes to b. A node
// cut off and then healed to some peers before others hears a majority
// again (itself and the peers it is back with) while it has heard nothing
// of the others since the cut: they are silent to it, and once its
// server drops the dead routes their subjects have no responders there,
// though they were alive all along and heard by the majority. So the
// majority a judgement needs (reachesMajority) counts only the peers that
// have not heard b since this node last did: the ping carries the last
// heartbeat of b this node heard (b's incarnation and that heartbeat's
// sequence number), and a peer that heard a later one of the same
// incarnation says so in its answer (Wsg-Heard), which then does not
// count. A dead b sends nothing more: every live peer's last heartbeat
// of b is the same, or one that some peer missed; the node(s) holding the
// latest one have nobody objecting to them, so b is still declared within
// nodeTimeoutMillis by a node that hears a majority (docs/cluster.md).

// Headers of the judgement ping: the node judged, the incarnation and
// the sequence of its last heartbeat heard here; and the answer's mark
// that the answering node heard a later one.
const (
	hdrAbout = "Wsg-About"
	hdrInc   = "Wsg-Inc"
	hdrSeen  = "Wsg-Seen"
	hdrHeard = "Wsg-Heard"
)

// probe returns the ping of a peer that asks it, about node b, whether it
// heard b later than this node did (ping's message, with b's last heard
// heartbeat).
func (h *Hub) probe(b byte) func(p byte) *nats.Msg {
	h.mu.RLock()
	var inc string
	var seq uint64
	if pb := h.peers[b]; pb != nil && pb.present {
		inc = pb.e.Inc
		if !pb.lastSeen.IsZero() && pb.hb.Inc == inc {
			seq = pb.hb.Seq
		}
	}
	h.mu.RUnlock()
	return func(p byte) *nats.Msg {
		m := h.ping(p)
		if inc != "" {
			m.Header.Set(hdrAbout, hub.NodeHex(b))
			m.Header.Set(hdrInc, inc)
			m.Header.Set(hdrSeen, strconv.FormatUint(seq, 10))
		}
		return m
	}
}

// heardLater answers a judgement ping m: whether this node heard a
// heartbeat of the node it asks about, of the incarnation it names, later
// than the asking node did.
func (h *Hub) heardLater(m *nats.Msg) bool {
	about := m.Header.Get(hdrAbout)
	if about == "" {
		return false
	}
	v, err := strconv.ParseUint(about, 16, 8)
	if err != nil || v > hub.MaxNode {
		return false
	}
	seen, err := strconv.ParseUint(m.Header.Get(hdrSeen), 10, 64)
	if err != nil {
		return false
	}
	inc := m.Header.Get(hdrInc)
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[byte(v)]
	return p != nil && !p.lastSeen.IsZero() && p.hb.Inc == inc && p.hb.Seq > seen
}
