package cluster

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/hub"
)

// The direct query link: with an embedded NATS server, each node also
// listens on an ephemeral TCP port of its route host (clusterListen's, or
// advertise's when set) and gives that address in its heartbeats ("q").
// Another node sends it the queries of a listing or a count (scatter), and
// the calls on its connections that go alone (directcalls.go), over a
// connection it keeps open, and reads the answer on the same goroutine
// that sent the query: one wake-up on each side, where a query over NATS
// crossed the asking node's nats.go flusher, its NATS server, the route,
// the owner's server, its nats.go reader and handler goroutine, and as
// many again back (about 10 wake-ups a node, 25 a page of three nodes).
// NATS stays the fallback: a node without an address (external NATS, an
// unspecified route host, an older node), no idle connection to it (one
// is then opened in the background, for the next query), a connection
// that breaks, or more queries at once than directPerNode, goes over .q
// as before. The link has the routes' protection: their TLS
// (clusterTls, the same certificates, a client certificate required when
// verify is on) and their user and password (clusterAuth), checked in the
// connection's first frame, with the cluster's name and the node and
// incarnation the asker means (an address reused by another process or
// incarnation refuses it).
//
// Frames are a 4-byte big-endian length and that many bytes. The first
// frame of a connection: directMagic, the cluster's name, the node byte
// (hex) and incarnation asked, the route user and password, each a uvarint
// length and the bytes, and optionally a role: "watch" (a watch
// connection, below) or "calls" (a connection that may carry calls,
// directcalls.go); its answer one byte, 0 (served), directServesCalls
// (served, calls too: to the role "calls") or 1 (refused, then closed).
// A query:
// op, group, after, limit, deadline (unix ms), each a uvarint length and
// the bytes; the answer: a status byte (0 the body follows; 1 an error:
// HTTP status as 2 bytes, then the text; 2 dropped past its deadline).
// A call: the op directCallOp, then a batch of calls (directcalls.go).
//
// Each node also keeps one watch connection to every peer it hears
// (keepWatches): authenticated like the others, it carries no query; the
// asker reads it, and the served side sends one frame on it, a goodbye
// (status byte 3), when its link closes (Close). A watch connection that
// ends without a goodbye (EOF, a reset: the kernel closed the sockets of a
// killed process) has the node checked at once (gonecheck.go); the watch
// also makes every peer's link one this node has authenticated with,
// which a refusal needs to count.
type direct struct {
	h    *Hub
	ln   net.Listener
	addr string      // advertised, host:port
	tls  *tls.Config // the routes', or nil
	host string      // for the client's TLS ServerName

	stop   context.Context // cancelled by close: ends the dials under way
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	pending []*pendingConn        // served, not authenticated yet; oldest first
	serving map[net.Conn]struct{} // served, authenticated (raw connections)
	// watching are the served watch connections (raw → as read, TLS
	// or not): the goodbye goes to them.
	watching map[net.Conn]net.Conn
	pools    map[string]*directPool // by address and incarnation
	wg       sync.WaitGroup

	closedBy [directReasons]atomic.Int64 // connections closed past a bound or refused, by reason
	warned   atomic.Int64                // unix ns of the last warning of a bound

	served      atomic.Int64 // queries answered (tests)
	callsServed atomic.Int64 // call frames answered (directcalls.go; tests)
	callsSent   atomic.Int64 // calls sent over the link (tests)
	dialFailed  atomic.Int64 // dials that failed (tests)

	// unansweredBroken and unansweredSilent count the calls sent over
	// the link whose answer did not come on it: the connection broke
	// first, or gave none for a whole attempt and was closed (an answer
	// after that is lost); the call goes again over NATS (directcalls.go).
	unansweredBroken, unansweredSilent atomic.Int64
}

// pendingConn is a served connection whose first frame has not been
// checked yet.
type pendingConn struct {
	c   net.Conn // the raw connection: closing it never waits
	src string   // its source address (an IPv6 one's /64)
}

