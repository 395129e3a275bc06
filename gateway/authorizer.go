package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/confcheck"
)

// AuthorizerConfig is a Lambda REQUEST authorizer on $connect (any
// integration kind), as API Gateway runs it.
type AuthorizerConfig struct {
	// Integration is the authorizer function. Required.
	Integration *integration.Config `json:"integration"`
	// IdentitySource lists route.request.header.NAME and
	// route.request.querystring.NAME values; a connection missing any of
	// them gets 401 without the authorizer being called. Default none.
	IdentitySource []string `json:"identitySource,omitempty"`
	// ResultTTLSeconds caches a policy per identity-source values. Default
	// 300; 0 turns caching off; at most 3600. Caching needs IdentitySource.
	ResultTTLSeconds *int `json:"resultTtlSeconds,omitempty"`
}

func (a *AuthorizerConfig) validate() error {
	var e confcheck.Errors
	if a.Integration == nil {
		e.Addf("integration", "required")
	} else {
		e.In("integration", a.Integration.Validate())
	}
	for i, s := range a.IdentitySource {
		if _, _, err := parseIdentitySource(s); err != nil {
			e.Addf(confcheck.Index("identitySource", i), "%v", err)
		}
	}
	e.RangeOpt("resultTtlSeconds", a.ResultTTLSeconds, 0, MaxAuthorizerTTLSeconds)
	return e.Err()
}

func parseIdentitySource(s string) (kind, name string, err error) {
	switch {
	case strings.HasPrefix(s, "route.request.header.") && len(s) > len("route.request.header."):
		return "header", s[len("route.request.header."):], nil
	case strings.HasPrefix(s, "route.request.querystring.") && len(s) > len("route.request.querystring."):
		return "query", s[len("route.request.querystring."):], nil
	}
	return "", "", fmt.Errorf("identity source %q: want route.request.header.NAME or route.request.querystring.NAME", s)
}

// authorizer runs the configured REQUEST authorizer.
type authorizer struct {
	integ   integration.Integration
	sources [][2]string // kind, name
	ttl     time.Duration

	mu    sync.Mutex
	cache map[string]authCacheEntry
}

type authCacheEntry struct {
	res     authResult
	expires time.Time
}

// authResult is an authorizer's decision about one identity.
type authResult struct {
	status  int             // 0 allows; otherwise the handshake status (401, 403, 500)
	context json.RawMessage // requestContext.authorizer for every later event
	groups  []string        // from context.groups, a comma-separated string
	apiKey  string          // usageIdentifierKey
}

func newAuthorizer(cfg *AuthorizerConfig, env integration.Env) (*authorizer, error) {
	in, err := integration.New(*cfg.Integration, env)
	if err != nil {
		return nil, fmt.Errorf("authorizer: %w", err)
	}
	a := &authorizer{integ: in, ttl: 300 * time.Second, cache: map[string]authCacheEntry{}}
	if cfg.ResultTTLSeconds != nil {
		a.ttl = confcheck.Seconds(*cfg.ResultTTLSeconds)
	}
	for _, s := range cfg.IdentitySource {
		kind, name, _ := parseIdentitySource(s)
		a.sources = append(a.sources, [2]string{kind, name})
	}
	return a, nil
}

