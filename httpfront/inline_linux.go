//go:build linux

package httpfront

import "time"

// serveInline is Serve's turn with a fresh connection when Inline is
// set: one read that does not wait and, when it found a whole head that
// Serves and Inline claim, the request served here, on the accepting
// goroutine, with no hand-off to a pooled one. Whatever else comes of
// the read (a head in part, one to hand off or to serve on a pooled
// goroutine, the connection's next requests) is given to a pooled
// goroutine with the bytes read and, when parsed, the request (held).
// false: the read found nothing (the kernel gave the connection over
// before its first bytes: no DeferAccept, or a silent client after its
// second); Serve then hands the connection over as any other, untouched.
func (c *conn) serveInline() bool {
	fc, ok := c.nc.(*fdConn)
	if !ok {
		return false
	}
	closed, ready := c.readFirst(fc)
	switch {
	case closed:
		return true
	case !ready || c.n == 0:
		c.release()
		return false
	}
	s := c.srv
	c.waitUntil, c.headStarted = deadline(time.Now(), s.headerTimeout()), true
	c.setReadDeadline(c.waitUntil)
	c.idle.Store(true)
	c.inlineTurn()
	return true
}

// inlineTurn serves the first request in buf when Inline claims it, and
// gives the connection to a pooled goroutine for the rest.
func (c *conn) inlineTurn() {
	s := c.srv
	defer s.recoverHandler(c)
	if s.TLS == nil || !s.TLSOnly && c.buf[0] != tlsRecordHandshake {
		if c.rq == nil {
			c.rq = new(reqBox)
		}
		p, verdict := parseHeadInto(c.buf[:c.n], c.rq)
		if verdict == headOK && (s.Serves == nil || s.Serves(p.req)) {
			if !s.Inline(p.req) {
				c.held = p
			} else {
				c.startRequest()
				c.inline = true
				ok := c.serveRequest(p)
				c.inline = false
				if !ok || c.served() {
					c.recycle() // hijacked (the upgrade), or closed
					return
				}
			}
		}
	}
	serving.Go(c.goOnFn)
}

// goOn serves a connection serveInline began.
func (c *conn) goOn() {
	defer c.srv.recoverHandler(c)
	if c.serveHeads() {
		c.recycle()
	}
}