// Bounds and times of the direct link.
//
// Served side: a connection counts against directMaxPending (and
// directPendingPerSource for its source address) until its first frame is
// checked, which must come within directHelloWait; only then does it take
// one of the directMaxServed places of authenticated peers. So connections
// that never authenticate (a port scanner, a client sending nothing or
// garbage) cannot take an authenticated peer's place. Past the pending
// bounds the oldest pending connection of the source with the most is
// closed (of the new connection's own source when that source is at its
// bound): a peer, which sends its first frame as soon as it is connected,
// is closed only if more than directMaxPending sources are at it at once.
//
// Asking side: a query never waits for a connection to be opened. With
// no idle connection to the node it goes over NATS, and one dial to that
// node runs in the background (at most one at a time per node); its
// connection serves the next query. A dial that fails is tried again,
// when a query wants the node, after directRetryMin, doubling up to
// directRetryMax while it keeps failing.
const (
	directMaxServed        = 256 // authenticated connections a node serves at once (8 from each of 31 peers)
	directMaxPending       = 32  // connections not yet authenticated, at once
	directPendingPerSource = 8   // of them from one source address
	directHelloWait        = time.Second
	directPerNode          = 8                      // connections to one node at once (idle ones kept: 4)
	directIdle             = 4                      //
	directMaxRequest       = 4 << 10                // a request frame (op, group, token)
	directMaxAnswer        = maxAnswerBytes         // an answer frame's body
	directDialTimeout      = 100 * time.Millisecond // the least a dial waits (connection, first frame's answer)
	directRetryMin         = time.Second
	directRetryMax         = 10 * time.Second
	directWarnEvery        = time.Minute
	directMagic            = "wsgate-q1"
	directWatch            = "watch" // the first frame's role of a watch connection
)

// directBye is the frame the served side sends on a watch connection
// when its link closes (Close): the node is leaving, not dead.
var directBye = [5]byte{0, 0, 0, 1, 3}

// Why the served side closed a connection (closedBy, DirectClosed).
const (
	closedPending = iota // directMaxPending reached
	closedSource         // directPendingPerSource reached
	closedServed         // directMaxServed reached (answered refused)
	closedHello          // no valid first frame in time (refused, garbage, late, closed)
	directReasons
)

var directReasonNames = [directReasons]string{"unauthenticated", "source", "served", "first_frame"}

// directRetry is the wait before the next dial after fails dials in a row
// failed.
func directRetry(fails int) time.Duration {
	return min(directRetryMin<<min(max(fails-1, 0), 8), directRetryMax)
}

// errDirectBroken: the connection failed; the query goes over NATS.
var errDirectBroken = errors.New("direct query connection broken")

// startDirect opens this node's direct query listener, if it can have one;
// without it the node is asked over NATS only.
// A port fixed by queryPort that cannot be bound fails the start; a port
// the system picks that cannot be had leaves the link off, with a warning.
func (h *Hub) startDirect() error {
	e := h.cfg.NATS.Embedded
	if e == nil || e.ClusterListen == "" || e.QueryPort < 0 {
		return nil
	}
	bind, _, err := net.SplitHostPort(e.ClusterListen)
	if err != nil {
		return nil
	}
	host := bind
	if e.Advertise != "" {
		if ah, _, err := net.SplitHostPort(e.Advertise); err == nil {
			host = ah
		}
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		h.log.Info("cluster direct queries off: no route host to advertise (set advertise)")
		return nil
	}
	cfg, err := h.cfg.routeTLS()
	if err != nil {
		return nil // Start checked it already
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(e.QueryPort)))
	if err != nil {
		if e.QueryPort > 0 {
			return fmt.Errorf("cluster: nats.embedded.queryPort %d: %w", e.QueryPort, err)
		}
		h.log.Warn("cluster direct queries off: cannot listen", "error", err)
		return nil
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := &direct{h: h, ln: ln, addr: net.JoinHostPort(host, port), tls: cfg, host: host,
		serving: make(map[net.Conn]struct{}), watching: make(map[net.Conn]net.Conn), pools: make(map[string]*directPool)}
	d.stop, d.cancel = context.WithCancel(context.Background())
	h.direct = d
	if f := directUp.Load(); f != nil {
		(*f)(&h.cfg, d.addr)
	}
	d.wg.Add(1)
	go d.accept()
	return nil
}

