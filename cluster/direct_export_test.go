package cluster

// DirectAddr is this node's direct query address ("" without one).
func (h *Hub) DirectAddr() string { return h.direct.Addr() }

// DirectServed counts the queries this node answered over its direct link.
func (h *Hub) DirectServed() int64 {
	if h.direct == nil {
		return 0
	}
	return h.direct.served.Load()
}

// CloseDirect closes this node's direct link (listener and connections)
// while the node stays up: the others must ask it over NATS.
func (h *Hub) CloseDirect() { h.direct.close() }

// DirectFrame encodes fields as a frame of the direct link.
var DirectFrame = frame
