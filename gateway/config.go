package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/confcheck"
)

// Config is the gateway part of the config file. Field names are the user
// interface and documented in docs/configuration.md; each field's default is
// written on it and applied by SetDefaults.
type Config struct {
	// Listen is the one address that serves WebSocket clients and the
	// management API. Default "127.0.0.1:8080".
	Listen string `json:"listen,omitempty"`
	// APIID is requestContext.apiId. Default "local".
	APIID string `json:"apiId,omitempty"`
	// Stage is the first path segment: clients connect to ws://ADDR/{stage}.
	// Default "dev".
	Stage string `json:"stage,omitempty"`
	// Region is the SigV4 region of the management API (service
	// execute-api) and AWS_REGION for command handlers. Default "us-east-1".
	Region string `json:"region,omitempty"`
	// AccountID appears in ARNs (authorizer methodArn). Default "000000000000".
	AccountID string `json:"accountId,omitempty"`
	// DomainName is requestContext.domainName. Default: the Host header the
	// client used.
	DomainName string `json:"domainName,omitempty"`
	// RouteSelectionExpression picks a route for each message. Default
	// "$request.body.action".
	RouteSelectionExpression string `json:"routeSelectionExpression,omitempty"`
	// IdleTimeoutSeconds closes a connection with no data frame in either
	// direction for this long. Default 600 (API Gateway's fixed value).
	IdleTimeoutSeconds int `json:"idleTimeoutSeconds,omitempty"`
	// MaxConnectionSeconds closes a connection this long after it opened.
	// Default 7200 (API Gateway's fixed value).
	MaxConnectionSeconds int `json:"maxConnectionSeconds,omitempty"`
	// StageVariables are passed as stageVariables in every event. Default none.
	StageVariables map[string]string `json:"stageVariables,omitempty"`
	// Credentials are the access keys the management API accepts.
	Credentials []Credential `json:"credentials,omitempty"`
	// AuthorizationType of $connect: "NONE" (default), "AWS_IAM" (the
	// upgrade request must be SigV4-signed for execute-api, in headers or
	// as a presigned URL, with one of Credentials) or "CUSTOM" (the
	// Authorizer; implied when Authorizer is set).
	AuthorizationType string `json:"authorizationType,omitempty"`
	// Authorizer is a Lambda REQUEST authorizer on $connect.
	Authorizer *AuthorizerConfig `json:"authorizer,omitempty"`
	// Routes maps route keys ($connect, $disconnect, $default, custom) to
	// what they do.
	Routes map[string]Route `json:"routes,omitempty"`
	// APIKeySelectionExpression is where a connection's API key comes
	// from: "$request.header.x-api-key" (the $connect request's header,
	// default) or "$context.authorizer.usageIdentifierKey" (the
	// authorizer's answer).
	APIKeySelectionExpression string `json:"apiKeySelectionExpression,omitempty"`
	// APIKeys are the keys routes with apiKeyRequired accept. Default none.
	APIKeys []APIKey `json:"apiKeys,omitempty"`
	// UsagePlans give API keys a token bucket and a quota each (see
	// UsagePlan). With any plan, a key in none is refused. Default none.
	UsagePlans []UsagePlan `json:"usagePlans,omitempty"`
	// Models are the JSON schemas (draft 4, as API Gateway's models) that
	// routes' requestModels name. Default none.
	Models map[string]any `json:"models,omitempty"`

	// BinaryFrames is what a binary frame from a client does: "reject"
	// (default; close with 1003 as API Gateway does) or "base64" (deliver
	// as a MESSAGE with the body base64-encoded and isBase64Encoded true).
	BinaryFrames string `json:"binaryFrames,omitempty"`
	// OutboundQueueFrames bounds each connection's frames not yet written
	// (queued or being written). A POST to a full queue answers 429; a
	// publish skips that member. Default 256.
	OutboundQueueFrames int `json:"outboundQueueFrames,omitempty"`
	// OutboundQueueBytes bounds the bytes of those frames, in bytes, with
	// the same answers when full; a frame always fits an empty queue, so
	// one 128 KB message goes out whatever the bound. Default 1048576
	// (1 MiB); 1024 to 1073741824.
	OutboundQueueBytes int `json:"outboundQueueBytes,omitempty"`
	// SlowConsumerSeconds: a connection that had a data frame refused for
	// the queue bound and has not drained its queue this long is closed
	// with 1008 at the next refusal. A write that makes no progress for
	// writeTimeoutSeconds while frames are being refused closes with 1008
	// too. Default 10.
	SlowConsumerSeconds int `json:"slowConsumerSeconds,omitempty"`
	// SendBufferBytes sets each client socket's kernel send buffer
	// (SO_SNDBUF). 0 (default) leaves it to the kernel's autotuning, which
	// lets a stalled client pin up to net.ipv4.tcp_wmem's maximum (4 MiB
	// on Linux); a small value bounds that and detects slow readers sooner.
	SendBufferBytes int `json:"sendBufferBytes,omitempty"`
	// WriteTimeoutSeconds: a client that accepts no bytes for this long is
	// closed: 1008 when its queue is at the bound (a slow consumer), else
	// 1006. Default 10.
	WriteTimeoutSeconds int `json:"writeTimeoutSeconds,omitempty"`
	// MaxInflightPerConnection bounds the route invocations one connection
	// may have running; past it the gateway stops reading that socket until
	// one finishes. Default 32.
	MaxInflightPerConnection int `json:"maxInflightPerConnection,omitempty"`
	// MaxGroupsPerConnection is the most groups one connection may be in;
	// a join past it answers 429 LimitExceededException (management API)
	// or the Forbidden frame (a groups route), and $connect skips the
	// groups past it. Default 100.
	MaxGroupsPerConnection int `json:"maxGroupsPerConnection,omitempty"`
	// MaxGroups is the most non-empty groups the gateway holds; a join
	// that would create one more fails as above. Default 1000000.
	MaxGroups int `json:"maxGroups,omitempty"`
	// MaxInflight bounds the integration invocations running at once across
	// the whole gateway: route messages, $connect, $disconnect and the
	// authorizer. A message past it is answered with the frame
	// {"message": "Too Many Requests", ...} and a handshake with 429;
	// $disconnect waits for a slot instead. Default 1000 (Lambda's default
	// account concurrency). Range 2 to 1000000, and above
	// maxInflightPerConnection so one connection cannot take it all.
	MaxInflight int `json:"maxInflight,omitempty"`
	// ReadHeaderTimeoutSeconds bounds reading a request's headers, the
	// WebSocket upgrade's and the management API's alike (the server's
	// http.Server.ReadHeaderTimeout). Default 10. Range 1 to 3600.
	ReadHeaderTimeoutSeconds int `json:"readHeaderTimeoutSeconds,omitempty"`
	// ReadBodyTimeoutSeconds bounds reading a management request's body,
	// counted from the end of its headers; a client that stalls its body
	// is cut off. WebSocket connections are not affected. Default 30.
	// Range 1 to 3600.
	ReadBodyTimeoutSeconds int `json:"readBodyTimeoutSeconds,omitempty"`
	// MaxManagementRequests bounds the management requests served at once;
	// past it a request is answered 429 LimitExceededException without its
	// body being read. Default 512. Range 1 to 1000000.
	MaxManagementRequests int `json:"maxManagementRequests,omitempty"`
	// ShutdownTimeoutSeconds bounds the wait for in-flight integration calls
	// and $disconnect events at shutdown. Default 30.
	ShutdownTimeoutSeconds int `json:"shutdownTimeoutSeconds,omitempty"`
	// DebugSignatures puts the canonical request and string to sign into
	// the 403 message of a signature mismatch, as AWS does. Default true.
	DebugSignatures *bool `json:"debugSignatures,omitempty"`
	// AllowedOrigins, when set, limits which web pages may open a
	// WebSocket: an upgrade whose Origin header matches none of these
	// (exact origins such as "https://app.example.com", or path.Match
	// patterns such as "https://*.example.com") is refused with 403 before
	// the authorizer and $connect run. Requests without an Origin header
	// (non-browser clients) are not affected. Default: none, every origin
	// is accepted, as on API Gateway, which has no such setting.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// BasePaths are API mappings, as a custom domain has: base path ("/",
	// "/chat", "/v1/chat") → stage. Clients connect to ws://HOST/chat, and
	// the management API is at http://HOST/chat/@connections/{id}, besides
	// the stage's own /{stage}; requestContext.stage is the stage and
	// domainName the Host the client used. Default none.
	BasePaths map[string]string `json:"basePaths,omitempty"`
	// TrustedProxies are the proxies in front of wsgate, as CIDRs
	// ("10.0.0.0/8") or addresses ("127.0.0.1"): only from these peers are
	// the forwarding headers (ForwardedHeader, X-Forwarded-Proto, -Port,
	// -Host) and, with the server's proxyProtocol, PROXY protocol headers
	// believed. sourceIp is then the right-most address of the chain that
	// is not one of them. Default none: the TCP peer is the client.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// ForwardedHeader is the header the trusted proxies write the chain
	// into: "X-Forwarded-For" (default; with X-Forwarded-Proto, -Port and
	// -Host) or "Forwarded" (RFC 7239: for=, proto=, host=). Only the one
	// named is read, so a client cannot slip a forged chain past a proxy
	// that writes the other.
	ForwardedHeader string `json:"forwardedHeader,omitempty"`
	// Throttling is the stage's default route throttling (AWS's
	// DefaultRouteSettings): every route but $disconnect gets a token
	// bucket of its own with these limits, unless it sets its own. A
	// message its route's bucket refuses is answered with the frame
	// {"message": "Too Many Requests", ...}; a handshake refused by the
	// $connect route's, 429. Default none (no limit).
	Throttling *Throttling `json:"throttling,omitempty"`
	// ConnectionThrottling is one token bucket for every handshake, before
	// the authorizer and $connect run (AWS's new connections per second
	// quota, 500 by default on AWS, an account-wide rate). A handshake it
	// refuses is answered 429. Default none (no limit).
	ConnectionThrottling *Throttling `json:"connectionThrottling,omitempty"`
}