// Set by tests only (SetDirectHooks): directUp is called with each node's
// advertised direct address once it listens, directVia with the address a
// node is about to dial, for the one to dial instead (a test's proxy, cut
// with the routes).
var (
	directUp  atomic.Pointer[func(c *Config, addr string)]
	directVia atomic.Pointer[func(c *Config, addr string) string]
)

// Addr is the advertised address, or "" when there is no listener.
func (d *direct) Addr() string {
	if d == nil {
		return ""
	}
	return d.addr
}

func (d *direct) close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.closed = true
	d.cancel()
	_ = d.ln.Close()
	watching := make([]net.Conn, 0, len(d.watching))
	for _, c := range d.watching {
		watching = append(watching, c)
	}
	d.mu.Unlock()
	// The goodbye first: the watchers must not take this node for dead.
	for _, c := range watching {
		_ = c.SetWriteDeadline(time.Now().Add(directDialTimeout))
		_, _ = c.Write(directBye[:])
	}
	d.mu.Lock()
	for _, p := range d.pending {
		_ = p.c.Close()
	}
	d.pending = nil
	for c := range d.serving {
		_ = c.Close()
	}
	for _, p := range d.pools {
		p.drop()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *direct) accept() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		pc := &pendingConn{c: c, src: sourceOf(c.RemoteAddr())}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			_ = c.Close()
			continue
		}
		victim, why := d.admit(pc)
		d.wg.Add(1)
		d.mu.Unlock()
		if victim != nil {
			_ = victim.c.Close()
			d.note(why)
		}
		go d.serve(pc)
	}
}

// admit adds pc to the pending connections and takes out the one to
// close to make room for it, if any (d.mu held).
func (d *direct) admit(pc *pendingConn) (*pendingConn, int) {
	victim, why := -1, 0
	n, first := 0, -1
	for i, p := range d.pending {
		if p.src == pc.src {
			if n++; first < 0 {
				first = i
			}
		}
	}
	switch {
	case n >= directPendingPerSource:
		victim, why = first, closedSource
	case len(d.pending) >= directMaxPending:
		// The oldest of the source with the most (the first to reach it,
		// in order, on a tie).
		counts := make(map[string]int, len(d.pending))
		most := 0
		for _, p := range d.pending {
			counts[p.src]++
			most = max(most, counts[p.src])
		}
		for i, p := range d.pending {
			if counts[p.src] == most {
				victim, why = i, closedPending
				break
			}
		}
	}
	var v *pendingConn
	if victim >= 0 {
		v = d.pending[victim]
		d.pending = slices.Delete(d.pending, victim, victim+1)
	}
	d.pending = append(d.pending, pc)
	return v, why
}

// unpend takes pc out of the pending connections; false if it was not
// there (closed to make room for another, or the link closed) (d.mu held).
func (d *direct) unpend(pc *pendingConn) bool {
	i := slices.Index(d.pending, pc)
	if i < 0 {
		return false
	}
	d.pending = slices.Delete(d.pending, i, i+1)
	return true
}

// sourceOf is the source address a connection from a counts against: its
// IP, an IPv6 address's /64 (the least a host is given).
func sourceOf(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String()
}

// note counts a connection closed for why, and warns of the bounds' closes
// at most once every directWarnEvery.
func (d *direct) note(why int) {
	d.closedBy[why].Add(1)
	if why == closedHello {
		return // refused first frames are normal around a restart (an incarnation asked for no longer here)
	}
	now := time.Now().UnixNano()
	last := d.warned.Load()
	if now-last < int64(directWarnEvery) || !d.warned.CompareAndSwap(last, now) {
		return
	}
	d.h.log.Warn("cluster direct query link: connections closed at its bounds (totals since the start)",
		"unauthenticated", d.closedBy[closedPending].Load(), "per_source", d.closedBy[closedSource].Load(),
		"authenticated", d.closedBy[closedServed].Load(),
		"bounds", fmt.Sprintf("%d not yet authenticated (%d a source), %d authenticated", directMaxPending, directPendingPerSource, directMaxServed))
}

