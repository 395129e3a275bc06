package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/mono"
)

// A killed node's subjects have no responders 21–26 ms after its death
// (its connections close, and the routes take its interest away); the
// calls to it in flight at that moment are lost and time out. "No
// responders" alone is evidence only once it has lasted goneGraceMillis,
// as a lone one can be an interest glitch (a route reconnecting). A second,
// independent piece of evidence ends that wait: the node's direct query
// port (direct.go) refuses connections. The listener lives as long as the
// node's process (only Close closes it, after the registry entry is gone),
// so a refused connect (ECONNREFUSED: the kernel answered that nobody
// listens there) to the address of an incarnation this node has
// authenticated with before means that process is gone; "no responders"
// on the node's subject right after says its NATS connection is gone too,
// and the node is declared at once (reasonRefused), with the same commit
// as on the grace (declareGone: the revision last seen, the majority, a
// node heard of that incarnation, settled). A dial that times out or is
// answered is no evidence (a lost host stays on silence); an address this
// node never reached (a misconfiguration, a firewall that rejects) never
// counts; a refusal while the subject still answers declares nothing.
//
// The check (checkGone) runs when there is reason to think the node died:
// the idle "watch" connection this node keeps to each peer's link read
// EOF or a reset without the peer's goodbye (the kernel closes a killed
// process's sockets), a batch of calls to the node has waited slowAttempt
// without an answer, a call to it was answered "no responders", or a
// peer's judgement ping found that this node heard the node later than
// the peer did (judge.go). One check at a time per node; a slow batch and
// a judgement ping start none within checkEvery of a check that found the
// node there.
const (
	reasonRefused = "no responders, direct port refused"
	// reasonPeer: declared on a peer's answer that it takes the node for
	// gone (judge.go), by a node without evidence of its own: it had not
	// heard the node's incarnation, or the node's link gave no answer.
	reasonPeer = "gone on a peer's judgement"
	// slowAttempt: a batch unanswered this long has the node checked.
	// A cross-node call's p99 is 0.2–2.7 ms on a 2-core machine (the
	// spec's R6), so 50 ms is far out of the normal while well within
	// an attempt (250 ms); and it is past the 21–26 ms a dead node's
	// interest takes to leave, so the check's first ping is answered
	// "no responders" at once.
	slowAttempt = 50 * time.Millisecond
	// checkProbe is how long the check waits for one ping: one lost in
	// the 21–26 ms before the interest leaves is asked again.
	checkProbe = 25 * time.Millisecond
	// checkEvery spaces the checks a slow attempt starts on one node.
	checkEvery = time.Second
)

// Set by tests only (SetJudgeHooks): heartbeatHook is asked, with the
// receiving node's config, whether a heartbeat, an answer to a ping of its
// own (confirm, reachPeers) or a start-up ping (reachPeers) from the node
// named from is heard (false: dropped); commitHook, before a node commits
// another's gone in the registry, for an error to take instead of the
// registry's answer (a registry that cannot commit: its stream electing a
// leader).
var (
	heartbeatHook atomic.Pointer[func(c *Config, from string, kind heardKind) bool]
	commitHook    atomic.Pointer[func(c *Config) error]
)

// heardKind is what a node heard of another (heartbeatHook).
type heardKind int

const (
	heardHeartbeat heardKind = iota // a heartbeat
	heardAnswer                     // its answer to a ping of this node's
	heardPing                       // its start-up ping (judge.go, pingedBy)
)

// goneChecks is the state of the checks, by node.
type goneChecks struct {
	mu      sync.Mutex
	running [hub.MaxNode + 1]bool
	again   [hub.MaxNode + 1]bool // a watch broke during the check: once more after it
	// alive: when a check last found the node there (its link answered,
	// or its subject); a slow attempt checks it again checkEvery after.
	alive [hub.MaxNode + 1]time.Time
	// refusals counts the checks that found a link refusing, started the
	// checks started (tests).
	refusals, started int64
}

// suspect starts a check of node b (checkGone) unless one runs; watch:
// this node's watch connection to b broke (a check runs after the one
// under way, and checkEvery does not apply).
func (h *Hub) suspect(b byte, watch bool) {
	if watch {
		h.suspectFor(b, trigWatch)
	} else {
		h.suspectFor(b, trigSlow)
	}
}

// suspectNoResp starts a check of node b, a call to it having been
// answered "no responders", unless one runs: checkEvery does not apply.
// A check that found b there a moment before (a slow attempt's, b alive
// then) had held it back for a second after a kill under load: the first
// 410 came at 1.3 s.
func (h *Hub) suspectNoResp(b byte) { h.suspectFor(b, trigNoResp) }

// What started a check: a slow attempt or a judgement ping answered
// Wsg-Heard (checkEvery applies), a call's "no responders", a watch
// connection that ended without a goodbye (a check runs after the one
// under way).
type trigger int

const (
	trigSlow trigger = iota
	trigNoResp
	trigWatch
)

