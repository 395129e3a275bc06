package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// leanClient POSTs to one plain-HTTP origin over pooled keep-alive
// HTTP/1.1 connections, without net/http's per-request machinery (a
// request and a response object with their header maps, and three
// goroutines handing each request between them). It does only what the
// http integration needs: a POST with a body, a response with
// Content-Length, chunked or read-to-close framing, parsed strictly within
// limits. newLeanClient refuses what it cannot do (https, a proxy, a user in
// the URL), and the integration keeps net/http's client for those.
//
// Its bounds and timings are the net/http client's it replaces
// (newHTTPClient): at most maxConns connections, of which
// min(httpMaxIdlePerHost, maxConns) kept idle, each idle at most
// httpIdleTimeout; dials time out after httpDialTimeout; each request
// carries its own deadline.
type leanClient struct {
	addr    string // host:port to dial
	head    []byte // "POST /path HTTP/1.1\r\nHost: …\r\n…" up to the per-request headers
	maxIdle int
	slots   chan struct{}  // one per open connection: the maxConns bound
	handoff chan *leanConn // unbuffered: put gives a kept connection to a caller in waitSlot

	mu      sync.Mutex
	idle    []*leanConn // most recently used last
	waiting int         // callers waiting for the bound (waitSlot)
	sweep   *time.Timer // closes connections idle past httpIdleTimeout
	// The context requests are cut off by (the gateway's, for every
	// call): one context.AfterFunc for the client instead of one per
	// request, which ends the requests in busy (watch).
	watched   context.Context
	stopWatch func() bool
	busy      []*leanConn // requests under way in watched
	closed    bool        // closeIdle ran: no more watching
}

// leanConn is one pooled connection.
type leanConn struct {
	nc     net.Conn
	s      *sockIO       // nil where nc is read and written itself
	w      io.Writer     // nc, or s
	br     *bufio.Reader // reads nc, or s
	wbuf   []byte        // the request head
	usedAt time.Time
	busyAt int // its index in leanClient.busy plus one; 0 when not there
}

const (
	httpDialTimeout = 5 * time.Second
	httpKeepAlive   = 30 * time.Second
	// httpIdleTimeout is shorter than Node.js's 5 s keepAliveTimeout, the
	// shortest common server default, so a pooled connection is not reused
	// just as the backend closes it: a POST on such a connection is not
	// retried.
	httpIdleTimeout = 4 * time.Second
	// maxResponseHead bounds a response's status line and headers.
	maxResponseHead = 64 << 10
	// max1xx bounds the informational responses skipped before the final one.
	max1xx = 5
)

// newLeanClient returns a client for uri, or nil when the URI needs
// something only net/http does: TLS, a proxy from the environment, or
// credentials in the URL.
func newLeanClient(uri string, maxConns int) *leanClient {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Host == "" || u.Opaque != "" {
		return nil
	}
	if !leanClients {
		return nil
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		return nil
	}
	if maxConns == 0 {
		maxConns = DefaultMaxConnsPerHost
	}
	host := u.Host
	if host[len(host)-1] == ':' { // an empty port, as net/http removes it
		host = host[:len(host)-1]
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\nContent-Type: application/json\r\n", u.RequestURI(), host)
	return &leanClient{
		addr:    net.JoinHostPort(u.Hostname(), port),
		head:    head.Bytes(),
		maxIdle: min(httpMaxIdlePerHost, maxConns),
		slots:   make(chan struct{}, maxConns),
		handoff: make(chan *leanConn),
	}
}

// leanResponse is what post read: the status line's code and text, and the
// body.
type leanResponse struct {
	code int
	// status is the text for an error ("502 Bad Gateway", as net/http's
	// Response.Status); empty for a 2xx, which no error names.
	status string
	body   []byte
}

// post sends payload with the request id and reads the response, by
// deadline (and until ctx is done).
func (lc *leanClient) post(ctx context.Context, deadline time.Time, payload []byte, requestID string) (leanResponse, error) {
	pc, err := lc.get(ctx, deadline)
	if err != nil {
		return leanResponse{}, err
	}
	_ = pc.nc.SetDeadline(deadline)
	if ctx.Done() != nil && !lc.watch(ctx, pc) {
		stop := context.AfterFunc(ctx, pc.cutOff)
		defer stop()
	}
	res, keep, err := pc.roundTrip(lc.head, payload, requestID)
	lc.put(pc, keep && err == nil)
	return res, err
}

// watch counts pc's request among those ctx cuts off, and reports false
// when the client watches another context (the caller then watches ctx
// itself). The first context asked for is the one watched, until
// closeIdle. put ends the watch.
func (lc *leanClient) watch(ctx context.Context, pc *leanConn) bool {
	lc.mu.Lock()
	if lc.watched == nil && !lc.closed {
		lc.watched, lc.stopWatch = ctx, context.AfterFunc(ctx, lc.cutOffBusy)
	}
	if lc.watched != ctx {
		lc.mu.Unlock()
		return false
	}
	lc.busy = append(lc.busy, pc)
	pc.busyAt = len(lc.busy)
	lc.mu.Unlock()
	// Done before pc was counted: cutOffBusy has run (it runs once ctx is
	// done, under mu) without it.
	if ctx.Err() != nil {
		pc.cutOff()
	}
	return true
}

// unwatch takes pc out of busy, under mu.
func (lc *leanClient) unwatch(pc *leanConn) {
	if pc.busyAt == 0 {
		return
	}
	i, last := pc.busyAt-1, len(lc.busy)-1
	lc.busy[i] = lc.busy[last]
	lc.busy[i].busyAt = i + 1
	lc.busy[last] = nil
	lc.busy = lc.busy[:last]
	pc.busyAt = 0
}

// cutOffBusy ends the requests under way: the watched context is done.
func (lc *leanClient) cutOffBusy() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, pc := range lc.busy {
		pc.cutOff()
	}
}