// DirectClosed counts the connections this node's direct query link
// closed, by reason (metrics: wsgate_cluster_direct_closed_total):
// "unauthenticated" and "source", the oldest connection not yet
// authenticated closed for a new one past the bounds of such connections
// (of all, of one source address); "served", an authenticated one refused
// past the bound of those; "first_frame", one whose first frame was
// refused (cluster name, node, incarnation, route user and password), did
// not parse, or did not come within its time.
func (h *Hub) DirectClosed() map[string]int64 {
	m := make(map[string]int64, directReasons)
	for i, name := range directReasonNames {
		if h.direct != nil {
			m[name] = h.direct.closedBy[i].Load()
		} else {
			m[name] = 0
		}
	}
	return m
}

// serve answers one asking node's queries on pc, in turn.
func (d *direct) serve(pc *pendingConn) {
	defer d.wg.Done()
	authed := false
	defer func() {
		d.mu.Lock()
		if authed {
			delete(d.serving, pc.c)
		} else if d.unpend(pc) {
			d.note(closedHello)
		}
		d.mu.Unlock()
		_ = pc.c.Close()
	}()
	h := d.h
	c := pc.c
	if d.tls != nil {
		c = tls.Server(c, d.tls)
	}
	br := bufio.NewReaderSize(c, 4096)
	// The TLS handshake and the first frame, in this time.
	_ = c.SetReadDeadline(time.Now().Add(max(directHelloWait, h.cfg.attemptTimeout())))
	hello, err := readFrame(br, directMaxRequest)
	if err != nil {
		return
	}
	f := fields(hello)
	magic, name, node, inc, user, pass := f.next(), f.next(), f.next(), f.next(), f.next(), f.next()
	ok := f.err == nil && magic == directMagic && name == h.cfg.Name && node == hub.NodeHex(h.Self()) && inc == h.incarnation()
	var role string
	if ok && len(f.b) > 0 { // older askers send no role
		role = f.next()
	}
	watch := role == directWatch
	if a := h.cfg.NATS.Embedded.ClusterAuth; a != nil {
		ok = ok && subtle.ConstantTimeCompare([]byte(user), []byte(a.User)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(a.Password)) == 1
	}
	if !ok {
		_ = c.SetWriteDeadline(time.Now().Add(directHelloWait))
		_, _ = c.Write([]byte{0, 0, 0, 1, 1})
		return
	}
	d.mu.Lock()
	if !d.unpend(pc) {
		d.mu.Unlock()
		return // closed meanwhile
	}
	full := len(d.serving) >= directMaxServed
	if !full {
		d.serving[pc.c] = struct{}{}
		authed = true
		if watch {
			d.watching[pc.c] = c
			defer func() {
				d.mu.Lock()
				delete(d.watching, pc.c)
				d.mu.Unlock()
			}()
		}
	}
	d.mu.Unlock()
	if full {
		d.note(closedServed)
		_ = c.SetWriteDeadline(time.Now().Add(directHelloWait))
		_, _ = c.Write([]byte{0, 0, 0, 1, 1})
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	_ = c.SetWriteDeadline(time.Now().Add(h.cfg.requestTimeout()))
	served := []byte{0, 0, 0, 1, 0}
	if role == directCalls {
		served[4] = directServesCalls
	}
	if _, err := c.Write(served); err != nil {
		return
	}
	if watch {
		// No query comes on it: wait for the asker to close it (or the
		// link to, which says goodbye first).
		_, _ = br.ReadByte()
		return
	}
	var out []byte // a call's answer, reused
	for {
		req, err := readFrame(br, directMaxCall)
		if err != nil {
			return
		}
		if hub.NodeHex(h.Self()) != node || h.incarnation() != inc {
			return // fenced and registered again: asked as the old one
		}
		t := time.Now()
		if !h.owner(t) {
			h.notOwner()
			return // the byte may be another node's now (notOwner)
		}
		if batch, ok := callFrame(req); ok {
			if out, ok = d.serveCall(c, out[:0], batch, t); !ok {
				return
			}
			continue
		}
		f := fields(req)
		op, group, after, limit, dl := f.next(), f.next(), f.next(), f.next(), f.next()
		if f.err != nil {
			return
		}
		ms, err := strconv.ParseInt(dl, 10, 64)
		var hdr []byte
		var body []byte
		if err != nil || time.Now().After(time.UnixMilli(ms).Add(-100*time.Millisecond)) {
			hdr = []byte{0, 0, 0, 1, 2}
		} else {
			p := hub.Page{After: after}
			p.Limit, _ = strconv.Atoi(limit)
			var qerr error
			body, qerr = h.answer(op, group, p)
			if qerr != nil {
				st, text := status(qerr)
				body = []byte(text)
				hdr = binary.BigEndian.AppendUint32(nil, uint32(3+len(body)))
				hdr = append(hdr, 1, byte(st>>8), byte(st))
			} else {
				hdr = binary.BigEndian.AppendUint32(nil, uint32(1+len(body)))
				hdr = append(hdr, 0)
			}
		}
		d.served.Add(1)
		_ = c.SetWriteDeadline(time.Now().Add(h.cfg.requestTimeout()))
		bufs := net.Buffers{hdr, body}
		if _, err := bufs.WriteTo(c); err != nil {
			return
		}
	}
}

// directPool holds one node incarnation's open connections.
type directPool struct {
	key, addr, node, inc string
	b                    byte
	idle                 []*directConn
	watch                *directConn // the watch connection (watchConn), or nil
	open                 int         // idle, in use, being opened, or the watch
	dialing              bool        // a dial runs (dial)
	fails                int         // dials failed in a row
	retryAt              time.Time   // no dial before
	// authed: a connection to this address and incarnation has been
	// authenticated (its first frame accepted): a refused connect to it
	// counts as evidence (refuses).
	authed bool
}

// drop closes p's idle connections and its watch (d.mu held): p is no
// longer used.
func (p *directPool) drop() {
	for _, c := range p.idle {
		_ = c.c.Close()
	}
	p.open -= len(p.idle)
	p.idle = nil
	if p.watch != nil {
		_ = p.watch.c.Close()
		p.watch = nil
		p.open--
	}
}

type directConn struct {
	c  net.Conn
	br *bufio.Reader
	p  *directPool
	// calls: the node serves calls on it too (directcalls.go), not only
	// queries.
	calls bool
	// The answer being read (kept across a read's timeout).
	hdr  [4]byte
	hn   int
	body []byte
	bn   int
}

// get returns an idle connection to node b of incarnation inc at addr, or
// nil: then ask over NATS. It never waits for a connection to be opened:
// when there is no idle one, one dial to the node is started in the
// background (unless one runs, the node has directPerNode open, or the
// last dial failed less than its retry time ago), for the next query.
func (d *direct) get(b byte, addr, inc string) *directConn {
	return d.take(b, addr, inc, false)
}

// take is get, for a query or (call) a call: a call takes only a
// connection of a node that serves calls, and starts a dial only while
// the node has fewer than directIdle connections open besides its watch
// (so a burst of calls does not dial connections that put then closes).
func (d *direct) take(b byte, addr, inc string, call bool) *directConn {
	if d == nil || addr == "" {
		return nil
	}
	key := addr + "/" + inc
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	p := d.pools[key]
	if p == nil {
		p = d.pool(b, addr, inc)
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		if call && !c.calls {
			return nil // a node of the previous version: queries only
		}
		p.idle = p.idle[:n-1]
		return c
	}
	open := p.open
	if p.watch != nil {
		open--
	}
	if !call || open < directIdle {
		d.startDial(p, false)
	}
	return nil
}

// pool returns the pool of node b's incarnation inc at addr, creating it
// (d.mu held).
func (d *direct) pool(b byte, addr, inc string) *directPool {
	key := addr + "/" + inc
	p := d.pools[key]
	if p != nil {
		return p
	}
	if len(d.pools) >= 2*(hub.MaxNode+1) { // mostly incarnations long gone
		for _, o := range d.pools {
			o.drop()
		}
		clear(d.pools)
	}
	p = &directPool{key: key, addr: addr, node: hub.NodeHex(b), inc: inc, b: b}
	d.pools[key] = p
	return p
}

// startDial starts a dial of p's node in the background unless one runs,
// the node has directPerNode open, or the last dial failed less than its
// retry time ago (d.mu held); watch: its connection is to be p's watch.
func (d *direct) startDial(p *directPool, watch bool) {
	if !p.dialing && p.open < directPerNode && !time.Now().Before(p.retryAt) {
		p.dialing = true
		p.open++
		d.wg.Add(1)
		go d.dial(p, watch)
	}
}

// dial opens a connection to p's node and keeps it idle for the next
// query (or as the watch, if asked and there is none), or notes the
// failure and when to try again.
func (d *direct) dial(p *directPool, watch bool) {
	defer d.wg.Done()
	c, err := d.open(p, watch)
	d.mu.Lock()
	p.dialing = false
	if err != nil {
		p.open--
		p.fails++
		retry := directRetry(p.fails)
		p.retryAt = time.Now().Add(retry)
		d.mu.Unlock()
		d.dialFailed.Add(1)
		d.h.log.Debug("cluster direct query connection failed; asking over NATS", "node", p.node, "addr", p.addr, "retry", retry, "error", err)
		return
	}
	p.fails, p.retryAt, p.authed = 0, time.Time{}, true
	if watch && !d.closed && d.pools[p.key] == p && p.watch == nil {
		p.watch = c
		d.wg.Add(1)
		d.mu.Unlock()
		go d.watchConn(p, c)
		return
	}
	if watch || d.closed || d.pools[p.key] != p || len(p.idle) >= directIdle {
		p.open--
		d.mu.Unlock()
		_ = c.c.Close()
		return
	}
	p.idle = append(p.idle, c)
	d.mu.Unlock()
}

// open connects to p's node and has its first frame accepted; watch: as
// a watch connection.
func (d *direct) open(p *directPool, watch bool) (*directConn, error) {
	to := p.addr
	if f := directVia.Load(); f != nil {
		to = (*f)(&d.h.cfg, to)
	}
	wait := max(d.h.cfg.attemptTimeout(), directDialTimeout)
	dialer := net.Dialer{Timeout: wait}
	nc, err := dialer.DialContext(d.stop, "tcp", to)
	if err != nil {
		return nil, err
	}
	defer context.AfterFunc(d.stop, func() { _ = nc.Close() })()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := nc
	if d.tls != nil {
		cfg := d.tls.Clone()
		cfg.ServerName = d.host
		if h, _, err := net.SplitHostPort(p.addr); err == nil {
			cfg.ServerName = h
		}
		c = tls.Client(nc, cfg)
	}
	_ = c.SetDeadline(time.Now().Add(wait))
	var user, pass string
	if a := d.h.cfg.NATS.Embedded.ClusterAuth; a != nil {
		user, pass = a.User, a.Password
	}
	hello := frame(directMagic, d.h.cfg.Name, p.node, p.inc, user, pass, directCalls)
	if watch {
		hello = frame(directMagic, d.h.cfg.Name, p.node, p.inc, user, pass, directWatch)
	}
	var ans [5]byte
	if _, err := c.Write(hello); err != nil {
		_ = c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, ans[:]); err != nil {
		_ = c.Close()
		return nil, err
	}
	calls := ans == [5]byte{0, 0, 0, 1, directServesCalls} && !watch
	if ans != [5]byte{0, 0, 0, 1, 0} && !calls {
		_ = c.Close()
		return nil, errors.New("refused (cluster name, node, incarnation or clusterAuth; or the node serves its most)")
	}
	_ = c.SetDeadline(time.Time{})
	return &directConn{c: c, br: bufio.NewReaderSize(c, 16<<10), p: p, calls: calls}, nil
}

// put gives c back for the next query, or closes it.
func (d *direct) put(c *directConn, ok bool) {
	d.mu.Lock()
	if ok && !d.closed && len(c.p.idle) < directIdle && d.pools[c.p.key] == c.p {
		c.p.idle = append(c.p.idle, c)
		d.mu.Unlock()
		return
	}
	c.p.open--
	d.mu.Unlock()
	_ = c.c.Close()
}

// send writes a query; false if the connection broke.
func (c *directConn) send(op, group string, p hub.Page, deadline time.Time) bool {
	c.hn, c.body, c.bn = 0, nil, 0
	_ = c.c.SetWriteDeadline(deadline)
	_, err := c.c.Write(frame(op, group, p.After, strconv.Itoa(p.Limit), strconv.FormatInt(deadline.UnixMilli(), 10)))
	return err == nil
}

// read reads the answer until t: its body, errAttemptTimeout when t came
// first (call it again to read on), errDirectBroken, errDropped or the
// owner's error.
func (c *directConn) read(t time.Time) ([]byte, error) {
	_ = c.c.SetReadDeadline(t)
	for c.hn < len(c.hdr) {
		n, err := c.br.Read(c.hdr[c.hn:])
		c.hn += n
		if err != nil {
			return nil, readErr(err)
		}
	}
	if c.body == nil {
		n := binary.BigEndian.Uint32(c.hdr[:])
		if n < 1 || n > directMaxAnswer+1 {
			return nil, errDirectBroken
		}
		c.body = make([]byte, n) // the answer's ids refer to it (decodeIDs): one per answer
	}
	for c.bn < len(c.body) {
		n, err := c.br.Read(c.body[c.bn:])
		c.bn += n
		if err != nil {
			return nil, readErr(err)
		}
	}
	b := c.body
	c.hn, c.body, c.bn = 0, nil, 0
	switch b[0] {
	case 0:
		return b[1:], nil
	case 1:
		if len(b) < 3 {
			return nil, errDirectBroken
		}
		return nil, resultError(result{status: int(b[1])<<8 | int(b[2]), text: string(b[3:])})
	case 2:
		return nil, errDropped
	}
	return nil, errDirectBroken
}

func readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errAttemptTimeout
	}
	return fmt.Errorf("%w: %v", errDirectBroken, err)
}

