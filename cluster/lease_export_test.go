package cluster

// Crash makes h look, to the other nodes, like a process that died: its
// NATS connections close without a drain and nothing is released (its
// registry entry, its stream leases); an embedded NATS server stops. The
// node's own goroutines go on as a cut-off node's would. Close still works
// afterwards.
func Crash(h *Hub) {
	h.ctl.Close()
	h.data.Close()
	if h.ns != nil {
		h.ns.Shutdown()
	}
}
