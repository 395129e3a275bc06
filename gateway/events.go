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
	// headers, when set, are the headers and multiValueHeaders (Headers
	// and MultiValueHeaders are then nil): the CONNECT event's, encoded by
	// appendEvent without the two maps (headerList.maps builds them).
	headers headerList
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

// requestTime is t in UTC as requestTimeLayout lays it out, without
// Format's reading of the layout: every event carries one.
func requestTime(t time.Time) string {
	const months = "JanFebMarAprMayJunJulAugSepOctNovDec"
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	if year < 0 || year > 9999 {
		return t.Format(requestTimeLayout)
	}
	var b [len("02/Jan/2006:15:04:05 +0000")]byte
	two := func(i, v int) { b[i], b[i+1] = byte('0'+v/10), byte('0'+v%10) }
	two(0, day)
	b[2] = '/'
	copy(b[3:6], months[3*(month-1):])
	b[6] = '/'
	two(7, year/100)
	two(9, year%100)
	b[11] = ':'
	two(12, hour)
	b[14] = ':'
	two(15, minute)
	b[17] = ':'
	two(18, sec)
	copy(b[20:], " +0000")
	return string(b[:])
}

// session is what every event of one connection shares.
type session struct {
	connectionID string
	// connectedAt is when the connection was made, a stamp (clock.go:
	// the monotonic clock, for the maximum duration; connected is its wall
	// time): 8 bytes where a time.Time is 24, in a struct every held
	// connection keeps.
	connectedAt int64
	identity    Identity
	domainName  string
	authorizer  json.RawMessage
}

// connected is connectedAt as a wall-clock time.
func (s *session) connected() time.Time { return wallAt(s.connectedAt) }

