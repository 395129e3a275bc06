package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Observer is told what the gateway did, for metrics and access logs. The
// gateway calls it from the goroutine that served the request, after the
// answer went out; it must return quickly and never block on I/O (an
// access log queues the line, metrics add to counters).
type Observer interface {
	// Request is called once per handshake attempt (CONNECT, whatever its
	// outcome), per client message (MESSAGE) and per closed connection
	// (DISCONNECT, after its $disconnect integration returned). The
	// record is passed by value, so that making one costs the gateway no
	// allocation.
	Request(r Record)
	// Management is called once per management API request
	// (/{stage}/@connections..., @groups..., extensions) when it is
	// answered: its operation (one of the Op* constants), HTTP status and
	// duration.
	Management(op string, status int, d time.Duration)
}

// Observers calls each of its observers in turn.
type Observers []Observer

// Request implements Observer.
func (os Observers) Request(r Record) {
	for _, o := range os {
		o.Request(r)
	}
}

// Management implements Observer.
func (os Observers) Management(op string, status int, d time.Duration) {
	for _, o := range os {
		o.Management(op, status, d)
	}
}

// Event types of a Record, as $context.eventType spells them.
const (
	EventConnect    = "CONNECT"
	EventMessage    = "MESSAGE"
	EventDisconnect = "DISCONNECT"
)

// Outcomes of a Record: a small fixed set, so they can be metric labels.
const (
	// OutcomeOK: connected, routed, or disconnected.
	OutcomeOK = "ok"
	// OutcomeBadRequest: not a valid WebSocket handshake (400, 426) or an
	// origin not allowed (403).
	OutcomeBadRequest = "bad_request"
	// OutcomeUnauthorized: IAM or the authorizer refused (401, 403).
	OutcomeUnauthorized = "unauthorized"
	// OutcomeNoRoute: no route matched and there is no $default (the
	// Forbidden frame), or a groups action was refused.
	OutcomeNoRoute = "forbidden"
	// OutcomeThrottled: an in-flight bound was full (429, the Too Many
	// Requests frame).
	OutcomeThrottled = "throttled"
	// OutcomeRefused: $connect answered a non-2xx status.
	OutcomeRefused = "refused"
	// OutcomeIntegrationError: a message's integration answered 4xx/5xx.
	OutcomeIntegrationError = "integration_error"
	// OutcomeExecutionError: calling the integration failed (timeout,
	// unreachable, a function error, a malformed answer).
	OutcomeExecutionError = "execution_error"
	// OutcomeUnavailable: the gateway is shutting down (503).
	OutcomeUnavailable = "unavailable"
)

// Record is one CONNECT, MESSAGE or DISCONNECT as observed: the fields of
// API Gateway's $context variables for WebSocket access logs, and what
// the metrics count.
type Record struct {
	EventType    string // EventConnect, EventMessage or EventDisconnect
	RequestID    string
	MessageID    string // MESSAGE only
	ConnectionID string
	// RouteKey is the route that handled it: a configured route key,
	// $connect, $disconnect or $default (also when nothing matched).
	RouteKey    string
	ConnectedAt time.Time
	// RequestTime is when the gateway received the request.
	RequestTime time.Time
	SourceIP    string
	UserAgent   string
	DomainName  string
	// Authorizer is the authorizer's context of the connection (the
	// requestContext.authorizer JSON object), nil without one.
	Authorizer json.RawMessage

	// Status is what the gateway answered: 200 for a connect that
	// succeeded (API Gateway logs 200, not 101), a routed message and a
	// disconnect; the HTTP status of a refused handshake; 403, 429, 500
	// or 504 for a message answered with an error frame.
	Status int
	// Outcome is one of the Outcome* constants.
	Outcome string
	// ErrorMessage is the error the client got ("Forbidden",
	// "Internal server error", ...), "" on success.
	ErrorMessage string

	// Integrated reports whether an integration was called (then the
	// fields below are set).
	Integrated         bool
	IntegrationLatency time.Duration
	// IntegrationStatus is the statusCode the integration answered, 0
	// when the call failed.
	IntegrationStatus int
	// IntegrationError is why the call failed, "" when it answered.
	IntegrationError string

	// AuthorizerLatency and AuthorizerStatus: the REQUEST authorizer's
	// call on CONNECT, when one ran (status 200 when it allowed).
	AuthorizerLatency time.Duration
	AuthorizerStatus  int

	// BytesIn is the message's size (MESSAGE).
	BytesIn int
	// CloseCode and CloseReason (a label such as "client_close" or
	// "idle_timeout") say why a connection ended (DISCONNECT).
	CloseCode   int
	CloseReason string
}

