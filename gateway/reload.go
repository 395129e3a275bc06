package gateway

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/sigv4"
)

// live is the part of the gateway that a reload replaces in one step: the
// config in force and what is built from it (routes and their
// integrations, the route selector, the SigV4 verifier with the
// credentials, the authorizer). The gateway holds the current one in an
// atomic pointer and never changes one in place.
//
// A route call, a handshake and a $disconnect event hold a reference
// (acquire, release) for as long as they may call its integrations, so
// they finish on the config they started with; a reload closes the
// integrations the new config no longer uses once the last reference to
// the old one is released. Reading a plain setting (a limit, the stage
// variables) needs no reference: current() is enough.
type live struct {
	cfg      Config
	fns      *integration.Functions
	routes   map[string]*route
	selector *SelectionExpression
	verifier *sigv4.Verifier
	auth     *authorizer // nil unless authorizationType is CUSTOM
	mgmt     *slots      // maxManagementRequests slots
	mounts   []mount     // the stage's path, then basePaths
	// connThrottle is connectionThrottling's bucket (nil: none).
	connThrottle *throttle
	// usage is the usage plans' buckets and quotas by API key.
	usage *usage

	refs    atomic.Int64
	retired atomic.Bool
	drained chan struct{} // closed once retired and no reference is held
	once    sync.Once
}

// current is the config in force, for reading settings.
func (g *Gateway) current() *live { return g.cur.Load() }

// acquire takes a reference to the config in force; release gives it back.
// The re-check after counting closes the race with a reload that swaps the
// pointer in between: the count taken on a config already retired is given
// back, and the new one taken.
func (g *Gateway) acquire() *live {
	for {
		l := g.cur.Load()
		l.refs.Add(1)
		if g.cur.Load() == l {
			return l
		}
		l.release()
	}
}

func (l *live) release() {
	if l.refs.Add(-1) == 0 && l.retired.Load() {
		l.once.Do(func() { close(l.drained) })
	}
}

// retire marks l replaced; drained is closed when its last reference goes.
func (l *live) retire() {
	l.retired.Store(true)
	if l.refs.Load() == 0 {
		l.once.Do(func() { close(l.drained) })
	}
}

// integrations are every integration l calls.
func (l *live) integrations() []integration.Integration {
	var out []integration.Integration
	for _, r := range l.routes {
		if r.integ != nil {
			out = append(out, r.integ)
		}
	}
	if l.auth != nil {
		out = append(out, l.auth.integ)
	}
	return out
}

