package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/httpfront"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/internal/gopool"
	"github.com/wsgate/wsgate/sigv4"
)

// Gateway is an API Gateway WebSocket API: it upgrades clients at
// /{stage}, calls the routes' integrations, and serves the @connections
// management API at /{stage}/@connections/{id}. It is an http.Handler.
type Gateway struct {
	cfg  Config // as started: only its fixed settings are read (KeepFixed)
	hub  hub.Hub
	log  *slog.Logger
	node byte
	// nodeOf, when the hub is a nodeSource, gives the byte ids are minted
	// with instead of node (nodeByte).
	nodeOf nodeSource
	ext    map[string]http.Handler
	// hosts and agents are the last Host and User-Agent a handshake
	// kept (newSession).
	hosts, agents recent
	// workers run route invocations, bounded by the connections times
	// maxInflightPerConnection (the reader waits for a slot before handing
	// a message over) and their integration calls by maxInflight (a call
	// past it fails at once with integration.ErrThrottled). readers run
	// read turns: at most one per connection, of which at most linger's
	// bound linger. Each pool keeps at most poolIdlePerCore × GOMAXPROCS
	// goroutines idle, each for 5 to 10 s (gopool.Idle).
	workers  *gopool.Pool         // route invocations
	readers  *gopool.Pool         // read turns of connections the poller found readable
	linger   *lingerBound         // read turns that may wait for more (conn.linger)
	flush    flusher              // write turns of connections a group publish queued to
	inflight *integration.Limiter // maxInflight, shared by every integration
	proxies  Proxies              // trustedProxies (fixed: the listener reads them too)
	// connRefused counts handshakes connectionThrottling refused, over
	// reloads (a reload may replace the bucket, never the count).
	connRefused atomic.Int64
	obs         Observer // nil: nobody observes
	stats       stats

	// cur is the config in force and what is built from it (routes,
	// credentials, authorizer); Reload swaps it. See live.
	cur      atomic.Pointer[live]
	reloadMu sync.Mutex     // one Reload at a time
	retiring sync.WaitGroup // closing a replaced config's integrations

	endpoint   string            // Options.ManagementEndpoint
	handlerEnv map[string]string // Options.HandlerEnv

	closeWait time.Duration

	baseCtx context.Context
	cancel  context.CancelFunc
	track   sync.WaitGroup // route invocations and $disconnect events in flight
	connWG  sync.WaitGroup // connections not yet finished
	conns   atomic.Int64
	admitMu sync.Mutex // orders connWG.Add before Shutdown's Wait
	closing atomic.Bool
	stop    chan struct{}
	stopped sync.Once
	sweeps  atomic.Uint64 // the sweeper's rounds, for tests
}

type route struct {
	key    string
	cfg    *integration.Config     // what integ was built from
	integ  integration.Integration // nil for a pure groups route
	twoWay bool
	groups *routeGroups
	// throttle is the route's token bucket (nil: no limit).
	throttle *throttle
	// models validate the message; nil: no request validation.
	models *requestModels
	// apiKeyRequired refuses connections and messages without a valid
	// API key.
	apiKeyRequired bool
}

type routeGroups struct {
	expr  *SelectionExpression
	join  bool
	allow []string
}

