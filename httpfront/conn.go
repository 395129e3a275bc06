package httpfront

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// tlsRecordHandshake is the first byte of every TLS connection; no HTTP
// request starts with it.
const tlsRecordHandshake = 0x16

// maxDrain is how much of a body its handler left unread the front reads
// and drops to keep the connection (net/http's figure); beyond, the
// connection closes after the response.
const maxDrain = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// conn is one accepted connection while the front serves it.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	// buf holds what was read and not yet consumed: buf[off:n].
	buf    []byte
	pooled *[]byte // buf's pool entry, nil when buf grew past it
	off, n int
	// idle: waiting for a request's head, the first included (Shutdown
	// wakes such a connection to close it).
	idle atomic.Bool
	// pending: the connection holds a slot of Server.pending (its first
	// head is not read yet).
	pending bool
	// reqs counts the requests served.
	reqs int
	// waitUntil is when the wait for the head under way ends: the first
	// head's or a started head's header timeout, or the idle timeout
	// between requests. untilSet: waitUntil changed since the socket's
	// read deadline was last set (a connection outside the poller).
	waitUntil   time.Time
	untilSet    bool
	headStarted bool // bytes of the next head came: waitUntil is its header timeout
	// armed is the read deadline this goroutine last set on the socket.
	// A later waitUntil (the idle timeout after each request) leaves it
	// in place: when it fires first, fill sets waitUntil and reads on,
	// so a keep-alive request costs no deadline change (a runtime timer
	// moved under a lock).
	armed time.Time
	// The poller's (Linux; poll_linux.go). state: who has the connection
	// (connOwned: a goroutine; connParked: the poller; whoever moves it
	// from connParked owns it); until: waitUntil in Unix nanoseconds while
	// parked (0: none), for the sweep. The rest is the owner's: registered
	// in the poller, under parkFD and generation parkGen; unread: the
	// socket may hold bytes not read yet (an event came, or a read filled
	// the buffer); blocking: the poller refused it, it waits in the
	// runtime's poller as any other; resumeFn: c.resume, made once (and
	// kept with a recycled conn, as serveFn, c.serve).
	state      atomic.Uint32
	until      atomic.Int64
	registered bool
	unread     bool
	blocking   bool
	parkFD     int
	parkGen    uint32
	resumeFn   func()
	serveFn    func()
	goOnFn     func() // c.goOn, as serveFn
	// hijacked: the handler took the socket; once serve or resume is
	// done with the conn it goes back to connPool.
	hijacked bool
	// rq is the parsed request, reused for the connection's next one.
	rq *reqBox
	// held: the first request, parsed by serveInline and left to a
	// pooled goroutine to serve (held.req nil: none).
	held parsed
	// inline: the request being served is on an accept loop (inlineTurn).
	inline bool
	w      response
	body   body
	head   []byte // the response head's buffer, kept between requests
	// readDeadline is the one a handler asked for (SetReadDeadline),
	// applied before the body's next read of the socket; with
	// readTimeout (SetBodyTimeout) it is that long after that read's
	// start instead.
	readDeadline    time.Time
	readTimeout     time.Duration
	readDeadlineSet bool
}

func (c *conn) remoteAddr() string {
	if c.remote == "" {
		c.remote = peerString(c.nc)
	}
	return c.remote
}

// releasePending gives the connection's pending slot back, once.
func (c *conn) releasePending() {
	if c.pending {
		c.pending = false
		<-c.srv.pending
	}
}

// release gives the read buffer back to the pool.
func (c *conn) release() {
	if c.pooled != nil {
		bufPool.Put(c.pooled)
	}
	c.pooled, c.buf = nil, nil
}

// connPool holds the conns of connections the front is done with on the
// goroutine that served them (hijacked by a WebSocket upgrade, closed
// after a keep-alive request or when the client closed between them,
// handed to Fallback) for the next accepted ones: nothing of the front
// refers to such a conn any more, so its conn, request box, response
// header and the method values bound to it serve the next connection
// without allocating them (a connection ramp of keep-alive POST clients
// then makes that much less garbage for the collector).
var connPool = sync.Pool{New: func() any { return new(conn) }}

// newConn is a conn for an accepted connection, pending its first head.
func newConn(s *Server, nc net.Conn) *conn {
	c := connPool.Get().(*conn)
	if c.serveFn == nil {
		c.serveFn, c.resumeFn, c.goOnFn = c.serve, c.resume, c.goOn
	}
	c.srv, c.nc, c.pending = s, nc, true
	return c
}

