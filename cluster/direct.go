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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/hub"
)

// The direct query link: with an embedded NATS server, each node also
// listens on an ephemeral TCP port of its route host (clusterListen's, or
// advertise's when set) and gives that address in its heartbeats ("q").
// Another node sends it the queries of a listing or a count (scatter) over
// a connection it keeps open, and reads the answer on the same goroutine
// that sent the query: one wake-up on each side, where a query over NATS
// crossed the asking node's nats.go flusher, its NATS server, the route,
// the owner's server, its nats.go reader and handler goroutine, and as
// many again back (about 10 wake-ups a node, 25 a page of three nodes).
// NATS stays the fallback: a node without an address (external NATS, an
// unspecified route host, an older node), a connection that cannot be
// opened or breaks, or more queries at once than directPerNode, goes
// over .q as before. The link has the routes' protection: their TLS
// (clusterTls, the same certificates, a client certificate required when
// verify is on) and their user and password (clusterAuth), checked in the
// connection's first frame, with the cluster's name and the node and
// incarnation the asker means (an address reused by another process or
// incarnation refuses it).
//
// Frames are a 4-byte big-endian length and that many bytes. The first
// frame of a connection: directMagic, the cluster's name, the node byte
// (hex) and incarnation asked, the route user and password, each a uvarint
// length and the bytes; its answer one byte, 0 (served) or 1 (refused,
// then closed). A request:
// op, group, after, limit, deadline (unix ms), each a uvarint length and
// the bytes; the answer: a status byte (0 the body follows; 1 an error:
// HTTP status as 2 bytes, then the text; 2 dropped past its deadline).
type direct struct {
	h    *Hub
	ln   net.Listener
	addr string      // advertised, host:port
	tls  *tls.Config // the routes', or nil
	host string      // for the client's TLS ServerName

	mu      sync.Mutex
	closed  bool
	serving map[net.Conn]struct{}
	pools   map[string]*directPool // by address and incarnation
	wg      sync.WaitGroup

	served atomic.Int64 // queries answered (tests)
}

// Bounds of the direct link.
const (
	directMaxServed   = 256            // connections a node serves at once (8 from each of 31 peers)
	directPerNode     = 8              // connections to one node at once (idle ones kept: 4)
	directIdle        = 4              //
	directMaxRequest  = 4 << 10        // a request frame (op, group, token)
	directMaxAnswer   = maxAnswerBytes // an answer frame's body
	directDialTimeout = 100 * time.Millisecond
	directBackoff     = 10 * time.Second // after a failed dial or hello, NATS only for this long
	directHelloWait   = 5 * time.Second
	directMagic       = "wsgate-q1"
)

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
		serving: make(map[net.Conn]struct{}), pools: make(map[string]*directPool)}
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
	_ = d.ln.Close()
	for c := range d.serving {
		_ = c.Close()
	}
	for _, p := range d.pools {
		for _, c := range p.idle {
			_ = c.c.Close()
		}
		p.idle = nil
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
		d.mu.Lock()
		if d.closed || len(d.serving) >= directMaxServed {
			d.mu.Unlock()
			_ = c.Close()
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if d.tls != nil {
			c = tls.Server(c, d.tls)
		}
		d.serving[c] = struct{}{}
		d.wg.Add(1)
		d.mu.Unlock()
		go d.serve(c)
	}
}