func (h *Hub) suspectFor(b byte, why trigger) {
	if b > hub.MaxNode || b == h.Self() || h.closing.Load() || h.ctx.Err() != nil {
		return
	}
	c := &h.checks
	c.mu.Lock()
	switch {
	case c.running[b]:
		c.again[b] = c.again[b] || why == trigWatch
		c.mu.Unlock()
		return
	case why == trigSlow && time.Since(c.alive[b]) < checkEvery:
		c.mu.Unlock()
		return
	}
	c.running[b] = true
	c.started++
	h.wg.Add(1)
	c.mu.Unlock()
	go h.checkGone(b)
}

func (h *Hub) checkGone(b byte) {
	defer h.wg.Done()
	c := &h.checks
	for {
		alive := h.checkOnce(b)
		c.mu.Lock()
		if alive {
			c.alive[b] = time.Now()
		}
		if !c.again[b] || h.ctx.Err() != nil {
			c.running[b], c.again[b] = false, false
			c.mu.Unlock()
			return
		}
		c.again[b] = false
		c.mu.Unlock()
	}
}

// checkOnce dials b's direct link; if it is refused, asks b's subject
// until it answers (alive), has no responders (then b is declared gone at
// once, reasonRefused), or goneGraceMillis passed. While the link gives no
// evidence either way (no link, one never reached, a dial that failed
// otherwise), it declares b when a peer takes b for gone (reasonPeer), and
// otherwise pings b's subject every checkProbe, as a call would: "no
// responders" lasting goneGraceMillis declares b; the link is dialled
// again between pings, so a refusal found then goes the first way. A node
// that has not heard b's incarnation has no evidence of its own: it asks
// its peers only. alive: b was found there (its link or its subject
// answered).
func (h *Hub) checkOnce(b byte) (alive bool) {
	start := time.Now()
	var first time.Time   // the first "no responders" while the link gave no evidence
	var refused time.Time // when the link was found refusing
	deadline := start.Add(h.cfg.goneGrace())
	for {
		if gone, _ := h.gone(b); gone {
			return false
		}
		if refused.IsZero() {
			heard, joining := h.heardIncarnation(b)
			if joining || !h.settled() {
				return false
			}
			addr, inc := h.directAddr(b)
			isRefused, answered := false, false
			if heard && addr != "" {
				isRefused, answered = h.direct.refuses(addr, inc)
			}
			switch {
			case answered:
				return true
			case isRefused:
				if refused = h.refusal(b, addr, inc); refused.IsZero() {
					return false
				}
				deadline = refused.Add(h.cfg.goneGrace())
			default:
				if _, peerGone := h.judgeRound(h.ctx, b); peerGone {
					h.declareGoneSince(h.ctx, b, reasonPeer, start)
					return false
				}
				if !heard {
					return false
				}
			}
		}
		wait := checkProbe
		if !refused.IsZero() {
			if wait = min(checkProbe, time.Until(deadline)); wait <= 0 {
				return false
			}
		}
		ctx, cancel := context.WithTimeout(h.ctx, wait)
		_, err := h.ctl.RequestMsgWithContext(ctx, h.ping(b))
		cancel()
		switch {
		case err == nil:
			return true // with a refusal: it answers, so the refusal alone is no evidence
		case errors.Is(err, nats.ErrNoResponders) && !refused.IsZero():
			h.declareGoneSince(h.ctx, b, reasonRefused, refused)
			return false
		case errors.Is(err, nats.ErrNoResponders):
			if first.IsZero() {
				first = time.Now()
				deadline = first.Add(h.cfg.goneGrace() + h.cfg.attemptTimeout())
			} else if time.Since(first) >= h.cfg.goneGrace() {
				h.declareGone(h.ctx, b, "no responders")
				return false
			}
		case h.ctx.Err() != nil:
			return false
		}
		if !refused.IsZero() {
			continue // the ping waited its time: at once again, until the deadline
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-h.ctx.Done():
			return false
		case <-time.After(checkProbe):
		}
	}
}

// refusal records that b's link at addr (incarnation inc) refused a
// connection, now (returned), unless the registry holds another
// incarnation of b (zero).
func (h *Hub) refusal(b byte, addr, inc string) time.Time {
	now := time.Now()
	h.mu.Lock()
	p := h.peer(b)
	if p.e.Inc != inc {
		h.mu.Unlock()
		return time.Time{}
	}
	p.refusedAt, p.refusedInc = now, inc
	h.mu.Unlock()
	h.checks.mu.Lock()
	h.checks.refusals++
	h.checks.mu.Unlock()
	h.log.Info("cluster node's direct query port refuses connections; asking its subject", "node", hub.NodeHex(b), "addr", addr)
	return now
}

// refusedSince reports since when b's direct port has been found refusing
// connections for the incarnation the registry holds (zero if it has not,
// or longer ago than goneGraceMillis + attemptTimeoutMillis: evidence is
// taken together only when it is recent).
func (h *Hub) refusedSince(b byte) time.Time {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	if p == nil || !p.present || p.refusedAt.IsZero() || p.refusedInc != p.e.Inc ||
		time.Since(p.refusedAt) > h.cfg.goneGrace()+h.cfg.attemptTimeout() {
		return time.Time{}
	}
	return p.refusedAt
}

// settled reports whether this node has been connected to NATS for
// settleSeconds: "no responders" counts from then on.
func (h *Hub) settled() bool {
	return mono.Since()-time.Duration(h.connectedAt.Load()) >= h.cfg.settle()
}
