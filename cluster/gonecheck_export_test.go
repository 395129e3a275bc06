package cluster

import "time"

// Kill makes h look, to the other nodes, like a process killed: Crash,
// and its direct link's listener and connections closed without the
// goodbye a leaving node sends on its watch connections.
func Kill(h *Hub) {
	if d := h.direct; d != nil {
		d.mu.Lock()
		clear(d.watching)
		d.mu.Unlock()
	}
	Crash(h)
	h.direct.close()
}

// KillDirect closes h's direct link as Kill does (no goodbye) while its
// NATS connections stay up.
func KillDirect(h *Hub) {
	if d := h.direct; d != nil {
		d.mu.Lock()
		clear(d.watching)
		d.mu.Unlock()
	}
	h.direct.close()
}

// GoneReason is the reason this node has for node b being gone: its
// registry entry's, or the one it took b for gone locally on; "" while b
// is not gone here.
func (h *Hub) GoneReason(b byte) string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	switch {
	case p == nil:
		return ""
	case p.localGone:
		return p.goneWhy
	case p.present && p.e.State == "gone":
		return p.e.Reason
	}
	return ""
}

// Watching reports whether this node holds a watch connection to node b's
// direct link, of the incarnation it heard last.
func (h *Hub) Watching(b byte) bool {
	addr, inc := h.directAddr(b)
	if h.direct == nil || addr == "" {
		return false
	}
	h.direct.mu.Lock()
	defer h.direct.mu.Unlock()
	p := h.direct.pools[addr+"/"+inc]
	return p != nil && p.watch != nil
}

// Refusals counts the checks of this node that found a link refusing;
// Checking reports whether a check of node b runs.
func (h *Hub) Refusals() int64 {
	h.checks.mu.Lock()
	defer h.checks.mu.Unlock()
	return h.checks.refusals
}

func (h *Hub) Checking(b byte) bool {
	h.checks.mu.Lock()
	defer h.checks.mu.Unlock()
	return h.checks.running[b]
}

// Heard is what a node heard of another, for SetJudgeHooks: a heartbeat,
// an answer to its ping naming the answering incarnation, or the other
// node's start-up ping naming it.
type Heard = heardKind

const (
	HeardHeartbeat = heardHeartbeat
	HeardAnswer    = heardAnswer
	HeardPing      = heardPing
)

// SetJudgeHooks makes every node of this process ask heard, with its
// config, whether it hears a heartbeat, a ping's answer or a start-up
// ping (kind) from the node named from (false: dropped), and fail, before it commits another node's gone in the
// registry, for an error to take instead of the registry's answer (nil:
// the registry is asked).
func SetJudgeHooks(heard func(c *Config, from string, kind Heard) bool, fail func(c *Config) error) {
	heartbeatHook.Store(&heard)
	commitHook.Store(&fail)
}

// HeardSeq is the sequence number of the last heartbeat of node b this
// node heard, of the incarnation the registry holds (0: none).
func (h *Hub) HeardSeq(b byte) uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	if p == nil || p.lastSeen.IsZero() || p.hb.Inc != p.e.Inc {
		return 0
	}
	return p.hb.Seq
}

// Answered reports whether the incarnation the registry holds for node b
// answered a ping of this node's (confirm).
func (h *Hub) Answered(b byte) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	return p != nil && p.present && p.e.Inc != "" && p.answered == p.e.Inc
}

// ChecksStarted counts the checks of other nodes this node started.
func (h *Hub) ChecksStarted() int64 {
	h.checks.mu.Lock()
	defer h.checks.mu.Unlock()
	return h.checks.started
}

// HoldChecks makes node b look, to this node's checks, as found there by
// a check a moment ago, for as long as the test runs: the back-off of the
// checks a slow attempt starts (checkEvery) applies.
func (h *Hub) HoldChecks(b byte) {
	h.checks.mu.Lock()
	defer h.checks.mu.Unlock()
	h.checks.alive[b] = time.Now().Add(time.Hour)
}

// SuspectSlow and SuspectNoResp start a check of node b as a slow batch
// and as a call answered "no responders" do.
func (h *Hub) SuspectSlow(b byte)   { h.suspect(b, false) }
func (h *Hub) SuspectNoResp(b byte) { h.suspectNoResp(b) }
