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

// SetDirectHooks makes every node of this process call up with its config
// and advertised direct query address once it listens, and via with its
// config and each address it dials, for the address to dial instead (a
// test's proxy: the link then crosses the same network as the routes).
func SetDirectHooks(up func(c *Config, addr string), via func(c *Config, addr string) string) {
	directUp.Store(&up)
	directVia.Store(&via)
}

// DirectDialsFailed counts this node's dials of other nodes' direct links
// that failed.
func (h *Hub) DirectDialsFailed() int64 {
	if h.direct == nil {
		return 0
	}
	return h.direct.dialFailed.Load()
}

// DirectCalls counts the calls this node sent over its direct links and
// the call frames it answered on its own.
func (h *Hub) DirectCalls() (sent, served int64) {
	if h.direct == nil {
		return 0, 0
	}
	return h.direct.callsSent.Load(), h.direct.callsServed.Load()
}
