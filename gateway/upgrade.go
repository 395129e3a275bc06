package gateway

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/httpfront"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/sigv4"
)

// upgrade runs the WebSocket handshake. As on API Gateway the $connect
// route (and authorizer) run before the handshake completes: the socket
// exists only once they accepted, so until then the id answers 410.
// A client that came through a base path (custom) gets the Host it asked
// for as domainName, as a custom domain's clients do on AWS.
func (g *Gateway) upgrade(w http.ResponseWriter, r *http.Request, custom bool) {
	now, at := wallNow()
	cl := g.client(r)
	connectionID, requestID := newIDPair(g.nodeByte())
	s := g.newSession(r, &cl, connectionID, at, custom)
	rec := g.record(&s, EventConnect, routeConnect, requestID, now)
	defer g.observe(&rec)
	refuse := func(status int, outcome, msg string) {
		rec.fail(status, outcome, msg)
		writeJSONStatus(w, status, msg)
	}
	unavailable := func() {
		rec.fail(http.StatusServiceUnavailable, OutcomeUnavailable, "Service Unavailable")
		http.Error(w, `{"message":"Service Unavailable"}`, http.StatusServiceUnavailable)
	}
	ticket, admitted := admit(g.hub)
	if g.closing.Load() || !admitted {
		unavailable()
		return
	}
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") ||
		!headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		refuse(http.StatusUpgradeRequired, OutcomeBadRequest, "Upgrade Required")
		return
	}
	// The names as http.Header keeps them: Get canonicalises RFC 6455's
	// spelling ("Sec-WebSocket-Key") with an allocation each time.
	if headerValue(r.Header, "Sec-Websocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		refuse(http.StatusUpgradeRequired, OutcomeBadRequest, "Unsupported WebSocket version")
		return
	}
	key := headerValue(r.Header, "Sec-Websocket-Key")
	if !validKey(key) {
		refuse(http.StatusBadRequest, OutcomeBadRequest, "Bad Sec-WebSocket-Key")
		return
	}
	if h := testHookUpgradeInline.Load(); h != nil && httpfront.ServedInline(w) {
		(*h)()
	}
	l := g.acquire() // the handshake runs on one config, $connect included
	defer l.release()
	if l.callsBackend() && httpfront.ServedInline(w) {
		// Inline said yes on the config before a reload that added a
		// $connect route or an authorizer: their call would hold up
		// the front's accept loop for up to the integration's timeout.
		// A 503, as AWS answers a transient failure; the client's retry
		// finds the new config and is served on a pooled goroutine.
		g.log.Info("upgrade refused: a reload added $connect or an authorizer while it was served on the accept loop")
		unavailable()
		return
	}
	if !l.originAllowed(headerValue(r.Header, "Origin")) {
		g.log.Info("upgrade refused: origin not in allowedOrigins", "origin", r.Header.Get("Origin"))
		rec.fail(errForbidden.Status, OutcomeBadRequest, errForbidden.Message)
		writeAPIError(w, errForbidden)
		return
	}
	if !l.connThrottle.allow() {
		g.log.Debug("upgrade throttled by connectionThrottling")
		refuse(http.StatusTooManyRequests, OutcomeThrottled, frameThrottled)
		return
	}
	if rt := l.routes[routeConnect]; rt != nil && !rt.throttle.allow() {
		g.log.Debug("upgrade throttled by the $connect route's throttling")
		refuse(http.StatusTooManyRequests, OutcomeThrottled, frameThrottled)
		return
	}
	// Built only when something is logged: With costs more than the
	// rest of a handshake's bookkeeping.
	log := func() *slog.Logger {
		return g.log.With("connectionId", s.connectionID, "routeKey", routeConnect, "requestId", requestID)
	}

	extra := http.Header{}
	var (
		groups  []string
		authKey string // the authorizer's usageIdentifierKey
	)
	switch {
	case l.cfg.AuthorizationType == "AWS_IAM":
		// IAM is checked only here, at connect time, as on AWS.
		if aerr := l.authorize(r); aerr != nil {
			log().Info("IAM authorisation refused", "error", aerr.Message)
			rec.fail(aerr.Status, OutcomeUnauthorized, aerr.Message)
			writeAPIError(w, aerr)
			return
		}
	case l.auth != nil:
		if !g.enterCall() {
			unavailable()
			return
		}
		start := time.Now()
		res := g.authorizeConnect(g.baseCtx, l, r, &s, requestID, now)
		rec.AuthorizerLatency, rec.AuthorizerStatus = time.Since(start), cmp.Or(res.status, http.StatusOK)
		g.track.Done()
		if res.status != 0 {
			log().Info("authorizer refused", "status", res.status)
			outcome := OutcomeUnauthorized
			switch res.status {
			case http.StatusTooManyRequests:
				outcome = OutcomeThrottled
			case http.StatusInternalServerError:
				outcome = OutcomeExecutionError
			}
			refuse(res.status, outcome, authMessages[res.status])
			return
		}
		s.authorizer = res.context
		rec.Authorizer = res.context
		groups = append(groups, res.groups...)
		authKey = res.apiKey
	}
	if len(l.cfg.APIKeys) > 0 {
		l.cfg.apiKey(r, authKey, &s.identity)
	}
	if rt := l.routes[routeConnect]; rt != nil && rt.apiKeyRequired {
		if status, outcome, msg := l.keyRefusal(&s.identity, now); status != 0 {
			log().Info("$connect refused by the API key check or its usage plan", "answer", msg)
			refuse(status, outcome, msg)
			return
		}
	}
	if rt := l.routes[routeConnect]; rt != nil {
		if !g.enterCall() {
			unavailable()
			return
		}
		ev := g.connectEventFrom(&s, r, &cl, requestID, now)
		start := time.Now()
		res, err := g.invoke(rt, ev, &integration.Invocation{RequestID: requestID})
		g.track.Done()
		if err != nil {
			switch {
			case errors.Is(err, integration.ErrThrottled):
				log().Debug("$connect throttled", "error", err)
				refuse(http.StatusTooManyRequests, OutcomeThrottled, frameThrottled)
			case errors.Is(err, integration.ErrTimeout):
				log().Warn("$connect integration failed", "error", err)
				rec.integrated(start, nil, err)
				refuse(http.StatusGatewayTimeout, OutcomeExecutionError, frameTimeout)
			default:
				log().Warn("$connect integration failed", "error", err)
				rec.integrated(start, nil, err)
				refuse(failure(err))
			}
			return
		}
		rec.integrated(start, res, nil)
		groups = append(groups, res.Groups...)
		for k, v := range res.Headers {
			extra.Set(k, v)
		}
		for k, vs := range res.MultiValueHeaders {
			extra[http.CanonicalHeaderKey(k)] = vs
		}
		if res.StatusCode/100 != 2 {
			log().Info("$connect refused", "status", res.StatusCode)
			outcome := OutcomeRefused
			if res.StatusCode >= 400 {
				outcome = OutcomeIntegrationError
			}
			rec.fail(res.StatusCode, outcome, "")
			for k, vs := range extra {
				w.Header()[k] = vs
			}
			body, _ := res.bytes()
			w.WriteHeader(res.StatusCode)
			_, _ = w.Write(body)
			return
		}
	}

	// Counted in connWG from here, unless Shutdown has begun: a $connect
	// that finished after it is refused as a late upgrade is.
	if !g.admit() {
		unavailable()
		return
	}
	nc, br, err := hijack(w)
	if err != nil {
		log().Error("hijack failed", "error", err)
		rec.fail(http.StatusInternalServerError, OutcomeExecutionError, frameInternalError)
		g.connWG.Done()
		return
	}
	c := g.newConn(nc, s)
	c.br0 = br // the client sent frames right behind its handshake (nil: it did not)
	// Writing stays ours until the 101 is out, so that a frame posted the
	// moment the id is registered queues behind it and cannot overtake it.
	c.writing = true
	if err := register(g.hub, c, ticket); err != nil {
		log().Error("registering connection", "error", err)
		rec.fail(http.StatusInternalServerError, OutcomeExecutionError, frameInternalError)
		_ = nc.Close()
		g.connWG.Done()
		return
	}
	g.conns.Add(1)
	if g.closing.Load() {
		// Shutdown began after admit and its sweep of the hub may have
		// missed this connection: close it here (the close frame queues
		// behind the 101).
		c.closeWith(closeShutdown)
	}
	for _, name := range groups {
		if !ValidGroup(name) {
			log().Warn("$connect named an invalid group", "group", name)
			continue
		}
		if err := g.hub.Join(g.baseCtx, name, s.connectionID); err != nil {
			// Over maxGroupsPerConnection or maxGroups: the connection
			// stays, without this group, and the backend's choice is
			// visible in the log.
			log().Warn("$connect group not joined", "group", name, "error", err)
		}
	}
	rb := respBufs.Get().(*[]byte)
	resp := handshakeResponse((*rb)[:0], key, extra)
	if c.rc != nil {
		if !c.writeInline(resp) && cap(resp) <= maxPooledResponse { // no goroutine per handshake
			*rb = resp
			respBufs.Put(rb)
		}
	} else {
		c.mu.Lock()
		c.queue = append([][]byte{resp}, c.queue...)
		c.queued += len(resp)
		go c.writeLoop() // c.writing is already true
		c.mu.Unlock()
	}
	if g.log.Enabled(r.Context(), slog.LevelDebug) {
		log().Debug("connected", "sourceIp", s.identity.SourceIP)
	}
	c.startReading() // in the poller, or a fresh goroutine: not the HTTP handler's grown stack
}

