package cluster

import (
	"context"
	"strconv"
	"time"

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
//
// A peer that heard b later but takes b's incarnation for gone itself (its
// registry entry says gone, or it took b for gone locally because the
// registry could not commit) does not object: its newer view agrees. It
// answers Wsg-Gone instead, and counts for the majority. Under load the
// dead node was often the registry stream's leader: the peer holding b's
// last heartbeat took b for gone locally within milliseconds, but its
// commit waited 7 s for an election, and the asking node, whose registry
// watch then stalled for 13 s more, answered 500 for b's ids for 20 s.
// And a node that has not heard b's incarnation at all (b died within a
// heartbeat of joining) has no evidence of its own: it takes b for gone on
// a peer's Wsg-Gone (gonecheck.go, reasonPeer). A peer that answers
// Wsg-Heard checks b itself (suspect: one check at a time per node, on a
// goroutine Close waits for), so a dying node's last heartbeat heard by
// some peers only is judged by them within about goneGraceMillis, not
// nodeTimeoutMillis.

// Headers of the judgement ping: the node judged, the incarnation and
// the sequence of its last heartbeat heard here; and the answer's mark
// that the answering node heard a later one.
const (
	hdrAbout = "Wsg-About"
	hdrInc   = "Wsg-Inc"
	hdrSeen  = "Wsg-Seen"
	hdrHeard = "Wsg-Heard"
	hdrGone  = "Wsg-Gone"
	// hdrAnswerInc: the answering node's incarnation, on a ping's answer
	// (confirm).
	hdrAnswerInc = "Wsg-Answer-Inc"
	// hdrPinger, hdrPingerInc, hdrPingerName: the pinging node's byte,
	// incarnation and name, on a start-up ping (reachPeers, pingedBy).
	hdrPinger     = "Wsg-Pinger"
	hdrPingerInc  = "Wsg-Pinger-Inc"
	hdrPingerName = "Wsg-Pinger-Name"
)

// "No responders" on a node's subject is evidence against an incarnation
// only once this node has heard it: until then its subscriptions may not
// have reached this node's NATS server yet (docs/cluster.md, "Start-up
// order"). A heartbeat is the usual proof (sent after the subscriptions,
// on the same connection), but a node killed before any peer heard one
// (three nodes starting at once, its first heartbeat sent before the
// routes had formed, killed within a heartbeat) was declared on silence
// only, after nodeTimeoutMillis: 3.4 s in 1 of 20 kills of C8 under load.
// So a node whose entry goes up and whose incarnation this node has not
// heard is pinged on its subject (confirm): the answer, which names the
// answering incarnation, travelled the route that carries its interest,
// as a heartbeat would have, and counts as having heard it
// (heardIncarnation). It gives no direct address (that comes with a
// heartbeat): a node killed meanwhile is declared on "no responders"
// lasting goneGraceMillis, not on its refusing port.

// The same holds the other way round, at the pinging node's start: before
// its entry goes up, a node pings every live peer on the peer's subject,
// after its own subscriptions are flushed, on the connection that holds
// them (reachPeers, docs/cluster.md "Start-up order"). The ping reaches the
// peer's server over the route behind the node's interest, so a peer that
// receives it has that interest as surely as after a heartbeat; the ping
// names the node's byte and incarnation, and the peer counts it as having
// heard that incarnation (pingedBy). A node killed right after its entry
// went up, before any heartbeat of it reached a peer and before a peer's
// confirm had an answer, was declared on silence only (nodeTimeoutMillis);
// now every peer that was up at its start and answered declares it on "no
// responders" (goneGraceMillis). A peer that was not up in its view then
// (nodes starting at once) is not pinged and counts only a heartbeat or a
// confirm's answer: a "no responders" before either can be a route not yet
// formed (a route solicitation refused because the peer's server was not
// listening yet is tried again after 1 s, nats-server's
// DEFAULT_ROUTE_CONNECT, twice goneGraceMillis), and in a two-node cluster
// no majority would stop that judgement.

// startPing is ping(b) naming this node (its byte, incarnation and name)
// as the pinger: a ping sent once this node's subscriptions are flushed
// (reachPeers), which the peer counts as having heard this incarnation.
func (h *Hub) startPing(b byte) *nats.Msg {
	m := h.ping(b)
	h.mu.RLock()
	self, inc := h.self, h.inc
	h.mu.RUnlock()
	m.Header.Set(hdrPinger, hub.NodeHex(self))
	m.Header.Set(hdrPingerInc, inc)
	m.Header.Set(hdrPingerName, h.cfg.Node.Name)
	return m
}

// pingedBy records the incarnation a start-up ping m names (startPing) as
// heard, unless the test hook drops it. The registry's entry for that byte
// need not have arrived yet: heardLocked compares it with the entry's
// incarnation when asked, so a ping naming another incarnation than the
// registry's (another cluster's node routed in by mistake) counts for
// nothing.
func (h *Hub) pingedBy(m *nats.Msg) {
	from, inc := m.Header.Get(hdrPinger), m.Header.Get(hdrPingerInc)
	if from == "" || inc == "" {
		return
	}
	v, err := strconv.ParseUint(from, 16, 8)
	if err != nil || v > hub.MaxNode || byte(v) == h.Self() {
		return
	}
	if f := heartbeatHook.Load(); f != nil && !(*f)(&h.cfg, m.Header.Get(hdrPingerName), heardPing) {
		return
	}
	h.mu.Lock()
	h.peer(byte(v)).answered = inc
	h.mu.Unlock()
}

// confirmingLocked returns the incarnation of p (node b) to confirm, and
// counts the confirm in h.wg, when p is up and neither heard nor being
// confirmed; "" otherwise. h.mu must be held for writing.
func (h *Hub) confirmingLocked(b byte, p *peer) string {
	if b == h.self || !p.present || p.e.State != "up" || p.confirming || heardLocked(p) || h.closing.Load() || h.ctx.Err() != nil {
		return ""
	}
	p.confirming = true
	h.wg.Add(1)
	return p.e.Inc
}

// confirm pings node b's subject until incarnation inc answers (then it is
// heard; a node of the previous version answers without naming itself,
// which ends it too), another is in the registry, it is heard otherwise (a
// heartbeat), or nodeTimeoutMillis passed (silence judges it from there).
func (h *Hub) confirm(b byte, inc string) {
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		h.peer(b).confirming = false
		h.mu.Unlock()
	}()
	deadline := time.Now().Add(h.cfg.nodeTimeout())
	for time.Now().Before(deadline) {
		h.mu.RLock()
		p := h.peers[b]
		want := p != nil && p.present && p.e.Inc == inc && p.e.State == "up" && !heardLocked(p)
		h.mu.RUnlock()
		if !want {
			return
		}
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.attemptTimeout())
		r, err := h.ctl.RequestMsgWithContext(ctx, h.ping(b))
		cancel()
		if err == nil && (r.Header.Get(hdrAnswerInc) == "" || h.answeredBy(b, inc, r)) {
			return // heard; or a node of the previous version, whose answer names nobody
		}
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// answeredBy records that incarnation inc of node b answered ping reply r
// (it names inc), unless the test hook drops it; it reports whether it did.
func (h *Hub) answeredBy(b byte, inc string, r *nats.Msg) bool {
	if r.Header.Get(hdrAnswerInc) != inc {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.peer(b)
	if f := heartbeatHook.Load(); f != nil && !(*f)(&h.cfg, p.e.Name, heardAnswer) {
		return false
	}
	if p.present && p.e.Inc == inc {
		p.answered = inc
	}
	return true
}

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

// answerJudgement answers a judgement ping m in its reply r: Wsg-Gone
// when this node takes the judged incarnation for gone, else Wsg-Heard when
// it heard a later heartbeat of it, and then it checks that node itself.
func (h *Hub) answerJudgement(m, r *nats.Msg) {
	b, heard, gone := h.judgement(m)
	switch {
	case gone:
		r.Header.Set(hdrGone, "1")
	case heard:
		r.Header.Set(hdrHeard, "1")
		h.suspect(b, false)
	}
}

// heardLater reports whether this node heard a heartbeat of the node a
// judgement ping m asks about, of the incarnation it names, later than
// the asking node did.
func (h *Hub) heardLater(m *nats.Msg) bool {
	_, heard, _ := h.judgement(m)
	return heard
}

// judgement is this node's view of the node b a judgement ping m asks
// about: heard, it heard a heartbeat of the incarnation m names later than
// the asking node did; gone, it takes that incarnation for gone (its
// registry entry says so, or it took it for gone locally).
func (h *Hub) judgement(m *nats.Msg) (b byte, heard, gone bool) {
	about := m.Header.Get(hdrAbout)
	if about == "" {
		return 0, false, false
	}
	v, err := strconv.ParseUint(about, 16, 8)
	if err != nil || v > hub.MaxNode {
		return 0, false, false
	}
	seen, err := strconv.ParseUint(m.Header.Get(hdrSeen), 10, 64)
	if err != nil {
		return 0, false, false
	}
	b, inc := byte(v), m.Header.Get(hdrInc)
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	if p == nil {
		return b, false, false
	}
	heard = !p.lastSeen.IsZero() && p.hb.Inc == inc && p.hb.Seq > seen
	gone = p.present && p.e.Inc == inc && (p.e.State == "gone" || p.localGone)
	return b, heard, gone
}