// allowed reports whether the route may join name.
func (rg *routeGroups) allowed(name string) bool {
	for _, p := range rg.allow {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Options are what New needs besides the config.
type Options struct {
	// Hub holds the connections. Default: a new hub.Memory with the
	// config's group limits (a Hub given here applies its own).
	Hub hub.Hub
	// Logger receives the gateway's logs. Default: slog.Default().
	Logger *slog.Logger
	// Node is this node's number, carried in every connection id. Default
	// 0. A Hub that has a Self() byte method (cluster.Hub, whose byte may
	// change while it runs: docs/cluster.md) is asked instead at every id.
	Node byte
	// ManagementEndpoint is the http://ADDR/{stage} that command handlers
	// call back; the server sets it once the listener is bound.
	ManagementEndpoint string
	// HandlerEnv is added to the environment of every handler process the
	// integrations start (integration.Env.HandlerEnv): the server's CA
	// bundle variables. Default none.
	HandlerEnv map[string]string
	// Extensions serve more management paths: /{stage}/{name}, e.g.
	// "@streams", after the same SigV4 verification.
	Extensions map[string]http.Handler
	// Functions are the locally run functions lambda integrations may
	// name (the config's functions:). Nil: none.
	Functions *integration.Functions
	// Observer is told of every connect, message, disconnect and
	// management request (metrics, access logs). Default none.
	Observer Observer
}

// New validates cfg (applying defaults) and builds the gateway and its
// integrations. Call Shutdown to release them.
func New(cfg Config, opts Options) (*Gateway, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Hub == nil {
		opts.Hub = hub.NewMemory(cfg.HubLimits())
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{
		cfg:        cfg,
		hub:        opts.Hub,
		log:        opts.Logger,
		node:       opts.Node,
		closeWait:  2 * time.Second,
		stop:       make(chan struct{}),
		ext:        opts.Extensions,
		workers:    gopool.NewMaxIdle(poolIdlePerCore * runtime.GOMAXPROCS(0)),
		readers:    gopool.NewMaxIdle(poolIdlePerCore * runtime.GOMAXPROCS(0)),
		linger:     newLingerBound(),
		inflight:   integration.NewLimiter(cfg.MaxInflight),
		endpoint:   opts.ManagementEndpoint,
		handlerEnv: opts.HandlerEnv,
		obs:        opts.Observer,
	}
	g.nodeOf, _ = opts.Hub.(nodeSource)
	g.proxies, _ = ParseProxies(cfg.TrustedProxies) // validated
	g.baseCtx, g.cancel = context.WithCancel(context.Background())
	l, err := g.build(cfg, opts.Functions, nil)
	if err != nil {
		return nil, err
	}
	g.cur.Store(l)
	go g.sweep()
	return g, nil
}

// Hub returns the hub the gateway registers connections in.
func (g *Gateway) Hub() hub.Hub { return g.hub }

// Config returns the configuration in force, defaults applied.
func (g *Gateway) Config() Config { return g.current().cfg }

// Connections is the number of open connections.
func (g *Gateway) Connections() int { return int(g.conns.Load()) }

// Inflight is the number of integration invocations running (routes,
// $connect, $disconnect, the authorizer); at most maxInflight.
func (g *Gateway) Inflight() int { return g.inflight.InUse() }

func (g *Gateway) closeIntegrations() {
	for _, in := range g.current().integrations() {
		_ = in.Close()
	}
}

// ServeHTTP implements http.Handler: the upgrade at /{stage}, the
// management API below /{stage}/, and 403 elsewhere, as API Gateway.
// Routing reads the request-target's path as received, the same bytes the
// SigV4 signature covers (sigv4.RequestPath), never a decoded or cleaned
// copy.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		// A body must arrive within readBodyTimeoutSeconds, whoever ends up
		// reading it: a handler, or net/http discarding what a refusal left
		// unread. An upgrade has no body, so a WebSocket connection never
		// gets this deadline (and Hijack clears deadlines anyway).
		// The front reads the clock only if the body is not all in
		// with the head (httpfront.SetBodyTimeout).
		if d := confcheck.Seconds(g.current().cfg.ReadBodyTimeoutSeconds); !httpfront.SetBodyTimeout(w, d) {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
	}
	rest, m, ok := g.mount(sigv4.RequestPath(r))
	if !ok {
		writeAPIError(w, errForbidden)
		return
	}
	switch {
	case rest == "" || rest == "/":
		g.upgrade(w, r, m.custom)
	case strings.HasPrefix(rest, "/"):
		if g.obs != nil {
			sw := &statusWriter{ResponseWriter: w}
			start := time.Now()
			defer func() { g.obs.Management(managementOp(r.Method, rest[1:]), sw.status, time.Since(start)) }()
			w = sw
		}
		// Only maxManagementRequests are served at once, so clients
		// stalling their bodies hold a bounded number of buffers.
		mgmt := g.current().mgmt
		if !mgmt.take() {
			writeAPIError(w, errThrottled)
			return
		}
		defer mgmt.release()
		g.manage(w, r, rest[1:])
	default:
		writeAPIError(w, errForbidden)
	}
}

// slots bounds how many requests are served at once (a counter, not a
// buffered channel: a management request takes and gives back its slot
// with one atomic operation each, not a channel's lock twice).
type slots struct {
	n   atomic.Int64
	max int64
}

// take takes a slot; false when all max are taken.
func (s *slots) take() bool {
	for {
		n := s.n.Load()
		if n >= s.max {
			return false
		}
		if s.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives a slot taken back.
func (s *slots) release() { s.n.Add(-1) }

// selectRoute picks a message's route: the one route selection names, or
// $default when it names none (or $connect or $disconnect). rt is nil when
// there is no such route either.
func (l *live) selectRoute(body string, b64 bool) (key string, rt *route) {
	key = routeDefault
	if !b64 {
		if k, ok := l.selector.Evaluate(body); ok {
			key = k
		}
	}
	rt = l.routes[key]
	if rt == nil || key == routeConnect || key == routeDisconnect {
		key = routeDefault
		rt = l.routes[routeDefault]
	}
	return key, rt
}

// inline reports whether a message for rt is handled in the connection's
// read turn instead of on a route worker: when nothing on its way can
// block. That is no route at all (an error frame), or a mock integration
// without a groups action (a hub's join may wait for the cluster).
// Answers are written without blocking either way (conn.enqueue).
func (rt *route) inline() bool {
	return rt == nil || rt.groups == nil && rt.integ != nil && integration.NonBlocking(rt.cfg)
}

// route handles one client message on the route selectRoute picked from l:
// call its integration, answer the client when the route is two-way or it
// failed. It releases l (the message is routed and answered on one config).
func (g *Gateway) route(c *conn, l *live, key string, rt *route, body string, b64 bool, size int) {
	defer l.release()
	now := time.Now()
	requestID, messageID := newIDPair(g.nodeByte())
	rec := g.record(&c.s, EventMessage, key, requestID, now)
	rec.MessageID, rec.BytesIn = messageID, size
	defer g.observe(&rec)
	// Built only when something is logged: With formats its attributes
	// at once, and most messages log nothing.
	log := func() *slog.Logger { return c.logger().With("routeKey", key, "requestId", requestID) }
	errFrame := func(status int, outcome, msg string) {
		rec.fail(status, outcome, msg)
		_ = c.enqueue(textFrame(errorFrame(msg, c.s.connectionID, requestID)), true)
	}
	if rt == nil {
		log().Debug("no route matched and no $default route")
		errFrame(http.StatusForbidden, OutcomeNoRoute, frameForbidden)
		return
	}
	if !rt.throttle.allow() {
		log().Debug("message throttled by the route's throttling")
		errFrame(http.StatusTooManyRequests, OutcomeThrottled, frameThrottled)
		return
	}
	if rt.apiKeyRequired {
		if status, outcome, msg := l.keyRefusal(&c.s.identity, now); status != 0 {
			log().Debug("message refused by the API key check or its usage plan", "answer", msg)
			errFrame(status, outcome, msg)
			return
		}
	}
	if rt.models != nil && (b64 || !rt.models.valid(body)) {
		log().Debug("message refused by the route's request model")
		errFrame(http.StatusBadRequest, OutcomeBadRequest, frameBadBody)
		return
	}
	if rt.groups != nil {
		name, ok := g.groupAction(c, rt, body)
		if !ok {
			log().Info("group action refused", "group", name)
			errFrame(http.StatusForbidden, OutcomeNoRoute, frameForbidden)
			return
		}
		if rt.integ == nil {
			if rt.twoWay {
				_ = c.enqueue(textFrame(groupAck(rt.groups.join, name)), true)
			}
			return
		}
	}
	ev := g.messageEvent(&c.s, key, requestID, messageID, body, b64, now)
	start := time.Now()
	res, err := g.invoke(rt, ev, &integration.Invocation{RequestID: requestID, Body: body})
	if err != nil {
		switch {
		case errors.Is(err, integration.ErrThrottled):
			log().Debug("message throttled", "error", err)
			errFrame(http.StatusTooManyRequests, OutcomeThrottled, frameThrottled)
		case errors.Is(err, integration.ErrTimeout):
			log().Warn("integration failed", "error", err)
			rec.integrated(start, nil, err)
			errFrame(http.StatusGatewayTimeout, OutcomeExecutionError, frameTimeout)
		default:
			log().Warn("integration failed", "error", err)
			rec.integrated(start, nil, err)
			errFrame(failure(err))
		}
		return
	}
	rec.integrated(start, res, nil)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		// AWS only records this in its execution log; a one-way route
		// would otherwise leave no trace of a failing handler.
		log().Warn("integration answered an error status", "status", res.StatusCode, "body", clip(res.Body, 256))
		if res.StatusCode >= 400 {
			rec.Outcome = OutcomeIntegrationError
		}
	}
	if rt.twoWay && res.Body != "" {
		data, err := res.answer()
		if err != nil {
			log().Warn("integration answer not sent", "error", err)
			errFrame(http.StatusInternalServerError, OutcomeExecutionError, frameInternalError)
			return
		}
		if err := c.enqueue(dataFrame(data), true); err != nil {
			log().Debug("route response not delivered", "error", err)
		}
	}
}

// groupAction joins or leaves the group the message names; ok is false
// when the name is invalid or not allowed.
func (g *Gateway) groupAction(c *conn, rt *route, body string) (name string, ok bool) {
	name, isJSON := rt.groups.expr.Evaluate(body)
	if !isJSON || !ValidGroup(name) {
		return name, false
	}
	if rt.groups.join {
		if !rt.groups.allowed(name) {
			return name, false
		}
		return name, g.hub.Join(g.baseCtx, name, c.s.connectionID) == nil
	}
	return name, g.hub.Leave(g.baseCtx, name, c.s.connectionID) == nil
}

// groupAck is a pure groups route's two-way answer.
func groupAck(join bool, name string) []byte {
	action := "unsubscribed"
	if join {
		action = "subscribed"
	}
	b := append([]byte(`{"action":"`), action...)
	b = append(b, `","group":`...)
	b = strconv.AppendQuote(b, name)
	return append(b, '}')
}

// invoke calls a route's integration with an event and decodes the Lambda
// proxy response. inv carries everything but the payload. The integration
// holds a slot of maxInflight (and of its own maxInflight) for the call and
// fails with integration.ErrThrottled when none is free.
func (g *Gateway) invoke(rt *route, ev *Event, inv *integration.Invocation) (*proxyResponse, error) {
	payload, err := marshalEvent(ev)
	if err != nil {
		return nil, err
	}
	inv.Payload = payload
	out, err := rt.integ.Invoke(g.baseCtx, inv)
	if err != nil {
		return nil, err
	}
	return parseProxyResponse(out)
}

// disconnect fires the $disconnect route for a closed connection, best
// effort: its answer is ignored, as on AWS.
func (g *Gateway) disconnect(s *session, r closeReason) {
	l := g.acquire()
	requestID := newID(g.nodeByte())
	now := time.Now()
	rec := g.record(s, EventDisconnect, routeDisconnect, requestID, now)
	rec.CloseCode, rec.CloseReason = r.Code, r.Label
	rt := l.routes[routeDisconnect]
	if rt == nil {
		l.release()
		g.observe(&rec)
		return
	}
	ev := g.disconnectEvent(s, requestID, r.Code, r.Reason, now)
	g.track.Add(1)
	g.workers.Go(func() {
		defer g.track.Done()
		defer l.release()
		// Wait: a full gateway delays $disconnect rather than losing it.
		start := time.Now()
		res, err := g.invoke(rt, ev, &integration.Invocation{RequestID: requestID, Wait: true})
		rec.integrated(start, res, err)
		switch {
		case err != nil:
			g.log.Warn("$disconnect integration failed", "connectionId", s.connectionID, "requestId", requestID, "error", err)
			rec.Outcome = OutcomeExecutionError
		case res.StatusCode >= 400:
			rec.Outcome = OutcomeIntegrationError
		}
		g.observe(&rec)
	})
}

// sweep closes connections past the idle timeout or the maximum duration.
func (g *Gateway) sweep() {
	cfg := g.current().cfg
	every := min(time.Second, cfg.IdleTimeout()/4, cfg.MaxConnection()/4)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			cfg := g.current().cfg // reloaded limits apply to every connection
			idle, maxAge := cfg.IdleTimeout(), cfg.MaxConnection()
			_, now := wallNow() // the monotonic clock; the wall clock read for its steps (clock.go)
			g.hub.Each(func(hc hub.Conn) bool {
				c, ok := hc.(*conn)
				if !ok {
					return true
				}
				switch {
				case now-c.s.connectedAt >= int64(maxAge):
					c.closeWith(closeMaxDuration)
				case now-c.lastActive.Load() >= int64(idle):
					c.closeWith(closeIdle)
				}
				return true
			})
			g.sweeps.Add(1)
		}
	}
}

// admit counts a new connection in connWG, unless Shutdown has begun.
func (g *Gateway) admit() bool { return g.enter(&g.connWG) }

// enterCall counts a handshake's authorizer or $connect call in track,
// unless Shutdown has begun.
func (g *Gateway) enterCall() bool { return g.enter(&g.track) }

// enter adds one to wg unless Shutdown has begun. Under admitMu: an Add
// from zero racing Shutdown's Wait on wg would be a data race, and one after
// it would escape the wait.
func (g *Gateway) enter(wg *sync.WaitGroup) bool {
	g.admitMu.Lock()
	defer g.admitMu.Unlock()
	if g.closing.Load() {
		return false
	}
	wg.Add(1)
	return true
}

// Shutdown closes every connection with 1001 (each fires $disconnect),
// waits for the reader goroutines, in-flight integration calls and
// $disconnect events until ctx is done, then releases the integrations.
// The caller stops the listener first (http.Server.Shutdown).
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.reloadMu.Lock() // a Reload under way finishes; none starts after
	g.admitMu.Lock()
	g.closing.Store(true)
	g.admitMu.Unlock()
	g.reloadMu.Unlock()
	g.stopped.Do(func() { close(g.stop) })
	g.hub.Each(func(hc hub.Conn) bool {
		if c, ok := hc.(*conn); ok {
			c.closeWith(closeShutdown)
		}
		return true
	})
	done := make(chan struct{})
	go func() {
		g.connWG.Wait()
		g.track.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: %w with %d connections and calls still open", ctx.Err(), g.conns.Load())
	}
	g.cancel()
	g.retiring.Wait() // a reload's replaced integrations, closed now
	g.closeIntegrations()
	return err
}

// clip shortens s to at most n bytes for a log line, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