// testHookUpgradeInline, set by a test, runs in an upgrade served on the
// front's accept loop before it acquires the config.
var testHookUpgradeInline atomic.Pointer[func()]

// Inline reports whether serving r waits on nothing but the CPU, so
// that the front may serve it on the goroutine that accepted its
// connection (httpfront.Server.Inline): a WebSocket upgrade on a stage
// with no $connect route, no authorizer, no IAM and no API keys (a
// refusal included: a 4xx written at once). A reload that adds a
// $connect route or an authorizer between this answer and the upgrade's
// acquire of the config makes upgrade answer that one handshake 503
// rather than call the backend on the accept loop (httpfront.ServedInline).
func (g *Gateway) Inline(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	rest, _, ok := g.mount(sigv4.RequestPath(r))
	if !ok || rest != "" && rest != "/" {
		return false // a 403, or a management call (GET @connections may ask another node)
	}
	l := g.current()
	return !l.callsBackend() && l.cfg.AuthorizationType != "AWS_IAM" && len(l.cfg.APIKeys) == 0
}

// callsBackend reports whether a handshake on l calls a backend before it
// completes: a $connect route or an authorizer.
func (l *live) callsBackend() bool { return l.routes[routeConnect] != nil || l.auth != nil }

// newSession is the session of a handshake. The strings it takes from
// the request are copied, or shared with the previous connection's equal
// ones (recent): the front's parser makes every header value a substring
// of one string of the whole head, which a connection keeping its Host
// or User-Agent would keep for its lifetime (150–600 bytes).
// at is the handshake's stamp (clock.go).
func (g *Gateway) newSession(r *http.Request, cl *client, connectionID string, at int64, custom bool) session {
	s := session{
		connectionID: connectionID,
		connectedAt:  at,
		identity:     Identity{SourceIP: cl.sourceIP, UserAgent: g.agents.of(headerValue(r.Header, "User-Agent"))},
		domainName:   g.cfg.DomainName,
	}
	if cl.viaProxy {
		s.identity.SourceIP = strings.Clone(s.identity.SourceIP) // from a forwarding header
	}
	if s.domainName == "" || custom {
		s.domainName = g.hosts.of(cmp.Or(cl.host, r.Host))
	}
	return s
}

