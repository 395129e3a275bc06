package gateway

import (
	"time"

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

// StepWall steps the wall clock the gateway reads by d (as NTP or a VM's
// resume would) until the returned func undoes it.
func StepWall(d time.Duration) (undo func()) {
	clocks.step.Add(int64(d))
	return func() { clocks.step.Add(-int64(d)) }
}

// Sweeps reports how many rounds the gateway's sweeper has made.
func (g *Gateway) Sweeps() uint64 { return g.sweeps.Load() }

// stampOf is a stamp reported as the wall time t (wallAt), in the latest
// epoch that can hold it: a time before the process started falls in
// the first, whose offset earlier steps may have left apart from the
// latest's.
func stampOf(t time.Time) int64 {
	es := *clocks.epochs.Load()
	for i := len(es) - 1; i > 0; i-- {
		if m := t.UnixNano() - es[i].off; m >= es[i].from {
			return m
		}
	}
	return t.UnixNano() - es[0].off
}

// SetTestHookUpgradeInline sets a func an upgrade served on the front's
// accept loop runs before it acquires the config (nil: none).
func SetTestHookUpgradeInline(f func()) {
	if f == nil {
		testHookUpgradeInline.Store(nil)
		return
	}
	testHookUpgradeInline.Store(&f)
}

// SetLinger sets how long g's read turns linger for more and how many may
// linger at once (lingerBound).
func (g *Gateway) SetLinger(d time.Duration, max int) {
	g.linger.d.Store(int64(d))
	g.linger.max.Store(int32(max))
}

// Lingering reports how many of g's read turns linger now, by its count.
func (g *Gateway) Lingering() int { return int(g.linger.n.Load()) }

// Reading reports how many of g's connections a goroutine reads (a read
// turn, lingering or not, or a blocking reader).
func (g *Gateway) Reading() (n int) {
	g.hub.Each(func(hc hub.Conn) bool {
		if c, ok := hc.(*conn); ok {
			c.mu.Lock()
			if c.reading {
				n++
			}
			c.mu.Unlock()
		}
		return true
	})
	return n
}
