package cluster

// LinkState is this node's link to node b: calls queued, batches out,
// calls in them, and the seqs of the batches out it holds for "no
// responders".
func (h *Hub) LinkState(b byte) (queued, inflight, outCalls, out int) {
	l := &h.links[b]
	l.mu.Lock()
	queued, inflight, outCalls = len(l.queue), l.inflight, l.outCalls
	l.mu.Unlock()
	h.outMu.Lock()
	out = len(l.out)
	h.outMu.Unlock()
	return queued, inflight, outCalls, out
}

// MayGo is the link's rule for sending a batch with inflight batches of
// outCalls calls out.
func MayGo(inflight, outCalls int) bool {
	return (&link{inflight: inflight, outCalls: outCalls}).mayGo()
}

// CallReply is the subject this node's link to node b takes its batches'
// replies on.
func (h *Hub) CallReply(b byte) string { return h.links[b].reply }