// recycle puts the conn of a connection that ended on the goroutine
// serving it (serveHeads) back in connPool, its
// fields as newConn expects them apart from what is kept for reuse (the
// request box, the response's header map and head buffer). Only a conn
// that never parked: the poller, its sweep and the goroutine that parked
// it may still hold one that did (they act on its state after handing it
// over), so that one is left to the collector.
func (c *conn) recycle() {
	if c.registered {
		return
	}
	c.srv, c.nc, c.remote = nil, nil, ""
	c.buf, c.pooled, c.off, c.n = nil, nil, 0, 0
	c.idle.Store(false)
	c.pending, c.reqs, c.hijacked = false, 0, false
	c.waitUntil, c.untilSet, c.headStarted, c.armed = time.Time{}, false, false, time.Time{}
	c.unread, c.blocking = false, false
	c.w.c, c.w.req, c.w.err = nil, nil, nil
	c.held, c.inline = parsed{}, false
	c.body = body{}
	c.readDeadline, c.readTimeout, c.readDeadlineSet = time.Time{}, 0, false
	connPool.Put(c)
}

// serve reads requests until the connection closes, is hijacked or handed
// off.
func (c *conn) serve() {
	s := c.srv
	defer s.recoverHandler(c)
	c.waitUntil, c.headStarted = deadline(time.Now(), s.headerTimeout()), true
	c.setReadDeadline(c.waitUntil)
	if s.Prepare != nil {
		pc, err := s.Prepare(c.nc)
		if err != nil {
			c.close()
			return
		}
		c.nc = pc
	}
	c.idle.Store(true)
	if s.Prepare == nil && c.parkForHead() {
		return // the poller resumes it (resume) or closes it
	}
	if c.serveHeads() {
		c.recycle()
	}
}

// resume serves a connection the poller woke: bytes came.
func (c *conn) resume() {
	defer c.srv.recoverHandler(c)
	c.unread = true
	if c.serveHeads() {
		c.recycle()
	}
}

// serveHeads reads and serves requests until the connection parks in the
// poller, closes, is hijacked or handed off. ended: it closed, was
// hijacked or handed off while a request was served or awaited on this
// goroutine, which alone may then recycle the conn (after a park, c is
// the poller's and whichever goroutine it resumes on: not to be read
// here; a wait's read that fails without a park is left to the
// collector too, more cannot tell the two apart).
func (c *conn) serveHeads() (ended bool) {
	for {
		if c.serveBuffered() {
			return true
		}
		if c.reqs > 0 {
			if done, waited := c.serveWaiting(); waited {
				if !done {
					continue
				}
				return true
			}
		}
		if !c.more() {
			return false
		}
	}
}

// serveBuffered serves the requests whole in buf. true: the connection is
// no longer this goroutine's (closed, hijacked, handed off); false: it
// needs more bytes.
func (c *conn) serveBuffered() bool {
	s := c.srv
	for {
		if c.off == c.n {
			return false
		}
		if c.reqs == 0 && s.TLS != nil && (s.TLSOnly || c.buf[0] == tlsRecordHandshake) {
			c.handOff(func(nc net.Conn) net.Conn { return tls.Server(nc, s.TLS) })
			return true
		}
		if p := c.held; p.req != nil {
			// Parsed on the accepting goroutine (serveInline), which left
			// it to this one: Serves took it already.
			c.held = parsed{}
			c.startRequest()
			if !c.serveRequest(p) || c.served() {
				return true
			}
			continue
		}
		if c.rq == nil {
			c.rq = new(reqBox)
		}
		p, verdict := parseHeadInto(c.buf[c.off:c.n], c.rq)
		switch verdict {
		case headMore:
			if !c.headStarted {
				c.waitUntil, c.headStarted, c.untilSet = deadline(time.Now(), s.headerTimeout()), true, true
			}
			if c.n-c.off >= s.headLimit() {
				c.handOff(nil)
				return true
			}
			return false
		case headHandOff, headTooLarge:
			c.handOff(nil)
			return true
		}
		c.startRequest()
		if s.Serves != nil && !s.Serves(p.req) {
			c.handOff(nil)
			return true
		}
		if !c.serveRequest(p) || c.served() {
			return true // hijacked, or closed
		}
	}
}

// startRequest notes that a whole head came: the connection is no longer
// idle nor pending.
func (c *conn) startRequest() {
	c.idle.Store(false)
	c.releasePending()
}

