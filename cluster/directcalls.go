package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// Calls over the direct link. A call on a connection of another node
// (post, get, delete, join, leave) that would go alone, the link to that
// node having no batch out and none queued (the common case at a low
// rate), goes over an idle connection of the node's direct link (direct.go)
// when there is one, as a batch of one call in the same wire format
// (calls.go); the owner runs it on the goroutine that read it and writes
// the answer back, which the calling goroutine reads. Over NATS the call
// crossed the origin's nats.go flusher, its NATS server, the route, the
// owner's server, the owner's nats.go reader and subscription goroutine,
// and as many back: about 10 wake-ups where the link has one on each side
// (a forwarded POST's p50 on two nodes in one process: 145–237 µs over
// NATS, a direct query 29–60 µs). Calls made while a batch is out or
// queued go over NATS in batches as before: under load a batch carries
// many calls per message, the link one.
//
// The link carries a call only to a node that said it serves them: the
// asking side's first frame names the role directCalls, which a node of
// the previous version ignores (it answers 0, serving queries only), and
// a node that serves calls answers directServesCalls instead of 0.
//
// A join goes over NATS always: the owner's answer to a first join follows
// its new group interest on the route (subscribed and flushed before the
// answer), so a publish the caller makes once answered finds the interest
// on its own server; an answer over the link could overtake it
// (TestClusterGroupInterest: 1 publish in 50 to a fresh group was lost).
//
// A call over the link keeps the rules of retry: its attempts' times, b
// found gone ending it (looked at every slowAttempt while its answer is
// waited for), 500 past its deadline. At slowAttempt without an answer
// the node is checked (suspect), as for a batch. A connection that breaks
// before the answer (EOF, a reset: a node that died or closed its link;
// the owner closes it when it is not the byte's owner any more, or a fence
// registered it again, before it runs anything), or gives no answer for a
// whole attempt (a link lost while NATS is not; the connection is then
// closed), sends the call again over NATS with the same dedupe key, as a
// batch that timed out does: the owner's dedupe answers a POST or DELETE
// that ran already with its first answer, or waits for it while it runs
// (leave and get are idempotent), so a call runs at most once, with any
// dedupeSeconds (the owner keeps the key until the call's deadline,
// dedupe.go). An answer the owner writes after the origin closed the
// connection is lost, not waited for: the retry over NATS gets the same
// answer from the owner's table as soon as the first run has it (or the
// first run's, waited for), so reading on would save at most a NATS round
// trip, for a connection held out of the pool meanwhile. Such calls are
// counted (wsgate_cluster_direct_calls_unanswered_total, by reason:
// broken, silent): a link that is lost while NATS is not shows there.
//
// Frames (direct.go's): a call is the field directCallOp (a uvarint
// length and the bytes) followed by the batch, unframed; its answer the
// status byte 0 followed by the batch's reply.
const (
	directCalls       = "calls" // the first frame's role of a connection that may carry calls
	directServesCalls = 4       // the first frame's answer: served, calls too
	directCallOp      = "call"
	// directMaxCall bounds a frame on an authenticated connection: a call
	// carries a POST's body (larger calls go over NATS).
	directMaxCall = 1 << 20
)

// callFrame returns the batch of a call frame, or false for a query.
func callFrame(req []byte) ([]byte, bool) {
	n, k := binary.Uvarint(req)
	if k <= 0 || n != uint64(len(directCallOp)) || len(req)-k < len(directCallOp) || string(req[k:k+len(directCallOp)]) != directCallOp {
		return nil, false
	}
	return req[k+len(directCallOp):], true
}

// serveCall runs a call frame's batch, read at t, and writes its answer
// on c (out is a buffer to reuse); false: close the connection.
func (d *direct) serveCall(c net.Conn, out, batch []byte, t time.Time) ([]byte, bool) {
	h := d.h
	out = append(out, 0, 0, 0, 0, 0) // the length, then status 0
	out, err := h.runBatch(out, batch, t)
	if err != nil {
		h.log.Warn("cluster call that does not parse", "error", err, "link", "direct")
		return nil, false
	}
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	d.callsServed.Add(1)
	_ = c.SetWriteDeadline(time.Now().Add(h.cfg.requestTimeout()))
	if _, err := c.Write(out); err != nil {
		return nil, false
	}
	if cap(out) > 64<<10 {
		out = nil // not kept for every call after a large one
	}
	return out, true
}

// sendCall sends call it to node b over an idle connection of b's direct
// link that serves calls, if the call would go alone (the link to b has no
// batch out and none queued) and fits; nil: send it over NATS.
func (h *Hub) sendCall(b byte, it *item, deadline time.Time) *directConn {
	d := h.direct
	if d == nil || it.op == opJoin || b == h.Self() {
		return nil
	}
	l := &h.links[b]
	l.mu.Lock()
	busy := l.inflight > 0 || len(l.queue) > 0
	l.mu.Unlock()
	if busy {
		return nil
	}
	size := 4 + 1 + len(directCallOp) + 8 + it.size() + len(h.reqPrefix)
	if size > directMaxCall {
		return nil
	}
	addr, inc := h.directAddr(b)
	if addr == "" {
		return nil
	}
	c := d.take(b, addr, inc, true)
	if c == nil {
		return nil
	}
	f := make([]byte, 4, size)
	f = appendString(f, directCallOp)
	f = append(f, batchVersion, 0, 1) // seq 0 (unused: one call a connection), one call
	f = appendItem(f, it, h.reqPrefix)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	c.hn, c.body, c.bn = 0, nil, 0
	_ = c.c.SetWriteDeadline(deadline)
	if _, err := c.c.Write(f); err != nil {
		// Not run: the owner runs a whole frame only.
		d.put(c, false)
		return nil
	}
	d.callsSent.Add(1)
	return c
}

// errCallBroken: the direct connection a call went on broke before its
// answer; the call goes again over NATS.
var errCallBroken = errors.New("direct connection broken before the call's answer")

// readCall reads the answer to the call sent on c to node b until end
// (readDirect: c given back once read, closed when it broke; at the first
// slowAttempt without it the node is checked, once a call, *checked).
// errCallBroken: the call goes again over NATS; errAttemptTimeout: c is
// still the call's, to read on.
func (h *Hub) readCall(ctx context.Context, c *directConn, b byte, end time.Time, gone <-chan struct{}, checked *bool) result {
	body, err := h.readDirect(ctx, c, b, end, gone, checked)
	switch {
	case errors.Is(err, errDirectBroken):
		return result{err: errCallBroken}
	case err != nil: // errAttemptTimeout; an answer read whole (a query's status): not sent for calls
		return result{err: err}
	}
	r := reader{b: body}
	r.uvarint() // the seq
	if r.err != nil {
		return result{err: fmt.Errorf("a reply that does not parse: %w", r.err)}
	}
	rs, err := decodeResults(r.b, 1)
	if err != nil {
		return result{err: fmt.Errorf("a reply that does not parse: %w", err)}
	}
	return rs[0]
}