// readDirect reads the answer on c to the query or call sent to node b
// until end, in slices of slowAttempt: between two, it ends early with
// errAttemptTimeout when a node was found gone (gone closes; the caller's
// retry looks at whether it is b) or ctx ends; at the first, when checked
// is not nil, node b is checked (suspect), once (*checked). c is given
// back when an answer was read whole (its body, or the owner's error),
// and closed when it broke (errDirectBroken: the caller asks again over
// NATS); on errAttemptTimeout it is still the caller's, to read on or to
// close. An answer over the link cannot be lost, only late, so it is read
// on, not asked again.
func (h *Hub) readDirect(ctx context.Context, c *directConn, b byte, end time.Time, gone <-chan struct{}, checked *bool) ([]byte, error) {
	for {
		t := time.Now().Add(slowAttempt)
		if end.Before(t) {
			t = end
		}
		body, err := c.read(t)
		if !errors.Is(err, errAttemptTimeout) {
			h.direct.put(c, !errors.Is(err, errDirectBroken))
			return body, err
		}
		if checked != nil && !*checked {
			*checked = true
			h.suspect(b, false)
		}
		select {
		case <-gone:
			return nil, errAttemptTimeout
		case <-ctx.Done():
			return nil, errAttemptTimeout
		default:
		}
		if !time.Now().Before(end) {
			return nil, errAttemptTimeout
		}
	}
}