// IntegrationEnv is what the integrations built from this config are told
// about the gateway: its region, the management endpoint handlers call back
// and the first credential (with its session token), for handlers to sign
// those calls with.
func (c *Config) IntegrationEnv(managementEndpoint string, logger *slog.Logger) integration.Env {
	env := integration.Env{Region: c.Region, ManagementEndpoint: managementEndpoint, Logger: logger}
	if len(c.Credentials) > 0 {
		cr := c.Credentials[0]
		env.AccessKeyID, env.SecretAccessKey, env.SessionToken = cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken
	}
	return env
}

// Credential is one access key of the management API.
type Credential struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	// SessionToken, when set, must be sent as X-Amz-Security-Token.
	SessionToken string `json:"sessionToken,omitempty"`
}

// Route is one route key's behaviour.
type Route struct {
	// Integration is the backend the route calls. A route with no
	// integration must join or leave a group (Groups).
	Integration *integration.Config `json:"integration,omitempty"`
	// RouteResponseSelectionExpression "$default" makes the route two-way:
	// the integration response body is sent back to the client. Unset, the
	// body is dropped, as API Gateway does.
	RouteResponseSelectionExpression string `json:"routeResponseSelectionExpression,omitempty"`
	// Groups makes the route join or leave the group named in the message,
	// with no backend code. It runs before the integration, if any.
	Groups *RouteGroups `json:"groups,omitempty"`
	// Throttling is this route's token bucket (AWS's RouteSettings),
	// instead of the stage's throttling. Not on $disconnect.
	Throttling *Throttling `json:"throttling,omitempty"`
	// APIKeyRequired refuses a connection ($connect: 403) or a message
	// (the Forbidden frame) without a known, enabled API key.
	APIKeyRequired bool `json:"apiKeyRequired,omitempty"`
	// RequestModels validate the message before the integration runs:
	// model names (under the config's models) by the key
	// ModelSelectionExpression picks. A message that fails, or finds no
	// model (nor a "$default" one), is answered with the frame
	// {"message": "Invalid request body", ...}. Not on $connect and
	// $disconnect, which have no body.
	RequestModels map[string]string `json:"requestModels,omitempty"`
	// ModelSelectionExpression picks the request model: static text,
	// $request.body.PATH or ${request.body.PATH}. Default "\$default".
	ModelSelectionExpression string `json:"modelSelectionExpression,omitempty"`
}