func (g *Gateway) context(s *session, routeKey, eventType, requestID string, now time.Time) RequestContext {
	return RequestContext{
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: requestID,
		RequestID:         requestID, // equal on WebSocket APIs
		RequestTime:       requestTime(now),
		MessageDirection:  "IN",
		Stage:             g.cfg.Stage,
		ConnectedAt:       s.connected().UnixMilli(),
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
// only when the URL had one. (The client is worked out again here rather
// than passed from upgrade, whose frame it would grow.)
func (g *Gateway) connectEvent(s *session, r *http.Request, requestID string, now time.Time) *Event {
	cl := g.client(r)
	return g.connectEventFrom(s, r, &cl, requestID, now)
}

// connectEventFrom is connectEvent with the client the handshake already
// read from r (g.client).
func (g *Gateway) connectEventFrom(s *session, r *http.Request, cl *client, requestID string, now time.Time) *Event {
	ev := &Event{
		StageVariables: g.stageVariables(),
		RequestContext: g.context(s, routeConnect, "CONNECT", requestID, now),
		headers:        eventHeaders(r, s, cl, false),
	}
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

// header is one header of an event: its values, the last of which is its
// entry in the headers map.
type header struct {
	name   string
	values []string // the client's lines; nil when the gateway set value
	value  string   // the value the gateway set (when values is nil)
}

func (h *header) last() string {
	if h.values == nil {
		return h.value
	}
	return h.values[len(h.values)-1]
}

// headerList is an event's headers and multiValueHeaders in one list, sorted
// by name (encoding/json's order of map keys), each name once. The CONNECT
// event carries one in place of the two maps, which it would build for one
// encoding only.
type headerList []header

// maps returns the headers and multiValueHeaders maps.
func (hl headerList) maps() (map[string]string, map[string][]string) {
	single := make(map[string]string, len(hl))
	multi := make(map[string][]string, len(hl))
	for i := range hl {
		h := &hl[i]
		vs := h.values
		if vs == nil {
			vs = []string{h.value}
		}
		single[h.name], multi[h.name] = h.last(), vs
	}
	return single, multi
}

// encodedLen is about the bytes appendSingle and appendMulti write (exactly,
// when nothing needs escaping).
func (hl headerList) encodedLen() int {
	n := 0
	for i := range hl {
		h := &hl[i]
		n += 2*len(h.name) + len(h.last()) + 12
		if h.values == nil {
			n += len(h.value)
		}
		for _, v := range h.values {
			n += len(v) + 3
		}
	}
	return n
}

// appendSingle appends the headers map as JSON, as appendStringMap would.
func (hl headerList) appendSingle(b []byte) []byte {
	b = append(b, '{')
	for i := range hl {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, hl[i].name)
		b = append(b, ':')
		b = jsontext.AppendString(b, hl[i].last())
	}
	return append(b, '}')
}

// appendMulti appends the multiValueHeaders map as JSON, as appendMultiMap
// would.
func (hl headerList) appendMulti(b []byte) []byte {
	b = append(b, '{')
	for i := range hl {
		h := &hl[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, h.name)
		b = append(b, ":["...)
		if h.values == nil {
			b = jsontext.AppendString(b, h.value)
		}
		for j, v := range h.values {
			if j > 0 {
				b = append(b, ',')
			}
			b = jsontext.AppendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// eventHeaders builds the headers of a CONNECT (authorizer=false) or
// authorizer (authorizer=true) event for the client cl. The authorizer
// event keeps Connection, Upgrade and content-length, as AWS's does.
func eventHeaders(r *http.Request, s *session, cl *client, authorizer bool) headerList {
	hl := make(headerList, 0, len(r.Header)+6)
	host := cmp.Or(cl.host, r.Host)
	hl = append(hl, header{name: "Host", value: host})
	for k, vs := range r.Header {
		if k, ok := eventHeaderName(k, cl, authorizer); ok && len(vs) > 0 {
			hl = append(hl, header{name: k, values: vs})
		}
	}
	if authorizer && !slices.ContainsFunc(hl, func(h header) bool { return h.name == "content-length" }) {
		hl = append(hl, header{name: "content-length", value: "0"})
	}
	proto, port := forwardedProto(r, cl, host)
	hl = append(hl,
		header{name: "X-Amzn-Trace-Id", value: traceID(s)},
		header{name: "X-Forwarded-For", value: cl.forwardedFor},
		header{name: "X-Forwarded-Port", value: port},
		header{name: "X-Forwarded-Proto", value: proto})
	// A later header replaces an earlier one of the same name, as in a
	// map: sorted stably, the last of each run of a name stays.
	slices.SortStableFunc(hl, func(a, b header) int { return strings.Compare(a.name, b.name) })
	out := hl[:0]
	for i := range hl {
		if i+1 < len(hl) && hl[i+1].name == hl[i].name {
			continue
		}
		out = append(out, hl[i])
	}
	return out
}

// eventHeaderName is how the client's header k (canonical) is spelt in an
// event; false when the event leaves it out. X-Forwarded-* and the trace
// header are the gateway's, as API Gateway sets them.
func eventHeaderName(k string, cl *client, authorizer bool) (string, bool) {
	switch k {
	case "Connection", "Upgrade", "Content-Length":
		if !authorizer {
			return "", false
		}
	case "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id":
		return "", false
	case "Forwarded", "X-Forwarded-Host", "X-Real-Ip":
		if cl.viaProxy {
			return "", false // the trusted proxy's, not the client's
		}
	}
	if c, ok := headerCase[k]; ok {
		return c, true
	}
	return k, true
}

// forwardedProto is the X-Forwarded-Proto and X-Forwarded-Port of a
// handshake to host from the client cl.
func forwardedProto(r *http.Request, cl *client, host string) (proto, port string) {
	proto = "http"
	if r.TLS != nil {
		proto = "https"
	}
	proto = cmp.Or(cl.proto, proto)
	port = "80"
	if proto == "https" {
		port = "443"
	}
	if _, p, ok := strings.Cut(host, ":"); ok && cl.port == "" {
		port = p
	}
	return proto, cmp.Or(cl.port, port)
}

// traceID is an X-Ray style trace id, Root=1-<8 hex time>-<24 hex>.
func traceID(s *session) string {
	const hexdigits = "0123456789abcdef"
	var b [len("Root=1-") + 8 + 1 + 24]byte
	n := copy(b[:], "Root=1-")
	t := uint32(s.connected().Unix())
	for i := 7; i >= 0; i-- {
		b[n] = hexdigits[(t>>(4*uint(i)))&0xf]
		n++
	}
	b[n] = '-'
	n++
	id := s.connectionID
	for i := 0; i < 12; i++ {
		c := id[i%len(id)]
		b[n], b[n+1] = hexdigits[c>>4], hexdigits[c&0xf]
		n += 2
	}
	return string(b[:])
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
	if len(ev.headers) > 0 {
		field("headers")
		b = ev.headers.appendSingle(b)
		field("multiValueHeaders")
		b = ev.headers.appendMulti(b)
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
