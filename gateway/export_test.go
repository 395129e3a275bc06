package gateway

import (
	"context"

	"github.com/gobwas/ws"
)

// Outbound reports, for tests, a connection's frames and bytes not yet
// written (queued or in the batch being written) and how many queued
// frames are pongs. ok is false when the id is not open.
func (g *Gateway) Outbound(id string) (frames, bytes, pongs int, ok bool) {
	hc, err := g.hub.Conn(context.Background(), id)
	if err != nil {
		return 0, 0, 0, false
	}
	c := hc.(*conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.queue {
		bytes += len(f)
		if len(f) > 0 && f[0] == 0x80|byte(ws.OpPong) {
			pongs++
		}
	}
	return len(c.queue) + c.flight, bytes + c.flightBytes, pongs, true
}