// APIKey is one API key (AWS::ApiGateway::ApiKey).
type APIKey struct {
	// ID is $context.identity.apiKeyId. Default: the name.
	ID string `json:"id,omitempty"`
	// Name names the key in logs. Required.
	Name string `json:"name"`
	// Value is the key clients present, 20 to 128 characters as on AWS.
	Value string `json:"value"`
	// Enabled false refuses the key. Default true.
	Enabled *bool `json:"enabled,omitempty"`
}

// RouteGroups is a route's group membership action, e.g. for
// {"action":"subscribe","group":"orders"}:
//
//	subscribe: { groups: { join: "$request.body.group", allow: ["orders", "prices.*"] } }
type RouteGroups struct {
	// Join is a selection expression naming the group to join.
	Join string `json:"join,omitempty"`
	// Leave is a selection expression naming the group to leave.
	Leave string `json:"leave,omitempty"`
	// Allow lists the groups Join may join: names, or patterns with '*'
	// (path.Match syntax). Required with Join; Leave needs none.
	Allow []string `json:"allow,omitempty"`
}

const (
	routeConnect    = "$connect"
	routeDisconnect = "$disconnect"
	routeDefault    = "$default"
)

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	def(&c.Listen, "127.0.0.1:8080")
	def(&c.APIID, "local")
	def(&c.Stage, "dev")
	def(&c.Region, "us-east-1")
	def(&c.AccountID, "000000000000")
	def(&c.RouteSelectionExpression, "$request.body.action")
	def(&c.BinaryFrames, "reject")
	def(&c.ForwardedHeader, headerXFF)
	if c.Authorizer != nil {
		def(&c.AuthorizationType, "CUSTOM")
	}
	def(&c.AuthorizationType, "NONE")
	defInt(&c.IdleTimeoutSeconds, 600)
	defInt(&c.MaxConnectionSeconds, 7200)
	defInt(&c.OutboundQueueFrames, 256)
	defInt(&c.OutboundQueueBytes, 1<<20)
	defInt(&c.SlowConsumerSeconds, 10)
	defInt(&c.WriteTimeoutSeconds, 10)
	defInt(&c.MaxInflightPerConnection, 32)
	defInt(&c.MaxInflight, 1000)
	defInt(&c.ReadHeaderTimeoutSeconds, 10)
	defInt(&c.ReadBodyTimeoutSeconds, 30)
	defInt(&c.MaxManagementRequests, 512)
	defInt(&c.ShutdownTimeoutSeconds, 30)
	defInt(&c.MaxGroupsPerConnection, hub.DefaultGroupsPerConnection)
	defInt(&c.MaxGroups, hub.DefaultGroups)
	if c.DebugSignatures == nil {
		t := true
		c.DebugSignatures = &t
	}
}