// askDirect waits for c's answer to the query it sent to node b, under the
// rules of retry (an attempt's time at a time; b found gone ends it);
// first is the outcome of the first attempt's read (readDirect), not a
// success: errAttemptTimeout (c is still the query's, read on), or the
// connection broken or the owner's error (c given back or closed
// already). broken: the connection failed before an answer; ask again
// over NATS.
func (h *Hub) askDirect(ctx context.Context, c *directConn, b byte, deadline time.Time, first error) (body []byte, broken bool, err error) {
	pending := true // c is still the query's: its answer not read
	err = h.retry(ctx, b, deadline, func(timeout time.Duration, gone <-chan struct{}) error {
		e := first
		if e != nil {
			first = nil
		} else {
			body, e = h.readDirect(ctx, c, b, time.Now().Add(timeout), gone, nil)
		}
		switch {
		case errors.Is(e, errAttemptTimeout):
			return e
		case errors.Is(e, errDirectBroken):
			pending, broken = false, true
			return nil
		}
		pending = false
		return e
	})
	if pending {
		h.direct.put(c, false) // its answer never came
	}
	if broken {
		return nil, true, nil
	}
	return body, false, err
}

// frame encodes fields as one frame.
func frame(fs ...string) []byte {
	n := 0
	for _, f := range fs {
		n += binary.MaxVarintLen32 + len(f)
	}
	b := make([]byte, 4, 4+n)
	for _, f := range fs {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > uint32(limit) {
		return nil, errors.New("frame too long")
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// fieldReader splits a frame into its fields.
type fieldReader struct {
	b   []byte
	err error
}

func fields(b []byte) *fieldReader { return &fieldReader{b: b} }

func (f *fieldReader) next() string {
	if f.err != nil {
		return ""
	}
	n, k := binary.Uvarint(f.b)
	if k <= 0 || n > uint64(len(f.b)-k) {
		f.err = errors.New("a frame that does not parse")
		return ""
	}
	s := string(f.b[k : k+int(n)])
	f.b = f.b[k+int(n):]
	return s
}

// directAddr is node b's direct query address and the incarnation it is
// for, from b's last heartbeat of its registered incarnation ("" when
// there is none).
func (h *Hub) directAddr(b byte) (string, string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	if p == nil || p.lastSeen.IsZero() || p.hb.Inc != p.e.Inc {
		return "", ""
	}
	return p.hb.Q, p.e.Inc
}

// keepWatches opens a watch connection to every peer heard with a direct
// address that has none (one dial at a time per node, as get's), and
// closes the watches of incarnations no peer has any more. It runs every
// heartbeat, and on the first heartbeat heard of an incarnation (a node
// killed a moment after it joined is watched too).
func (h *Hub) keepWatches() {
	d := h.direct
	if d == nil {
		return
	}
	type target struct {
		b         byte
		addr, inc string
	}
	var want []target
	h.mu.RLock()
	for b, p := range h.peers {
		if b != h.self && p.present && p.e.State == "up" && !p.localGone && !p.lastSeen.IsZero() && p.hb.Inc == p.e.Inc && p.hb.Q != "" {
			want = append(want, target{b, p.hb.Q, p.e.Inc})
		}
	}
	h.mu.RUnlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	keys := make(map[string]bool, len(want))
	for _, t := range want {
		p := d.pool(t.b, t.addr, t.inc)
		keys[p.key] = true
		if p.watch == nil {
			d.startDial(p, true)
		}
	}
	for key, p := range d.pools {
		if !keys[key] && p.watch != nil {
			_ = p.watch.c.Close() // its watcher sees it is no longer the watch
			p.watch = nil
			p.open--
		}
	}
}

// watchConn reads p's watch connection c until it ends: without the
// peer's goodbye, and while it is still p's watch, the node is checked
// (suspect).
func (d *direct) watchConn(p *directPool, c *directConn) {
	defer d.wg.Done()
	var got [5]byte
	_, err := io.ReadFull(c.br, got[:])
	d.mu.Lock()
	mine := p.watch == c && !d.closed
	if mine {
		p.watch = nil
		p.open--
	}
	d.mu.Unlock()
	_ = c.c.Close()
	if !mine || err == nil && got == directBye {
		return
	}
	d.h.log.Debug("cluster direct watch connection ended", "node", p.node, "error", err)
	d.h.suspect(p.b, true)
}

// refuses dials a node's direct link at addr, for incarnation inc, and
// reports whether the connect was refused (ECONNREFUSED: nobody listens
// there), counted only for an address and incarnation this node has
// authenticated with before; answered: the link accepted the first
// frame (the node is there; the connection is kept). A connection accepted and
// then dropped before its first frame's answer (a process dying: the
// kernel may close its listener after the connections) is dialled once
// more.
func (d *direct) refuses(addr, inc string) (refused, answered bool) {
	if d == nil {
		return false, false
	}
	d.mu.Lock()
	p := d.pools[addr+"/"+inc]
	if d.closed || p == nil || !p.authed {
		d.mu.Unlock()
		return false, false
	}
	p.open++
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()
	var c *directConn
	var err error
	for range 2 {
		if c, err = d.open(p, false); err == nil || !dropped(err) {
			break
		}
	}
	if err != nil {
		d.mu.Lock()
		p.open--
		d.mu.Unlock()
		return isRefused(err), false
	}
	d.put(c, true)
	return false, true
}

// isRefused reports whether a dial failed because the address refused the
// connection (a TCP reset to its SYN: nobody listens on the port).
func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && connRefused(err)
}

// dropped reports whether err ended a connection after its connect
// succeeded (EOF, a reset), not a dial or a refused first frame.
func dropped(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || connReset(err)
}
