package cluster

// SetConnHook makes this node call f with the op of every request on its
// connections before anything else, on the handler's goroutine (a test's
// slow owner: requests queue behind it as behind a real pause).
func (h *Hub) SetConnHook(f func(op string)) { h.connHook.Store(&f) }