// served does what follows a request the connection outlived: the next
// head gets the idle timeout, then its own header timeout once its first
// bytes come. closed: Shutdown began and nothing more is buffered.
func (c *conn) served() (closed bool) {
	s := c.srv
	c.reqs++
	c.idle.Store(true)
	now := c.w.finished
	if now.IsZero() {
		now = time.Now()
	}
	c.waitUntil, c.headStarted, c.untilSet = deadline(now, s.idleTimeout()), false, true
	if c.off == c.n {
		c.off, c.n = 0, 0
		if s.closing.Load() {
			c.close()
			return true
		}
	}
	return false
}

// more reads at least one more byte into buf, waiting until waitUntil.
// false: the connection is no longer this goroutine's: parked in the
// poller (it resumes when bytes come), or closed (the read failed, timed
// out, or Shutdown).
func (c *conn) more() bool {
	if ok, polled := c.morePolled(); polled {
		return ok
	}
	c.armUntil()
	idleWait := !c.headStarted // Shutdown wakes such a read to close
	if !c.fill() || idleWait && c.srv.closing.Load() {
		c.close()
		return false
	}
	return true
}

// armUntil applies a changed waitUntil to the socket's read deadline
// when it is earlier than the armed one (see armed).
func (c *conn) armUntil() {
	if c.untilSet {
		c.untilSet = false
		if !c.waitUntil.Equal(c.armed) && (c.armed.IsZero() || c.waitUntil.IsZero() || c.waitUntil.Before(c.armed)) {
			c.setReadDeadline(c.waitUntil)
		}
	}
}

// makeRoom makes room after n in buf: it takes a pooled buffer when the
// connection holds none, moves the unconsumed bytes to the front, or
// grows the buffer (up to maxHead) when it is full.
func (c *conn) makeRoom() {
	if c.buf == nil {
		c.pooled = bufPool.Get().(*[]byte)
		c.buf = *c.pooled
	}
	if c.off > 0 {
		c.n = copy(c.buf, c.buf[c.off:c.n])
		c.off = 0
	}
	if c.n == len(c.buf) {
		nb := make([]byte, min(2*len(c.buf), maxHead+bufSize))
		copy(nb, c.buf[:c.n])
		c.release()
		c.buf = nb
	}
}

// fill reads at least one byte into buf after n, waiting in the
// runtime's poller until waitUntil. false: the read failed (closed, timed
// out).
func (c *conn) fill() bool {
	c.makeRoom()
	for {
		m, err := c.nc.Read(c.buf[c.n:])
		c.n += m
		if m > 0 || err == nil && c.n > 0 {
			return true
		}
		if !c.early(err) {
			return false
		}
	}
}

// early reports whether err is the socket's armed deadline firing before
// waitUntil (more leaves an earlier one in place), and if so moves the
// deadline to waitUntil. A Shutdown's wake-up is not early.
func (c *conn) early(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.waitUntil.IsZero() || c.srv.closing.Load() ||
		!time.Now().Before(c.waitUntil) {
		return false
	}
	c.setReadDeadline(c.waitUntil)
	return true
}

// setReadDeadline sets the socket's read deadline and remembers it.
func (c *conn) setReadDeadline(t time.Time) {
	_ = c.nc.SetReadDeadline(t)
	c.armed = t
}

// serveRequest runs the handler on one parsed request and writes its
// response. false: the connection is no longer the front's (hijacked or
// closed).
func (c *conn) serveRequest(p parsed) bool {
	s := c.srv
	r := p.req
	r.RemoteAddr = c.remoteAddr()
	c.off += p.n
	// The body's reads of the socket run under the request's deadline
	// (none, or ReadTimeout's) unless the handler sets one, as net/http.
	c.readDeadline, c.readTimeout, c.readDeadlineSet = time.Time{}, 0, true
	if d := s.Fallback.ReadTimeout; d > 0 {
		c.readDeadline = time.Now().Add(d)
	}
	if r.ContentLength > 0 {
		c.body = body{c: c, left: r.ContentLength}
		r.Body = &c.body
	}
	c.w.reset(c, r)
	c.w.inline = c.inline
	s.handler.ServeHTTP(&c.w, r)
	if c.w.hijacked {
		s.untrack(c)
		c.hijacked = true
		return false
	}
	closing := p.closes || c.w.closeAfter() || s.closing.Load()
	// A body the handler left unread is drained (up to maxDrain) only to
	// keep the connection, before the response as net/http does; one
	// that closes anyway is answered at once, as net/http answers with
	// closeAfterReply (a refusal must not wait for a body it refused).
	if left := c.body.left; !closing && r.ContentLength > 0 && left > 0 {
		if left > maxDrain || !c.drain() {
			closing = true
		}
	}
	if err := c.w.finish(closing); err != nil || closing {
		if err == nil && r.ContentLength > 0 && c.body.left > int64(c.n-c.off) { // more to come than buffered
			c.lingerClose()
			return false
		}
		c.close()
		return false
	}
	return true
}