// HubLimits are the limits of a hub.Memory for this config.
func (c *Config) HubLimits() hub.Limits {
	return hub.Limits{GroupsPerConnection: c.MaxGroupsPerConnection, Groups: c.MaxGroups}
}

var (
	stageRe    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	accountRe  = regexp.MustCompile(`^[0-9]{12}$`)
	routeKeyRe = regexp.MustCompile(`^[^\s]{1,128}$`)
)

// Ranges of the numeric fields, after defaults (docs/configuration.md).
// Where API Gateway fixes a value (idle 10 minutes, connection 2 hours)
// wsgate's default is AWS's and its maximum is more generous, yet bounded:
// no accepted value can overflow a time.Duration (about 292 years) or a
// socket option.
const (
	MaxIdleTimeoutSeconds     = 7 * 24 * 3600 // one week
	MaxConnectionSeconds      = 7 * 24 * 3600 // one week
	MaxOutboundQueueFrames    = 65536
	MinOutboundQueueBytes     = 1024
	MaxOutboundQueueBytes     = 1 << 30
	MaxSlowConsumerSeconds    = 3600
	MaxSendBufferBytes        = 1 << 30 // the kernel caps it at net.core.wmem_max anyway
	MaxWriteTimeoutSeconds    = 3600
	MaxInflightPerConnection  = 10000
	MaxInflight               = 1000000
	MaxReadTimeoutSeconds     = 3600
	MaxManagementRequests     = 1000000
	MaxShutdownTimeoutSeconds = 3600
	MaxAuthorizerTTLSeconds   = 3600 // API Gateway's maximum
	MaxGroupsPerConnection    = 10000
	MaxGroups                 = 100_000_000
)

