package gateway

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/jsontext"
)

// Event is the Lambda proxy event API Gateway sends for CONNECT, MESSAGE
// and DISCONNECT, with exactly the fields real events carry, so it decodes
// into aws-lambda-go's events.APIGatewayWebsocketProxyRequest. Which fields
// are present depends on the event type; see docs/compatibility.md.
type Event struct {
	Headers                         map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders,omitempty"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters,omitempty"`
	StageVariables                  map[string]string   `json:"stageVariables,omitempty"`
	RequestContext                  RequestContext      `json:"requestContext"`
	// Body is present (possibly "") on MESSAGE only.
	Body            *string `json:"body,omitempty"`
	IsBase64Encoded bool    `json:"isBase64Encoded"`
}

// RequestContext is the event's requestContext.
type RequestContext struct {
	RouteKey             string          `json:"routeKey"`
	DisconnectStatusCode *int            `json:"disconnectStatusCode,omitempty"`
	MessageID            string          `json:"messageId,omitempty"`
	EventType            string          `json:"eventType"`
	ExtendedRequestID    string          `json:"extendedRequestId"`
	RequestTime          string          `json:"requestTime"`
	MessageDirection     string          `json:"messageDirection"`
	DisconnectReason     *string         `json:"disconnectReason,omitempty"`
	Stage                string          `json:"stage"`
	ConnectedAt          int64           `json:"connectedAt"`
	RequestTimeEpoch     int64           `json:"requestTimeEpoch"`
	Identity             Identity        `json:"identity"`
	RequestID            string          `json:"requestId"`
	DomainName           string          `json:"domainName"`
	ConnectionID         string          `json:"connectionId"`
	APIID                string          `json:"apiId"`
	Authorizer           json.RawMessage `json:"authorizer,omitempty"`
}

// Identity is requestContext.identity: captured at the handshake and
// repeated on every later event of the connection.
type Identity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent,omitempty"`
	// APIKey and APIKeyID are the connection's API key, when the API has
	// apiKeys and the connection presented a known one.
	APIKey   string `json:"apiKey,omitempty"`
	APIKeyID string `json:"apiKeyId,omitempty"`
}

// requestTimeLayout is CLF, as in "20/Jan/2024:11:55:00 +0000".
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// session is what every event of one connection shares.
type session struct {
	connectionID string
	connectedAt  time.Time
	identity     Identity
	domainName   string
	authorizer   json.RawMessage
}

func (g *Gateway) context(s *session, routeKey, eventType, requestID string, now time.Time) RequestContext {
	return RequestContext{
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: requestID,
		RequestID:         requestID, // equal on WebSocket APIs
		RequestTime:       now.UTC().Format(requestTimeLayout),
		MessageDirection:  "IN",
		Stage:             g.cfg.Stage,
		ConnectedAt:       s.connectedAt.UnixMilli(),
		RequestTimeEpoch:  now.UnixMilli(),
		Identity:          s.identity,
		DomainName:        s.domainName,
		ConnectionID:      s.connectionID,
		APIID:             g.cfg.APIID,
		Authorizer:        s.authorizer,
	}
}

func (g *Gateway) stageVariables() map[string]string {
	vars := g.current().cfg.StageVariables
	if len(vars) == 0 {
		return nil
	}
	return vars
}

// connectEvent builds the CONNECT event: the client's handshake headers
// (minus Connection, Upgrade and Content-Length, which AWS leaves out) plus
// the X-Forwarded-* and trace headers API Gateway adds; the query string
// only when the URL had one.
func (g *Gateway) connectEvent(s *session, r *http.Request, requestID string, now time.Time) *Event {
	ev := &Event{
		StageVariables: g.stageVariables(),
		RequestContext: g.context(s, routeConnect, "CONNECT", requestID, now),
	}
	ev.Headers, ev.MultiValueHeaders = g.eventHeaders(r, s, false)
	ev.QueryStringParameters, ev.MultiValueQueryStringParameters = queryMaps(r.URL.RawQuery, false)
	return ev
}

func (g *Gateway) messageEvent(s *session, routeKey, requestID, messageID, body string, base64 bool, now time.Time) *Event {
	ev := &Event{
		StageVariables:  g.stageVariables(),
		RequestContext:  g.context(s, routeKey, "MESSAGE", requestID, now),
		Body:            &body,
		IsBase64Encoded: base64,
	}
	ev.RequestContext.MessageID = messageID
	return ev
}