// build makes a live config from cfg (validated, defaults applied). With
// prev set (a reload), an integration whose definition did not change is
// taken over from prev instead of built again, so its processes and
// connections go on; so is the authorizer, with its cache. On error it
// closes what it built, and nothing of prev.
func (g *Gateway) build(cfg Config, fns *integration.Functions, prev *live) (*live, error) {
	sel, err := ParseSelectionExpression(cfg.RouteSelectionExpression)
	if err != nil {
		return nil, err
	}
	l := &live{cfg: cfg, fns: fns, routes: make(map[string]*route, len(cfg.Routes)), selector: sel, drained: make(chan struct{})}
	store := sigv4.StaticCredentials{}
	for _, c := range cfg.Credentials {
		store[c.AccessKeyID] = sigv4.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	}
	l.verifier = &sigv4.Verifier{
		Store:        store,
		Service:      "execute-api",
		Region:       cfg.Region,
		MaxBodyBytes: maxMessageBytes,
		Debug:        *cfg.DebugSignatures,
	}
	l.mgmt = &slots{max: int64(cfg.MaxManagementRequests)}
	if prev != nil && prev.cfg.MaxManagementRequests == cfg.MaxManagementRequests {
		l.mgmt = prev.mgmt // the bound holds across the reload
	}

	l.mounts = mounts(&l.cfg)
	var prevConn *throttle
	var prevConnSet *Throttling
	if prev != nil {
		prevConn, prevConnSet = prev.connThrottle, prev.cfg.ConnectionThrottling
	}
	l.connThrottle = keepThrottle(prevConn, prevConnSet, cfg.ConnectionThrottling, &g.connRefused)
	var prevUsage *usage
	if prev != nil {
		prevUsage = prev.usage
	}
	l.usage = buildUsage(&l.cfg, prevUsage)

	env := cfg.IntegrationEnv(g.endpoint, g.log)
	env.Functions = fns
	env.Inflight = g.inflight
	env.HandlerEnv = g.handlerEnv
	// fail closes what this build made, not what it took over.
	fail := func(err error) (*live, error) {
		kept := map[integration.Integration]bool{}
		if prev != nil {
			for _, in := range prev.integrations() {
				kept[in] = true
			}
		}
		for _, in := range l.integrations() {
			if !kept[in] {
				_ = in.Close()
			}
		}
		return nil, err
	}
	for key, rc := range cfg.Routes {
		rt := &route{key: key, cfg: rc.Integration, twoWay: rc.RouteResponseSelectionExpression == "$default"}
		var oldThrottle *throttle
		var oldSetting *Throttling
		if old := prev.route(key); old != nil {
			oldThrottle, oldSetting = old.throttle, prev.cfg.routeThrottling(key)
		}
		rt.throttle = keepThrottle(oldThrottle, oldSetting, cfg.routeThrottling(key), nil)
		rt.models, _ = buildRequestModels(&rc, cfg.Models) // validated
		rt.apiKeyRequired = rc.APIKeyRequired
		if rc.Integration != nil {
			if old := prev.route(key); old != nil && reusable(old.cfg, rc.Integration, prev, l) {
				rt.integ = old.integ
			} else if rt.integ, err = integration.New(*rc.Integration, env); err != nil {
				return fail(fmt.Errorf("route %q: %w", key, err))
			}
		}
		if rg := rc.Groups; rg != nil {
			expr, _ := ParseSelectionExpression(rg.Join + rg.Leave) // validated
			rt.groups = &routeGroups{expr: expr, join: rg.Join != "", allow: rg.Allow}
		}
		l.routes[key] = rt
	}
	if cfg.Authorizer != nil {
		if prev != nil && prev.auth != nil && reflect.DeepEqual(prev.cfg.Authorizer, cfg.Authorizer) &&
			reusable(prev.cfg.Authorizer.Integration, cfg.Authorizer.Integration, prev, l) {
			l.auth = prev.auth
		} else if l.auth, err = newAuthorizer(cfg.Authorizer, env); err != nil {
			return fail(err)
		}
	}
	return l, nil
}

// route is prev's route for key, nil when there is none (or no prev).
func (l *live) route(key string) *route {
	if l == nil {
		return nil
	}
	return l.routes[key]
}

// reusable reports whether an integration built for old in prev serves
// for next in l unchanged: the same definition, the same credential for
// the handler processes a command starts, and, for a lambda integration
// naming a local function, the same running function.
func reusable(old, next *integration.Config, prev, l *live) bool {
	if !reflect.DeepEqual(old, next) {
		return false
	}
	switch next.Type {
	case "command":
		return firstCredential(prev.cfg) == firstCredential(l.cfg)
	case "lambda":
		return integration.SameFunction(prev.fns, l.fns, next.Function)
	}
	return true
}

func firstCredential(c Config) Credential {
	if len(c.Credentials) == 0 {
		return Credential{}
	}
	return c.Credentials[0]
}

// fixedFields are the settings a running gateway cannot change: where it
// listens and what it is (stage, API id, region, account, domain), and
// bounds built into shared structures at start.
var fixedFields = []string{
	"listen", "stage", "apiId", "region", "accountId", "domainName",
	"maxInflight", "maxGroupsPerConnection", "maxGroups", "readHeaderTimeoutSeconds",
	"trustedProxies", "forwardedHeader",
}

// liveFields are the settings a reload changes in place. Every field of
// Config is in exactly one of fixedFields and liveFields
// (TestEveryFieldReloadsOrNeedsRestart): a new field is read through the
// live snapshot (current, acquire) or listed as fixed.
var liveFields = []string{
	"stageVariables", "credentials", "authorizationType", "authorizer", "routes", "routeSelectionExpression",
	"idleTimeoutSeconds", "maxConnectionSeconds", "binaryFrames", "outboundQueueFrames", "outboundQueueBytes",
	"slowConsumerSeconds", "sendBufferBytes", "writeTimeoutSeconds", "maxInflightPerConnection",
	"readBodyTimeoutSeconds", "maxManagementRequests", "shutdownTimeoutSeconds", "debugSignatures", "allowedOrigins",
	"basePaths", "throttling", "connectionThrottling", "apiKeySelectionExpression", "apiKeys", "models",
	"usagePlans",
}