// Validate reports every problem in a config with defaults applied, so a
// user fixes them in one pass. Each problem names its field path, e.g.
// routes["$default"].integration.timeoutMillis.
func (c *Config) Validate() error {
	var e confcheck.Errors
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		e.Addf("listen", "%q: %v", c.Listen, err)
	}
	if !stageRe.MatchString(c.Stage) {
		e.Addf("stage", "%q: want 1 to 128 letters, digits, '-' or '_'", c.Stage)
	}
	if !accountRe.MatchString(c.AccountID) {
		e.Addf("accountId", "%q: want 12 digits", c.AccountID)
	}
	if _, err := ParseSelectionExpression(c.RouteSelectionExpression); err != nil {
		e.Addf("routeSelectionExpression", "%v", err)
	}
	e.Range("idleTimeoutSeconds", c.IdleTimeoutSeconds, 1, MaxIdleTimeoutSeconds)
	e.Range("maxConnectionSeconds", c.MaxConnectionSeconds, 1, MaxConnectionSeconds)
	e.Range("outboundQueueFrames", c.OutboundQueueFrames, 1, MaxOutboundQueueFrames)
	e.Range("slowConsumerSeconds", c.SlowConsumerSeconds, 1, MaxSlowConsumerSeconds)
	e.Range("sendBufferBytes", c.SendBufferBytes, 0, MaxSendBufferBytes)
	e.Range("writeTimeoutSeconds", c.WriteTimeoutSeconds, 1, MaxWriteTimeoutSeconds)
	e.Range("maxInflightPerConnection", c.MaxInflightPerConnection, 1, MaxInflightPerConnection)
	e.Range("shutdownTimeoutSeconds", c.ShutdownTimeoutSeconds, 1, MaxShutdownTimeoutSeconds)
	if c.BinaryFrames != "reject" && c.BinaryFrames != "base64" {
		e.Addf("binaryFrames", "%q: want reject or base64", c.BinaryFrames)
	}
	for i, o := range c.AllowedOrigins {
		if err := checkOriginPattern(o); err != nil {
			e.Addf(confcheck.Index("allowedOrigins", i), "%v", err)
		}
	}
	e.Range("outboundQueueBytes", c.OutboundQueueBytes, MinOutboundQueueBytes, MaxOutboundQueueBytes)
	e.Range("maxGroupsPerConnection", c.MaxGroupsPerConnection, 1, MaxGroupsPerConnection)
	e.Range("maxGroups", c.MaxGroups, 1, MaxGroups)
	if e.Range("maxInflight", c.MaxInflight, 2, MaxInflight) && c.MaxInflightPerConnection >= c.MaxInflight {
		e.Addf("maxInflightPerConnection", "must be below maxInflight (%d), so one connection cannot take the whole budget, got %d", c.MaxInflight, c.MaxInflightPerConnection)
	}
	c.validateBasePaths(&e)
	if _, err := ParseProxies(c.TrustedProxies); err != nil {
		e.Addf("trustedProxies", "%v", err)
	}
	if c.ForwardedHeader != headerXFF && c.ForwardedHeader != headerForwarded {
		e.Addf("forwardedHeader", "%q: want X-Forwarded-For or Forwarded", c.ForwardedHeader)
	}
	if c.Throttling != nil {
		e.In("throttling", c.Throttling.validate())
	}
	if c.ConnectionThrottling != nil {
		e.In("connectionThrottling", c.ConnectionThrottling.validate())
	}
	e.Range("readHeaderTimeoutSeconds", c.ReadHeaderTimeoutSeconds, 1, MaxReadTimeoutSeconds)
	e.Range("readBodyTimeoutSeconds", c.ReadBodyTimeoutSeconds, 1, MaxReadTimeoutSeconds)
	e.Range("maxManagementRequests", c.MaxManagementRequests, 1, MaxManagementRequests)
	switch c.AuthorizationType {
	case "NONE", "AWS_IAM":
		if c.Authorizer != nil {
			e.Addf("authorizer", "set but authorizationType is %s (use CUSTOM or leave it unset)", c.AuthorizationType)
		}
	case "CUSTOM":
		if c.Authorizer == nil {
			e.Addf("authorizationType", "CUSTOM needs an authorizer")
		}
	default:
		e.Addf("authorizationType", "%q: want NONE, AWS_IAM or CUSTOM", c.AuthorizationType)
	}
	if c.AuthorizationType == "AWS_IAM" && len(c.Credentials) == 0 {
		e.Addf("authorizationType", "AWS_IAM needs credentials to verify signatures against")
	}
	if c.Authorizer != nil {
		e.In("authorizer", c.Authorizer.validate())
	}
	c.validateAPIKeys(&e)
	seen := map[string]bool{}
	for i, cr := range c.Credentials {
		p := confcheck.Index("credentials", i)
		if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
			e.Addf(p, "accessKeyId and secretAccessKey are required")
		}
		if seen[cr.AccessKeyID] {
			e.Addf(p, "accessKeyId %q appears twice", cr.AccessKeyID)
		}
		seen[cr.AccessKeyID] = true
	}
	for key, r := range c.Routes {
		p := confcheck.Key("routes", key)
		if !routeKeyRe.MatchString(key) {
			e.Addf(p, "a route key is 1 to 128 characters with no white space")
			continue
		}
		if strings.HasPrefix(key, "$") && key != routeConnect && key != routeDisconnect && key != routeDefault {
			e.Addf(p, "custom route keys may not start with '$' (reserved: $connect, $disconnect, $default)")
		}
		if _, err := buildRequestModels(&r, c.Models); err != nil {
			e.In(p, err)
		} else if len(r.RequestModels) > 0 && (key == routeConnect || key == routeDisconnect) {
			e.Addf(confcheck.Field(p, "requestModels"), "%s has no body to validate", key)
		}
		if r.Integration == nil && r.Groups == nil {
			e.Addf(p, "an integration (or a groups action) is required")
		} else if r.Integration != nil {
			e.In(confcheck.Field(p, "integration"), r.Integration.Validate())
		}
		if r.Groups != nil {
			if err := r.Groups.validate(key); err != nil {
				e.Addf(confcheck.Field(p, "groups"), "%v", err)
			}
		}
		if r.RouteResponseSelectionExpression != "" && r.RouteResponseSelectionExpression != "$default" {
			e.Addf(confcheck.Field(p, "routeResponseSelectionExpression"), "%q: only \"$default\" is supported (as on AWS)", r.RouteResponseSelectionExpression)
		}
		if r.Throttling != nil {
			if key == routeDisconnect {
				e.Addf(confcheck.Field(p, "throttling"), "$disconnect cannot be throttled: its event would be lost")
			} else {
				e.In(confcheck.Field(p, "throttling"), r.Throttling.validate())
			}
		}
		if (key == routeConnect || key == routeDisconnect) && r.RouteResponseSelectionExpression != "" {
			e.Addf(p, "$connect and $disconnect cannot be two-way")
		}
	}
	return e.Err()
}