// disconnectEvent carries the fixed synthetic headers AWS sends, not the
// client's.
func (g *Gateway) disconnectEvent(s *session, requestID string, code int, reason string, now time.Time) *Event {
	ev := &Event{
		Headers: map[string]string{
			"Host": s.domainName, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": "",
		},
		MultiValueHeaders: map[string][]string{
			"Host": {s.domainName}, "x-api-key": {""}, "X-Forwarded-For": {""}, "x-restapi": {""},
		},
		StageVariables: g.stageVariables(),
		RequestContext: g.context(s, routeDisconnect, "DISCONNECT", requestID, now),
	}
	ev.RequestContext.DisconnectStatusCode = &code
	ev.RequestContext.DisconnectReason = &reason
	return ev
}

// headerCase restores the spelling clients send for headers whose Go
// canonical form differs (net/http canonicalises "Sec-WebSocket-Key" to
// "Sec-Websocket-Key"); handlers look these up case-sensitively.
var headerCase = map[string]string{
	"Sec-Websocket-Key":        "Sec-WebSocket-Key",
	"Sec-Websocket-Version":    "Sec-WebSocket-Version",
	"Sec-Websocket-Extensions": "Sec-WebSocket-Extensions",
	"Sec-Websocket-Protocol":   "Sec-WebSocket-Protocol",
	"X-Amzn-Trace-Id":          "X-Amzn-Trace-Id",
	"Www-Authenticate":         "WWW-Authenticate",
}

// eventHeaders builds the headers maps of a CONNECT (authorizer=false) or
// authorizer (authorizer=true) event. The authorizer event keeps Connection,
// Upgrade and content-length, as AWS's does.
func (g *Gateway) eventHeaders(r *http.Request, s *session, authorizer bool) (map[string]string, map[string][]string) {
	cl := g.client(r)
	single := make(map[string]string, len(r.Header)+5)
	multi := make(map[string][]string, len(r.Header)+5)
	add := func(k string, vs ...string) {
		single[k] = vs[len(vs)-1]
		multi[k] = vs
	}
	host := cmp.Or(cl.host, r.Host)
	add("Host", host)
	for k, vs := range r.Header {
		switch k {
		case "Connection", "Upgrade", "Content-Length":
			if !authorizer {
				continue
			}
		case "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id":
			continue // set below, as API Gateway does
		case "Forwarded", "X-Forwarded-Host", "X-Real-Ip":
			if cl.viaProxy {
				continue // the trusted proxy's, not the client's
			}
		}
		if c, ok := headerCase[k]; ok {
			k = c
		}
		add(k, vs...)
	}
	if authorizer {
		if _, ok := single["content-length"]; !ok {
			add("content-length", "0")
		}
	}
	add("X-Amzn-Trace-Id", traceID(s))
	add("X-Forwarded-For", cl.forwardedFor)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	proto = cmp.Or(cl.proto, proto)
	port := "80"
	if proto == "https" {
		port = "443"
	}
	if _, p, ok := strings.Cut(host, ":"); ok && cl.port == "" {
		port = p
	}
	add("X-Forwarded-Port", cmp.Or(cl.port, port))
	add("X-Forwarded-Proto", proto)
	return single, multi
}

// traceID is an X-Ray style trace id, Root=1-<8 hex time>-<24 hex>.
func traceID(s *session) string {
	const hexdigits = "0123456789abcdef"
	var b strings.Builder
	b.WriteString("Root=1-")
	t := uint32(s.connectedAt.Unix())
	for i := 7; i >= 0; i-- {
		b.WriteByte(hexdigits[(t>>(4*uint(i)))&0xf])
	}
	b.WriteByte('-')
	id := s.connectionID
	for i := 0; i < 12; i++ {
		c := id[i%len(id)]
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&0xf])
	}
	return b.String()
}

// queryMaps parses a raw query; with always=false both maps are nil when
// there is no query string (the integration event omits them), with
// always=true they are empty maps (the authorizer event has {}).
func queryMaps(raw string, always bool) (map[string]string, map[string][]string) {
	if raw == "" && !always {
		return nil, nil
	}
	single := map[string]string{}
	multi := map[string][]string{}
	vals, _ := url.ParseQuery(raw)
	for k, vs := range vals {
		single[k] = vs[len(vs)-1]
		multi[k] = vs
	}
	return single, multi
}