// KeepFixed gives c the running config's values of the settings that only
// a restart changes, and names those that differed.
func (c *Config) KeepFixed(running *Config) []string {
	return confcheck.Pin(c, running, fixedFields...)
}

// Changes is what a reload changed, for its log line.
type Changes struct {
	RoutesAdded, RoutesRemoved, RoutesChanged []string
	// AuthorizerChanged: the authorizer (or authorizationType) changed;
	// its cache starts empty.
	AuthorizerChanged bool
	// CredentialsAdded and CredentialsRemoved are access key ids.
	CredentialsAdded, CredentialsRemoved []string
	// Settings are the other fields that changed, by their config names.
	Settings []string
}

// Reload puts cfg in force without touching open connections: from now on
// handshakes, messages, $disconnect events and management calls use the
// new routes, credentials, authorizer and limits, while calls already
// running finish on the old ones. Integrations whose definition did not
// change are kept; the others are closed, in the background, once the
// calls that use them are done: the returned channel is closed then.
// fns are the local functions of the new config (integration.Functions.Next).
//
// cfg must pass Validate and keep the fixed settings (KeepFixed); if it
// does not, or an integration cannot be built, the running config stays
// and Reload returns the error.
func (g *Gateway) Reload(cfg Config, fns *integration.Functions) (Changes, <-chan struct{}, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Changes{}, nil, err
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.closing.Load() {
		return Changes{}, nil, errors.New("reload: the gateway is shutting down")
	}
	prev := g.current()
	if fixed := cfg.KeepFixed(&prev.cfg); len(fixed) > 0 {
		return Changes{}, nil, fmt.Errorf("reload changes settings that need a restart: %v", fixed)
	}
	next, err := g.build(cfg, fns, prev)
	if err != nil {
		return Changes{}, nil, err
	}
	g.cur.Store(next)
	prev.retire()
	done := make(chan struct{})
	g.retiring.Add(1)
	go func() {
		defer g.retiring.Done()
		defer close(done)
		select {
		case <-prev.drained:
		case <-g.baseCtx.Done(): // shut down: calls still running have failed
		}
		keep := map[integration.Integration]bool{}
		for _, in := range next.integrations() {
			keep[in] = true
		}
		for _, in := range prev.integrations() {
			if !keep[in] {
				_ = in.Close()
			}
		}
	}()
	return diff(prev, next), done, nil
}

// diff says what changed from prev to next.
func diff(prev, next *live) Changes {
	var ch Changes
	for _, k := range slices.Sorted(maps.Keys(next.routes)) {
		old, ok := prev.routes[k]
		switch {
		case !ok:
			ch.RoutesAdded = append(ch.RoutesAdded, k)
		case old.integ != next.routes[k].integ || !reflect.DeepEqual(prev.cfg.Routes[k], next.cfg.Routes[k]):
			ch.RoutesChanged = append(ch.RoutesChanged, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(prev.routes)) {
		if _, ok := next.routes[k]; !ok {
			ch.RoutesRemoved = append(ch.RoutesRemoved, k)
		}
	}
	ch.AuthorizerChanged = prev.auth != next.auth || prev.cfg.AuthorizationType != next.cfg.AuthorizationType
	keys := func(l *live) map[string]Credential {
		m := map[string]Credential{}
		for _, c := range l.cfg.Credentials {
			m[c.AccessKeyID] = c
		}
		return m
	}
	was, is := keys(prev), keys(next)
	for _, c := range next.cfg.Credentials {
		if old, ok := was[c.AccessKeyID]; !ok || old != c { // a new secret is a new key
			ch.CredentialsAdded = append(ch.CredentialsAdded, c.AccessKeyID)
		}
	}
	for _, c := range prev.cfg.Credentials {
		if now, ok := is[c.AccessKeyID]; !ok || now != c {
			ch.CredentialsRemoved = append(ch.CredentialsRemoved, c.AccessKeyID)
		}
	}
	ch.Settings = confcheck.Changed(prev.cfg, next.cfg, "routes", "credentials", "authorizer", "authorizationType")
	return ch
}