// recent keeps the last string it was given, for the next equal one:
// most connections send the Host, and many the User-Agent, the previous
// one sent. A string not seen last is copied.
type recent struct{ last atomic.Pointer[string] }

func (rs *recent) of(s string) string {
	if p := rs.last.Load(); p != nil && *p == s {
		return *p
	}
	c := strings.Clone(s) // moved to the heap here, not on every call as &s would be
	rs.last.Store(&c)
	return c
}

// bufferedHijacker is a ResponseWriter that hands over the socket and the
// bytes read past the request without a bufio.ReadWriter (httpfront's).
type bufferedHijacker interface {
	HijackBuffered() (net.Conn, []byte, error)
}

// hijack takes the socket from w, and a reader holding what the client
// sent behind its handshake (nil when nothing was).
func hijack(w http.ResponseWriter) (net.Conn, *bufio.Reader, error) {
	if bh, ok := w.(bufferedHijacker); ok {
		nc, rest, err := bh.HijackBuffered()
		if err != nil || len(rest) == 0 {
			return nc, nil, err
		}
		br := readerPool.Get().(*bufio.Reader)
		br.Reset(io.MultiReader(bytes.NewReader(rest), nc))
		_, _ = br.Peek(min(len(rest), br.Size())) // buffered: read in the first turn
		return nc, br, nil
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil || brw.Reader.Buffered() == 0 {
		return nc, nil, err
	}
	return nc, brw.Reader, nil
}

// newConn wraps an accepted socket.
func (g *Gateway) newConn(nc net.Conn, s session) *conn {
	_ = nc.SetDeadline(time.Time{})
	cfg := &g.current().cfg
	var rc syscall.RawConn
	if sc, ok := nc.(socket); ok {
		if cfg.SendBufferBytes > 0 {
			_ = sc.SetWriteBuffer(cfg.SendBufferBytes)
		}
		rc, _ = sc.SyscallConn()
	}
	c := &conn{gw: g, nc: nc, rc: rc, s: s, maxInflight: int32(cfg.MaxInflightPerConnection)}
	c.touch()
	if rc != nil {
		// The descriptor for sockFD, read now, before anyone can write:
		// the 101's inline write needs it at once.
		c.wfd = -1
		o := fdOps.Get().(*fdOp)
		o.c = c
		_ = rc.Control(o.fn)
		o.c = nil
		fdOps.Put(o)
	}
	return c
}

// fdOp records a socket's descriptor in c.wfd (sockFD), with its callback
// bound once and pooled: a closure handed to RawConn.Control escapes, an
// allocation per connection.
type fdOp struct {
	c  *conn
	fn func(fd uintptr)
}

var fdOps = sync.Pool{New: func() any {
	o := &fdOp{}
	o.fn = o.do
	return o
}}

func (o *fdOp) do(fd uintptr) { o.c.wfd = int32(fd) + 1 }

// socket is a connection that is a socket with nothing buffered in front
// of it: a *net.TCPConn, or the server's wrapper of one that carries the
// client address of a PROXY protocol header. Its reader peeks and its
// senders write the socket directly. A *tls.Conn is not one.
type socket interface {
	syscall.Conn
	SetWriteBuffer(bytes int) error
}

const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// respBufs holds the 101s' buffers: one written whole is reused for the
// next handshake. maxPooledResponse bounds what the pool keeps (a $connect
// may add headers).
var respBufs = sync.Pool{New: func() any { b := make([]byte, 0, 160); return &b }}

const maxPooledResponse = 1 << 10

// handshakeResponse appends to b the 101 with the headers $connect
// returned (such as Sec-WebSocket-Protocol); headers that would break the
// handshake, and values that are not valid in HTTP, are dropped.
func handshakeResponse(b []byte, key string, extra http.Header) []byte {
	var in [24 + len(websocketGUID)]byte // key is 24 bytes (validKey)
	sum := sha1.Sum(append(append(in[:0], key...), websocketGUID...))
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = base64.StdEncoding.AppendEncode(b, sum[:])
	b = append(b, "\r\n"...)
	for k, vs := range extra {
		switch k {
		case "Connection", "Upgrade", "Sec-Websocket-Accept", "Content-Length", "Transfer-Encoding":
			continue
		}
		if !validHeaderName(k) {
			continue
		}
		if c, ok := headerCase[k]; ok {
			k = c
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				continue
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

// validKey reports whether a Sec-WebSocket-Key is the base64 of 16 bytes
// (RFC 6455 4.1), decoded on the stack.
func validKey(key string) bool {
	var k [18]byte
	if len(key) != 24 {
		return false
	}
	n, err := base64.StdEncoding.Decode(k[:], []byte(key))
	return err == nil && n == 16
}

// headerHasToken reports whether a header named name (canonical) lists
// token, in any case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for more := true; more; {
			var t string
			t, v, more = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// headerValue is h.Get(name) for a name in its canonical form, as the
// front's parser and net/http key the map: without Get's
// canonicalisation of the name on every call.
func headerValue(h http.Header, name string) string {
	if vs := h[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func writeJSONStatus(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(appendJSONMessage(nil, msg))
}

// validHeaderName reports whether k is an HTTP token (RFC 9110 5.6.2).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

var authMessages = map[int]string{
	http.StatusTooManyRequests:     frameThrottled,
	http.StatusUnauthorized:        "Unauthorized",
	http.StatusForbidden:           "Forbidden",
	http.StatusInternalServerError: frameInternalError,
}

// admitter is a hub that may refuse new connections for a while (a
// cluster node that fenced, until it is registered again: the other nodes
// would answer 410 for the ids it mints meanwhile), and that closes at
// its registration a connection it admitted before such a while began
// (its $connect ran across the fence: cluster.Hub.RegisterAdmitted).
type admitter interface {
	Admit() (ticket int64, ok bool)
	RegisterAdmitted(c hub.Conn, ticket int64) error
}

// admit asks h whether it admits a new connection now, and for the
// ticket to register it with.
func admit(h hub.Hub) (ticket int64, ok bool) {
	if a, is := h.(admitter); is {
		return a.Admit()
	}
	return 0, true
}

// register registers c, admitted with ticket, with h.
func register(h hub.Hub, c hub.Conn, ticket int64) error {
	if a, is := h.(admitter); is {
		return a.RegisterAdmitted(c, ticket)
	}
	return h.Register(c)
}