// cutOff ends pc's request: its reads and writes fail at once.
func (pc *leanConn) cutOff() { _ = pc.nc.SetDeadline(time.Unix(1, 0)) }

// get returns an idle connection that is still open, or a new one when the
// bound allows, waiting for the bound until the deadline otherwise.
func (lc *leanClient) get(ctx context.Context, deadline time.Time) (*leanConn, error) {
	for {
		pc, slot := lc.take()
		if pc != nil {
			if time.Since(pc.usedAt) < httpIdleTimeout && pc.open() {
				return pc, nil
			}
			lc.closeConn(pc)
			continue
		}
		if !slot {
			pc, err := lc.waitSlot(ctx, deadline)
			if err != nil {
				return nil, err
			}
			if pc != nil {
				return pc, nil // handed over by put, its slot with it
			}
		}
		pc, err := lc.dial(ctx, deadline)
		if err != nil {
			<-lc.slots
			return nil, err
		}
		return pc, nil
	}
}

// take returns an idle connection, or slot true when the caller may open
// a new one; with neither, the caller is counted as waiting (waitSlot).
func (lc *leanClient) take() (pc *leanConn, slot bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if n := len(lc.idle); n > 0 {
		pc = lc.idle[n-1]
		lc.idle[n-1] = nil
		lc.idle = lc.idle[:n-1]
		return pc, false
	}
	select {
	case lc.slots <- struct{}{}:
		return nil, true
	default:
	}
	lc.waiting++
	return nil, false
}

