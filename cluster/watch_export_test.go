package cluster

// StallWatch makes this node's registry watcher deliver nothing more, as
// a consumer on a dead server does: its updates are dropped until it is
// recreated.
func (h *Hub) StallWatch() { h.watchStalled.Store(h.watchGen.Load()) }

// WatchRestarts counts the watchers recreated as stalled.
func (h *Hub) WatchRestarts() int64 { return h.watchRestarts.Load() }

// Renew renews this node's registry entry now and returns its revision.
func (h *Hub) Renew() uint64 {
	h.renew(h.ctx)
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.ownRev
}

// PeerRev is the revision of node b's entry this node holds.
func (h *Hub) PeerRev(b byte) uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if p := h.peers[b]; p != nil {
		return p.rev
	}
	return 0
}
