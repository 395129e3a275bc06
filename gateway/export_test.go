package gateway

import (
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/hub"
)

// Outbound reports, for tests, a connection's frames and bytes not yet
// written (queued or in the batch being written) and how many queued
// frames are pongs. ok is false when the id is not open.
func (g *Gateway) Outbound(id string) (frames, bytes, pongs int, ok bool) {
	var c *conn
	g.hub.Each(func(hc hub.Conn) bool {
		if hc.ID() == id {
			c, _ = hc.(*conn)
		}
		return c == nil
	})
	if c == nil {
		return 0, 0, 0, false
	}
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