// waitSlot waits for a connection that put hands over (pc, its slot
// included) or for one to close (nil: the caller took the freed slot). While
// anyone waits, put gives a reusable connection to a waiter ready for it and
// closes it otherwise, never keeps it idle: take counted the caller under
// the same lock that put reads waiting under, so no wake-up is lost.
func (lc *leanClient) waitSlot(ctx context.Context, deadline time.Time) (*leanConn, error) {
	defer func() {
		lc.mu.Lock()
		lc.waiting--
		lc.mu.Unlock()
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case pc := <-lc.handoff:
		return pc, nil
	case lc.slots <- struct{}{}:
		return nil, nil
	case <-t.C:
		return nil, os.ErrDeadlineExceeded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (lc *leanClient) dial(ctx context.Context, deadline time.Time) (*leanConn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	d := net.Dialer{Timeout: httpDialTimeout, KeepAlive: httpKeepAlive}
	nc, err := d.DialContext(dctx, "tcp", lc.addr)
	if err != nil {
		return nil, err
	}
	pc := &leanConn{nc: nc, w: nc}
	var r io.Reader = nc
	var rc syscall.RawConn
	if sc, ok := nc.(syscall.Conn); ok {
		rc, _ = sc.SyscallConn()
	}
	if rc != nil && sockIOWorks {
		pc.s = newSockIO(nc, rc)
		pc.w, r = pc.s, pc.s
	}
	pc.br = bufio.NewReaderSize(r, 4096)
	return pc, nil
}

// put returns a connection after a request: to a caller waiting for the
// bound when it can carry another and one is ready to take it, else to the
// idle list when nobody waits, closed otherwise.
func (lc *leanClient) put(pc *leanConn, keep bool) {
	lc.mu.Lock()
	lc.unwatch(pc)
	if keep && lc.waiting > 0 {
		select {
		case lc.handoff <- pc:
			lc.mu.Unlock()
			return
		default: // the waiter is not in its select yet: the freed slot wakes it
		}
	}
	if !keep || lc.waiting > 0 || len(lc.idle) >= lc.maxIdle {
		lc.mu.Unlock()
		lc.closeConn(pc)
		return
	}
	pc.usedAt = time.Now()
	lc.idle = append(lc.idle, pc)
	if lc.sweep == nil {
		lc.sweep = time.AfterFunc(httpIdleTimeout, lc.sweepIdle)
	}
	lc.mu.Unlock()
}

// closeConn closes a connection and frees its place in the bound.
func (lc *leanClient) closeConn(pc *leanConn) {
	_ = pc.nc.Close()
	<-lc.slots
}

// sweepIdle closes connections idle for httpIdleTimeout, as net/http's
// IdleConnTimeout does, and runs again while any stay idle.
func (lc *leanClient) sweepIdle() {
	now := time.Now()
	lc.mu.Lock()
	var old []*leanConn
	keep := lc.idle[:0]
	for _, pc := range lc.idle {
		if now.Sub(pc.usedAt) >= httpIdleTimeout {
			old = append(old, pc)
		} else {
			keep = append(keep, pc)
		}
	}
	clear(lc.idle[len(keep):])
	lc.idle = keep
	lc.sweep = nil
	if len(lc.idle) > 0 {
		lc.sweep = time.AfterFunc(httpIdleTimeout-now.Sub(lc.idle[0].usedAt), lc.sweepIdle)
	}
	lc.mu.Unlock()
	for _, pc := range old {
		lc.closeConn(pc)
	}
}

// closeIdle closes the idle connections, as net/http's
// CloseIdleConnections: requests under way finish.
func (lc *leanClient) closeIdle() {
	lc.mu.Lock()
	if lc.stopWatch != nil {
		lc.stopWatch()
	}
	lc.watched, lc.stopWatch, lc.closed = nil, nil, true
	idle := lc.idle
	lc.idle = nil
	lc.mu.Unlock()
	for _, pc := range idle {
		lc.closeConn(pc)
	}
}

// open reports whether an idle connection is still usable: nothing to
// read (a backend that closed it has sent EOF; a backend has nothing else
// to send between responses).
func (pc *leanConn) open() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	if pc.s == nil {
		return true
	}
	return pc.s.open()
}

// roundTrip writes the request and reads the response; keep says the
// connection can carry another request.
func (pc *leanConn) roundTrip(head, payload []byte, requestID string) (res leanResponse, keep bool, err error) {
	w := append(pc.wbuf[:0], head...)
	if requestID != "" {
		w = append(w, "X-Amzn-Requestid: "...)
		w = append(w, requestID...)
		w = append(w, "\r\n"...)
	}
	w = append(w, "Content-Length: "...)
	w = strconv.AppendInt(w, int64(len(payload)), 10)
	w = append(w, "\r\n\r\n"...)
	if len(w)+len(payload) <= maxCopiedRequest {
		// One write of head and body. (A writev, as net.Buffers does, is
		// one syscall too, but the race detector sees no ordering through
		// it, unlike through a write and the backend's read.)
		w = append(w, payload...)
		pc.wbuf = w
		if pc.s != nil {
			// Written by the first read of the answer, which then waits
			// for it: no read that finds nothing yet.
			if err := pc.s.send(w); err != nil {
				return res, false, err
			}
		} else if _, err := pc.w.Write(w); err != nil {
			return res, false, err
		}
	} else {
		pc.wbuf = w
		bufs := net.Buffers{w, payload}
		if _, err := bufs.WriteTo(pc.w); err != nil {
			return res, false, err
		}
	}
	return readResponse(pc.br)
}

// maxCopiedRequest bounds the request a connection's write buffer holds.
const maxCopiedRequest = 64 << 10

// errMalformed is a response this client does not accept.
type errMalformed string

func (e errMalformed) Error() string { return "malformed HTTP response: " + string(e) }

// readResponse reads one response to a POST: informational (1xx)
// responses are skipped; the body is framed by Content-Length, chunked
// encoding or the end of the connection, and at most MaxPayload bytes.
func readResponse(br *bufio.Reader) (leanResponse, bool, error) {
	headBytes := 0
	for range max1xx + 1 {
		line, err := readLine(br, &headBytes)
		if err != nil {
			return leanResponse{}, false, err
		}
		res, http10, err := parseStatusLine(line)
		if err != nil {
			return leanResponse{}, false, err
		}
		h, err := readHeaders(br, &headBytes)
		if err != nil {
			return leanResponse{}, false, err
		}
		if res.code == http.StatusSwitchingProtocols {
			return leanResponse{}, false, errMalformed("101 Switching Protocols to a POST")
		}
		if res.code < 200 {
			continue
		}
		keep := !h.close && (!http10 || h.keepAlive)
		switch {
		case res.code == http.StatusNoContent || res.code == http.StatusNotModified:
		case h.chunked:
			res.body, err = readChunked(br)
		case h.length >= 0:
			if h.length > MaxPayload {
				return leanResponse{}, false, errTooLarge
			}
			res.body = make([]byte, h.length)
			_, err = io.ReadFull(br, res.body)
		default:
			keep = false
			res.body, err = readLimited(br, -1)
		}
		if err != nil {
			return leanResponse{}, false, err
		}
		return res, keep, nil
	}
	return leanResponse{}, false, errMalformed("too many informational responses")
}

// readLine reads a CRLF- (or LF-) terminated line without its end, counting
// it in *n against maxResponseHead. The line is valid until the next read.
func readLine(br *bufio.Reader, n *int) ([]byte, error) {
	first := *n == 0
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull && *n+len(long) <= maxResponseHead {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	*n += len(line)
	if *n > maxResponseHead {
		return nil, errMalformed("header over 64 KB")
	}
	if err != nil {
		if err == io.EOF && (!first || len(line) > 0) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.x NNN text".
func parseStatusLine(line []byte) (leanResponse, bool, error) {
	var http10 bool
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		http10 = true
	default:
		return leanResponse{}, false, errMalformed(fmt.Sprintf("status line %q", clipBytes(line, 64)))
	}
	rest := line[len("HTTP/1.1 "):]
	if len(rest) < 3 || len(rest) > 3 && rest[3] != ' ' {
		return leanResponse{}, false, errMalformed(fmt.Sprintf("status line %q", clipBytes(line, 64)))
	}
	code := 0
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return leanResponse{}, false, errMalformed(fmt.Sprintf("status code %q", rest[:3]))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return leanResponse{}, false, errMalformed(fmt.Sprintf("status code %d", code))
	}
	res := leanResponse{code: code}
	if code/100 != 2 {
		res.status = string(rest)
		if len(rest) == 3 { // no reason phrase: net/http's Status is "NNN "
			res.status += " "
		}
	}
	return res, http10, nil
}

func clipBytes(b []byte, n int) []byte { return b[:min(len(b), n)] }

// respHeaders are the response headers that frame the body or the
// connection.
type respHeaders struct {
	length    int64 // -1: none
	chunked   bool
	close     bool
	keepAlive bool
}

// readHeaders reads header lines up to the empty line.
func readHeaders(br *bufio.Reader, n *int) (respHeaders, error) {
	h := respHeaders{length: -1}
	for {
		line, err := readLine(br, n)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			return h, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' || bytes.ContainsAny(line[:colon], " \t") {
			return h, errMalformed(fmt.Sprintf("header line %q", clipBytes(line, 64)))
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || v < 0 || len(value) == 0 || value[0] == '+' {
				return h, errMalformed(fmt.Sprintf("Content-Length %q", clipBytes(value, 32)))
			}
			if h.length >= 0 && h.length != v {
				return h, errMalformed("differing Content-Length headers")
			}
			h.length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return h, errMalformed(fmt.Sprintf("unsupported Transfer-Encoding %q", clipBytes(value, 32)))
			}
			h.chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				h.close = h.close || bytes.EqualFold(tok, []byte("close"))
				h.keepAlive = h.keepAlive || bytes.EqualFold(tok, []byte("keep-alive"))
			}
		}
	}
}

// readChunked reads a chunked body and its trailer, at most MaxPayload bytes.
func readChunked(br *bufio.Reader) ([]byte, error) {
	var body []byte
	n := 0 // bytes of chunk-size lines and trailers, against maxResponseHead
	for {
		line, err := readLine(br, &n)
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		line = bytes.TrimRight(line, " \t")
		size, err := strconv.ParseUint(string(line), 16, 63)
		if err != nil || len(line) == 0 {
			return nil, errMalformed(fmt.Sprintf("chunk size %q", clipBytes(line, 32)))
		}
		if size == 0 {
			break
		}
		if uint64(len(body))+size > MaxPayload {
			return nil, errTooLarge
		}
		start := len(body)
		body = append(body, make([]byte, size)...)
		if _, err := io.ReadFull(br, body[start:]); err != nil {
			return nil, err
		}
		line, err = readLine(br, &n)
		if err != nil {
			return nil, err
		}
		if len(line) != 0 {
			return nil, errMalformed("chunk not followed by CRLF")
		}
	}
	for { // trailers
		line, err := readLine(br, &n)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			return body, nil
		}
	}
}

// isTimeoutErr reports whether err is a passed deadline.
func isTimeoutErr(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}