// identity returns the identity-source values as a cache key; ok is false
// when one is missing (API Gateway answers 401 without calling). Each value
// is prefixed with its length, so no two lists of values share a key
// whatever bytes they hold (joined with a separator, "a\x00" + "b" and
// "a" + "\x00b" would: a query value can carry %00).
func (a *authorizer) identity(r *http.Request) (key string, ok bool) {
	var b []byte
	for _, s := range a.sources {
		var v string
		if s[0] == "header" {
			v = r.Header.Get(s[1])
		} else {
			v = r.URL.Query().Get(s[1])
		}
		if v == "" {
			return "", false
		}
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return string(b), true
}

// authorize decides about a connection. Missing identity: 401 without a
// call; the function's "Unauthorized" error: 401; an explicit Deny or no
// Allow for the method ARN: 403; any other failure: 500.
func (g *Gateway) authorizeConnect(ctx context.Context, l *live, r *http.Request, s *session, requestID string, now time.Time) authResult {
	a := l.auth
	key, ok := a.identity(r)
	if !ok {
		return authResult{status: http.StatusUnauthorized}
	}
	cacheable := len(a.sources) > 0 && a.ttl > 0
	if cacheable {
		a.mu.Lock()
		e, hit := a.cache[key]
		if hit && now.Before(e.expires) {
			a.mu.Unlock()
			return e.res
		}
		delete(a.cache, key)
		a.mu.Unlock()
	}
	methodArn := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/$connect", g.cfg.Region, g.cfg.AccountID, g.cfg.APIID, g.cfg.Stage)
	ev := g.authorizerEvent(s, r, requestID, methodArn, now)
	payload, err := json.Marshal(ev)
	if err != nil {
		return authResult{status: http.StatusInternalServerError}
	}
	start := time.Now()
	out, err := a.integ.Invoke(ctx, &integration.Invocation{Payload: payload, RequestID: requestID})
	latency := time.Since(start).Milliseconds()
	log := g.log.With("connectionId", s.connectionID, "requestId", requestID, "routeKey", routeConnect)
	if err != nil {
		var fe *integration.FunctionError
		if errors.As(err, &fe) && fe.Message == "Unauthorized" {
			return authResult{status: http.StatusUnauthorized}
		}
		if errors.Is(err, integration.ErrThrottled) {
			return authResult{status: http.StatusTooManyRequests}
		}
		log.Warn("authorizer failed", "error", err)
		return authResult{status: http.StatusInternalServerError}
	}
	res, err := evaluatePolicy(out, methodArn, latency)
	if err != nil {
		log.Warn("authorizer answered a malformed policy", "error", err)
		return authResult{status: http.StatusInternalServerError}
	}
	if cacheable {
		a.mu.Lock()
		if len(a.cache) > 10000 { // bound memory: drop expired entries, then everything
			for k, e := range a.cache {
				if now.After(e.expires) {
					delete(a.cache, k)
				}
			}
			if len(a.cache) > 10000 {
				clear(a.cache)
			}
		}
		a.cache[key] = authCacheEntry{res: res, expires: now.Add(a.ttl)}
		a.mu.Unlock()
	}
	return res
}

// authorizerEvent is the REQUEST authorizer's input: like the CONNECT
// event, plus type and methodArn, the Connection/Upgrade/content-length
// headers, and {} for empty query and stage variable maps.
type authorizerEvent struct {
	Type                            string              `json:"type"`
	MethodArn                       string              `json:"methodArn"`
	Headers                         map[string]string   `json:"headers"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`
	StageVariables                  map[string]string   `json:"stageVariables"`
	RequestContext                  RequestContext      `json:"requestContext"`
}

func (g *Gateway) authorizerEvent(s *session, r *http.Request, requestID, methodArn string, now time.Time) *authorizerEvent {
	ev := &authorizerEvent{
		Type:           "REQUEST",
		MethodArn:      methodArn,
		StageVariables: g.current().cfg.StageVariables,
		RequestContext: g.context(s, routeConnect, "CONNECT", requestID, now),
	}
	if ev.StageVariables == nil {
		ev.StageVariables = map[string]string{}
	}
	ev.Headers, ev.MultiValueHeaders = eventHeaders(r, s, new(g.client(r)), true).maps()
	ev.QueryStringParameters, ev.MultiValueQueryStringParameters = queryMaps(r.URL.RawQuery, true)
	return ev
}

// policyOutput is what an authorizer returns.
type policyOutput struct {
	PrincipalID    *string `json:"principalId"`
	PolicyDocument *struct {
		Statement []struct {
			Action   stringOrList `json:"Action"`
			Effect   string       `json:"Effect"`
			Resource stringOrList `json:"Resource"`
		} `json:"Statement"`
	} `json:"policyDocument"`
	Context map[string]json.RawMessage `json:"context"`
	// UsageIdentifierKey is the API key when apiKeySelectionExpression is
	// $context.authorizer.usageIdentifierKey.
	UsageIdentifierKey string `json:"usageIdentifierKey"`
}

type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// evaluatePolicy applies IAM's rule to the policy for execute-api:Invoke on
// methodArn: an explicit Deny wins, else an Allow is needed. Wildcards are
// IAM's ('*' any run of characters, '?' one), so ".../prod/*/*" does not
// match ".../prod/$connect", as on AWS.
func evaluatePolicy(out []byte, methodArn string, latency int64) (authResult, error) {
	var p policyOutput
	if err := json.Unmarshal(out, &p); err != nil {
		return authResult{}, err
	}
	if p.PrincipalID == nil {
		return authResult{}, errors.New("no principalId")
	}
	if p.PolicyDocument == nil {
		return authResult{}, errors.New("no policyDocument")
	}
	allow, deny := false, false
	for _, st := range p.PolicyDocument.Statement {
		if !matchAny(st.Action, "execute-api:Invoke") || !matchAny(st.Resource, methodArn) {
			continue
		}
		switch strings.ToLower(st.Effect) {
		case "allow":
			allow = true
		case "deny":
			deny = true
		}
	}
	if deny || !allow {
		return authResult{status: http.StatusForbidden}, nil
	}
	// requestContext.authorizer: principalId, every context key with its
	// JSON type, and integrationLatency.
	auth := map[string]json.RawMessage{}
	var groups []string
	for k, v := range p.Context {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || v[0] == '{' || v[0] == '[' {
			return authResult{}, fmt.Errorf("context value %q is not a string, number or boolean", k)
		}
		auth[k] = v
		if k == "groups" {
			var s string
			if json.Unmarshal(v, &s) == nil {
				for _, g := range strings.Split(s, ",") {
					if g = strings.TrimSpace(g); g != "" {
						groups = append(groups, g)
					}
				}
			}
		}
	}
	pid, _ := json.Marshal(*p.PrincipalID)
	auth["principalId"] = pid
	auth["integrationLatency"] = json.RawMessage(fmt.Sprint(latency))
	raw, err := json.Marshal(auth)
	if err != nil {
		return authResult{}, err
	}
	return authResult{context: raw, groups: groups, apiKey: p.UsageIdentifierKey}, nil
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if iamMatch(p, s) {
			return true
		}
	}
	return false
}

// iamMatch matches IAM's wildcards: '*' any run of characters ('/'
// included, unlike path.Match), '?' any one character.
func iamMatch(pattern, s string) bool {
	ok, _ := globMatch(pattern, s)
	return ok
}

// globMatch is iamMatch, also returning the steps it took. It is the
// greedy two-pointer match: a '*' first matches nothing, and on a mismatch
// the match resumes from the last '*' seen, which then takes one more
// character. Earlier stars never need revisiting (whatever they matched,
// the last star can absorb), so there are at most (len(pattern)+1) *
// (len(s)+1) steps; a recursive match takes exponential time on patterns
// like "*?*?*?*?*?*?*?*X". Patterns over 2048 bytes (IAM's ARN limit)
// match nothing.
func globMatch(pattern, s string) (ok bool, steps int) {
	if len(pattern) > 2048 {
		return false, 0
	}
	p, i := 0, 0
	star, resume := -1, 0 // the last '*' and where its match would end next
	for i < len(s) {
		steps++
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, resume = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p, i = p+1, i+1
		case star >= 0:
			resume++
			p, i = star+1, resume
		default:
			return false, steps
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern), steps
}