// lingerTime bounds lingerClose's wait: net/http's rstAvoidanceDelay.
const lingerTime = 500 * time.Millisecond

// lingerClose closes a connection whose request body is still coming
// after its response, as net/http's closeWriteAndWait: the response is
// followed by a FIN, and the body's bytes are read and dropped until the
// client closes, for at most lingerTime and maxDrain bytes, before the
// socket closes. Closed at once, with unread bytes in its receive queue,
// it would answer the client's next segment with a RST, which can make
// the client drop the response before reading it.
func (c *conn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if c.nc.SetReadDeadline(time.Now().Add(lingerTime)) == nil {
		_, _ = io.CopyN(io.Discard, c.nc, maxDrain)
	}
	c.close()
}

// drain reads and drops the rest of a body the handler left.
func (c *conn) drain() bool {
	_, err := io.Copy(io.Discard, &c.body)
	return err == nil
}

// close closes the connection and stops tracking it.
func (c *conn) close() {
	c.unregister()
	c.releasePending()
	_ = c.nc.Close()
	c.release()
	c.srv.untrack(c)
}

// handOff gives the connection to Fallback with the unconsumed bytes in
// front of it; wrap, when set, wraps that (TLS).
func (c *conn) handOff(wrap func(net.Conn) net.Conn) {
	var nc net.Conn = c.nc
	if c.n > c.off {
		nc = &PrefixConn{Conn: c.nc, Prefix: append([]byte(nil), c.buf[c.off:c.n]...)}
	}
	_ = c.nc.SetReadDeadline(time.Time{}) // net/http sets its own
	c.unregister()
	c.releasePending()
	if wrap != nil {
		nc = wrap(nc)
	}
	c.release()
	c.srv.untrack(c)
	c.srv.handOff(nc)
}

// hijack hands the socket and the bytes read past the request over.
func (c *conn) hijack() (net.Conn, []byte) {
	var rest []byte
	if c.n > c.off {
		rest = append([]byte(nil), c.buf[c.off:c.n]...)
	}
	c.unregister()
	c.release()
	_ = c.nc.SetDeadline(time.Time{})
	return c.nc, rest
}

// body is a request body of a known length, read from what the head's
// read brought first, then from the socket.
type body struct {
	c    *conn
	left int64
}

func (b *body) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if b.c.w.hijacked {
		return 0, http.ErrHijacked
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	c := b.c
	if c.n > c.off {
		n := copy(p, c.buf[c.off:c.n])
		c.off += n
		b.left -= int64(n)
		return n, nil
	}
	if c.readDeadlineSet {
		d := c.readDeadline
		if c.readTimeout > 0 {
			d = time.Now().Add(c.readTimeout)
		}
		c.setReadDeadline(d)
		c.readDeadlineSet = false
	}
	n, err := c.nc.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && b.left == 0 {
		err = io.EOF
	}
	return n, err
}

func (b *body) Close() error { return nil }

// PrefixConn gives back Prefix, bytes read from Conn before it was handed
// on, ahead of the rest of the stream.
type PrefixConn struct {
	net.Conn
	Prefix []byte
}

func (c *PrefixConn) Read(p []byte) (int, error) {
	if len(c.Prefix) > 0 {
		n := copy(p, c.Prefix)
		c.Prefix = c.Prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite shuts the socket's writing side, as net/http does before it
// closes a connection it refused, so the client reads the answer before
// a reset.
func (c *PrefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// chanListener is the listener Fallback serves: the connections the
// front hands over.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// put hands nc to the listener's Accept; false once it is closed.
func (l *chanListener) put(nc net.Conn) bool {
	select {
	case l.conns <- nc:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// newBufioReader is the hijacker's reader over rest, then nc.
func newBufioReader(nc net.Conn, rest []byte) *bufio.Reader {
	if len(rest) == 0 {
		return bufio.NewReaderSize(nc, 16)
	}
	br := bufio.NewReaderSize(&PrefixConn{Conn: nc, Prefix: rest}, max(len(rest), 16))
	_, _ = br.Peek(len(rest)) // buffered: Buffered() tells the hijacker
	return br
}