// IdleTimeout is IdleTimeoutSeconds as a duration.
func (c *Config) IdleTimeout() time.Duration { return confcheck.Seconds(c.IdleTimeoutSeconds) }

// MaxConnection is MaxConnectionSeconds as a duration.
func (c *Config) MaxConnection() time.Duration { return confcheck.Seconds(c.MaxConnectionSeconds) }

// SlowConsumer is SlowConsumerSeconds as a duration.
func (c *Config) SlowConsumer() time.Duration { return confcheck.Seconds(c.SlowConsumerSeconds) }

// WriteTimeout is WriteTimeoutSeconds as a duration.
func (c *Config) WriteTimeout() time.Duration { return confcheck.Seconds(c.WriteTimeoutSeconds) }

// ShutdownTimeout is ShutdownTimeoutSeconds as a duration.
func (c *Config) ShutdownTimeout() time.Duration { return confcheck.Seconds(c.ShutdownTimeoutSeconds) }

func (rg *RouteGroups) validate(key string) error {
	if key == routeConnect || key == routeDisconnect {
		return errors.New("groups actions run on message routes; $connect joins groups through its response's \"groups\" list")
	}
	if (rg.Join == "") == (rg.Leave == "") {
		return errors.New("groups: set exactly one of join or leave")
	}
	expr := rg.Join + rg.Leave
	if _, err := ParseSelectionExpression(expr); err != nil {
		return fmt.Errorf("groups: %v", err)
	}
	if rg.Join != "" && len(rg.Allow) == 0 {
		return errors.New("groups: join needs an allow list of the groups it may join")
	}
	for _, p := range rg.Allow {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("groups: bad allow pattern %q", p)
		}
	}
	return nil
}