// appendEvent appends ev as JSON, byte for byte what encoding/json writes
// with HTML escaping off (TestAppendEventMatchesEncodingJSON), without its
// reflection: every message's event goes through here.
func appendEvent(b []byte, ev *Event) ([]byte, error) {
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	if len(ev.Headers) > 0 {
		field("headers")
		b = appendStringMap(b, ev.Headers)
	}
	if len(ev.MultiValueHeaders) > 0 {
		field("multiValueHeaders")
		b = appendMultiMap(b, ev.MultiValueHeaders)
	}
	if len(ev.QueryStringParameters) > 0 {
		field("queryStringParameters")
		b = appendStringMap(b, ev.QueryStringParameters)
	}
	if len(ev.MultiValueQueryStringParameters) > 0 {
		field("multiValueQueryStringParameters")
		b = appendMultiMap(b, ev.MultiValueQueryStringParameters)
	}
	if len(ev.StageVariables) > 0 {
		field("stageVariables")
		b = appendStringMap(b, ev.StageVariables)
	}
	field("requestContext")
	b, err := appendRequestContext(b, &ev.RequestContext)
	if err != nil {
		return nil, err
	}
	if ev.Body != nil {
		field("body")
		b = jsontext.AppendString(b, *ev.Body)
	}
	field("isBase64Encoded")
	b = strconv.AppendBool(b, ev.IsBase64Encoded)
	return append(b, '}'), nil
}

func appendRequestContext(b []byte, rc *RequestContext) ([]byte, error) {
	str := func(name, v string) {
		b = append(b, name...)
		b = jsontext.AppendString(b, v)
	}
	str(`{"routeKey":`, rc.RouteKey)
	if rc.DisconnectStatusCode != nil {
		b = append(b, `,"disconnectStatusCode":`...)
		b = strconv.AppendInt(b, int64(*rc.DisconnectStatusCode), 10)
	}
	if rc.MessageID != "" {
		str(`,"messageId":`, rc.MessageID)
	}
	str(`,"eventType":`, rc.EventType)
	str(`,"extendedRequestId":`, rc.ExtendedRequestID)
	str(`,"requestTime":`, rc.RequestTime)
	str(`,"messageDirection":`, rc.MessageDirection)
	if rc.DisconnectReason != nil {
		str(`,"disconnectReason":`, *rc.DisconnectReason)
	}
	str(`,"stage":`, rc.Stage)
	b = append(b, `,"connectedAt":`...)
	b = strconv.AppendInt(b, rc.ConnectedAt, 10)
	b = append(b, `,"requestTimeEpoch":`...)
	b = strconv.AppendInt(b, rc.RequestTimeEpoch, 10)
	str(`,"identity":{"sourceIp":`, rc.Identity.SourceIP)
	if rc.Identity.UserAgent != "" {
		str(`,"userAgent":`, rc.Identity.UserAgent)
	}
	if rc.Identity.APIKey != "" {
		str(`,"apiKey":`, rc.Identity.APIKey)
	}
	if rc.Identity.APIKeyID != "" {
		str(`,"apiKeyId":`, rc.Identity.APIKeyID)
	}
	b = append(b, '}')
	str(`,"requestId":`, rc.RequestID)
	str(`,"domainName":`, rc.DomainName)
	str(`,"connectionId":`, rc.ConnectionID)
	str(`,"apiId":`, rc.APIID)
	if len(rc.Authorizer) > 0 {
		b = append(b, `,"authorizer":`...)
		// encoding/json checks and compacts a RawMessage; so does this.
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, rc.Authorizer); err != nil {
			return nil, fmt.Errorf("encoding event: authorizer context: %v", err)
		}
		b = buf.Bytes()
	}
	return append(b, '}'), nil
}

// sortedKeys returns m's keys in encoding/json's order, in buf when they fit.
func sortedKeys[V any](m map[string]V, buf []string) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendStringMap(b []byte, m map[string]string) []byte {
	var buf [32]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, buf[:]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, k)
		b = append(b, ':')
		b = jsontext.AppendString(b, m[k])
	}
	return append(b, '}')
}

func appendMultiMap(b []byte, m map[string][]string) []byte {
	var buf [32]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, buf[:]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, k)
		b = append(b, ':')
		vs := m[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = jsontext.AppendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}