// Operations of the management API, for Observer.Management.
const (
	OpPostToConnection = "PostToConnection"
	OpGetConnection    = "GetConnection"
	OpDeleteConnection = "DeleteConnection"
	OpListConnections  = "ListConnections"
	OpJoinGroup        = "JoinGroup"
	OpLeaveGroup       = "LeaveGroup"
	OpPublish          = "Publish"
	OpListGroup        = "ListGroupMembers"
	OpExtension        = "Extension" // @streams and the like
	OpUnknown          = "Unknown"   // no such method or path
)

// managementOp names the operation of a management request; rest is the
// escaped path after /{stage}/.
func managementOp(method, rest string) string {
	seg, tail, _ := strings.Cut(rest, "/")
	switch seg {
	case "@connections", "%40connections":
		switch {
		case tail == "" && method == http.MethodGet:
			return OpListConnections
		case tail == "" || strings.Contains(tail, "/"):
			return OpUnknown
		case method == http.MethodPost:
			return OpPostToConnection
		case method == http.MethodGet:
			return OpGetConnection
		case method == http.MethodDelete:
			return OpDeleteConnection
		}
	case "@groups", "%40groups":
		_, member, hasMember := strings.Cut(tail, "/")
		switch {
		case hasMember && member != "" && method == http.MethodPut:
			return OpJoinGroup
		case hasMember && member != "" && method == http.MethodDelete:
			return OpLeaveGroup
		case hasMember:
			return OpUnknown
		case method == http.MethodPost:
			return OpPublish
		case method == http.MethodGet:
			return OpListGroup
		}
	default:
		return OpExtension
	}
	return OpUnknown
}

// statusWriter remembers the status a management handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Stats are the gateway's running totals since it started, kept as plain
// atomic counters on the paths that move them (no allocation, no lock) and
// read by metrics when scraped.
type Stats struct {
	// FramesIn and BytesIn: WebSocket frames read from clients (data and
	// control) and their bytes, headers included.
	FramesIn, BytesIn uint64
	// FramesOut and BytesOut: frames queued or written to clients (data
	// and control, not the handshake) and their bytes, headers included.
	FramesOut, BytesOut uint64
	// QueueFull counts data frames for one connection (a POST, a route
	// answer) refused because its outbound queue was full.
	QueueFull uint64
	// GroupSkipped counts group deliveries skipped because the member's
	// queue was full.
	GroupSkipped uint64
	// MessagesOut counts data messages queued for clients.
	MessagesOut uint64
}

// stats is Stats as atomics.
type stats struct {
	framesIn, bytesIn, framesOut, bytesOut atomic.Uint64
	queueFull, groupSkipped, messagesOut   atomic.Uint64
}

// Stats returns the running totals.
func (g *Gateway) Stats() Stats {
	s := &g.stats
	return Stats{
		FramesIn: s.framesIn.Load(), BytesIn: s.bytesIn.Load(),
		FramesOut: s.framesOut.Load(), BytesOut: s.bytesOut.Load(),
		QueueFull: s.queueFull.Load(), GroupSkipped: s.groupSkipped.Load(),
		MessagesOut: s.messagesOut.Load(),
	}
}

// RouteKeys lists the configured route keys: the values a Record's
// RouteKey takes, with $default (a message nothing matched).
func (c *Config) RouteKeys() []string {
	keys := []string{routeConnect, routeDisconnect, routeDefault}
	for k := range c.Routes {
		if k != routeConnect && k != routeDisconnect && k != routeDefault {
			keys = append(keys, k)
		}
	}
	return keys
}

// observe hands a copy of r to the observer, if there is one.
func (g *Gateway) observe(r *Record) {
	if g.obs != nil {
		g.obs.Request(*r)
	}
}

// record starts a Record of a connection's event.
func (g *Gateway) record(s *session, eventType, routeKey, requestID string, now time.Time) Record {
	return Record{
		EventType: eventType, RequestID: requestID, ConnectionID: s.connectionID, RouteKey: routeKey,
		ConnectedAt: s.connected(), RequestTime: now, SourceIP: s.identity.SourceIP,
		UserAgent: s.identity.UserAgent, DomainName: s.domainName, Authorizer: s.authorizer,
		Status: http.StatusOK, Outcome: OutcomeOK,
	}
}

// integrated notes an integration call's result in r: its latency and
// either the statusCode it answered or why it failed.
func (r *Record) integrated(start time.Time, res *proxyResponse, err error) {
	r.Integrated = true
	r.IntegrationLatency = time.Since(start)
	if err != nil {
		r.IntegrationError = err.Error()
		return
	}
	r.IntegrationStatus = res.StatusCode
}

// fail marks r as answered with an error.
func (r *Record) fail(status int, outcome, msg string) {
	r.Status, r.Outcome, r.ErrorMessage = status, outcome, msg
}