// serve answers one asking node's queries on c, in turn.
func (d *direct) serve(c net.Conn) {
	defer d.wg.Done()
	defer func() {
		d.mu.Lock()
		delete(d.serving, c)
		d.mu.Unlock()
		_ = c.Close()
	}()
	h := d.h
	br := bufio.NewReaderSize(c, 4096)
	_ = c.SetReadDeadline(time.Now().Add(directHelloWait))
	hello, err := readFrame(br, directMaxRequest)
	if err != nil {
		return
	}
	f := fields(hello)
	magic, name, node, inc, user, pass := f.next(), f.next(), f.next(), f.next(), f.next(), f.next()
	ok := f.err == nil && magic == directMagic && name == h.cfg.Name && node == hub.NodeHex(h.Self()) && inc == h.incarnation()
	if a := h.cfg.NATS.Embedded.ClusterAuth; a != nil {
		ok = ok && subtle.ConstantTimeCompare([]byte(user), []byte(a.User)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(a.Password)) == 1
	}
	if !ok {
		_, _ = c.Write([]byte{0, 0, 0, 1, 1})
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if _, err := c.Write([]byte{0, 0, 0, 1, 0}); err != nil {
		return
	}
	for {
		req, err := readFrame(br, directMaxRequest)
		if err != nil {
			return
		}
		if hub.NodeHex(h.Self()) != node || h.incarnation() != inc {
			return // fenced and registered again: asked as the old one
		}
		if !h.owner(time.Now()) {
			h.notOwner()
			return // the byte may be another node's now (notOwner)
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
	addr, node, inc string
	idle            []*directConn
	open            int
	failedUntil     time.Time
}

type directConn struct {
	c  net.Conn
	br *bufio.Reader
	p  *directPool
	// The answer being read (kept across a read's timeout).
	hdr  [4]byte
	hn   int
	body []byte
	bn   int
}

// get returns an open connection to node b of incarnation inc at addr, or
// nil (then ask over NATS).
func (d *direct) get(b byte, addr, inc string) *directConn {
	if d == nil || addr == "" {
		return nil
	}
	key := addr + "/" + inc
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	p := d.pools[key]
	if p == nil {
		if len(d.pools) >= 2*(hub.MaxNode+1) { // mostly incarnations long gone
			for _, o := range d.pools {
				for _, c := range o.idle {
					_ = c.c.Close()
				}
			}
			clear(d.pools)
		}
		p = &directPool{addr: addr, node: hub.NodeHex(b), inc: inc}
		d.pools[key] = p
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		d.mu.Unlock()
		return c
	}
	if p.open >= directPerNode || time.Now().Before(p.failedUntil) {
		d.mu.Unlock()
		return nil
	}
	p.open++
	d.mu.Unlock()
	c, err := d.dial(p)
	if err != nil {
		d.mu.Lock()
		p.open--
		p.failedUntil = time.Now().Add(directBackoff)
		d.mu.Unlock()
		d.h.log.Debug("cluster direct query connection failed; asking over NATS", "node", p.node, "addr", addr, "error", err)
		return nil
	}
	return c
}

func (d *direct) dial(p *directPool) (*directConn, error) {
	to := p.addr
	if f := directVia.Load(); f != nil {
		to = (*f)(&d.h.cfg, to)
	}
	nc, err := net.DialTimeout("tcp", to, directDialTimeout)
	if err != nil {
		return nil, err
	}
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
	_ = c.SetDeadline(time.Now().Add(max(d.h.cfg.attemptTimeout(), directDialTimeout)))
	var user, pass string
	if a := d.h.cfg.NATS.Embedded.ClusterAuth; a != nil {
		user, pass = a.User, a.Password
	}
	hello := frame(directMagic, d.h.cfg.Name, p.node, p.inc, user, pass)
	var ans [5]byte
	if _, err := c.Write(hello); err != nil {
		_ = c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, ans[:]); err != nil {
		_ = c.Close()
		return nil, err
	}
	if ans != [5]byte{0, 0, 0, 1, 0} {
		_ = c.Close()
		return nil, errors.New("refused (cluster name, node, incarnation or clusterAuth)")
	}
	_ = c.SetDeadline(time.Time{})
	return &directConn{c: c, br: bufio.NewReaderSize(c, 16<<10), p: p}, nil
}

// put gives c back for the next query, or closes it.
func (d *direct) put(c *directConn, ok bool) {
	d.mu.Lock()
	if ok && !d.closed && len(c.p.idle) < directIdle {
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

// askDirect waits for c's answer to the query it sent to node b, under the
// rules of retry (an attempt's time at a time; b found gone ends it), and
// gives c back; first is the first attempt's outcome, read already (not
// a success). broken: the connection failed before an answer; ask again
// over NATS.
func (h *Hub) askDirect(ctx context.Context, c *directConn, b byte, deadline time.Time, first error) (body []byte, broken bool, err error) {
	complete := false // an answer was read whole: c can serve the next query
	err = h.retry(ctx, b, deadline, func(timeout time.Duration, _ <-chan struct{}) error {
		// The connection's read waits out the attempt's time (an answer
		// over it cannot be lost, only late); retry looks at whether b
		// was found gone between attempts.
		var e error
		if first != nil {
			e, first = first, nil
		} else {
			body, e = c.read(time.Now().Add(timeout))
		}
		switch {
		case errors.Is(e, errDirectBroken):
			broken = true
			return nil
		case !errors.Is(e, errAttemptTimeout):
			complete = true
		}
		return e
	})
	h.direct.put(c, complete)
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
