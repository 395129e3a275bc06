package accesslog

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// Static is what every line of one gateway shares.
type Static struct {
	APIID string
	Stage string
}

// value appends one variable's value for r; ok false means the value is
// unavailable, written "-" as API Gateway writes it.
type value func(b []byte, r *gateway.Record, st *Static) (out []byte, ok bool)

// requestTimeLayout is CLF, as $context.requestTime: "20/Jan/2024:11:55:00 +0000".
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

func str(f func(r *gateway.Record, st *Static) string) value {
	return func(b []byte, r *gateway.Record, st *Static) ([]byte, bool) {
		v := f(r, st)
		return append(b, v...), v != ""
	}
}

func num(f func(r *gateway.Record) (int64, bool)) value {
	return func(b []byte, r *gateway.Record, _ *Static) ([]byte, bool) {
		n, ok := f(r)
		if !ok {
			return b, false
		}
		return strconv.AppendInt(b, n, 10), true
	}
}

func millis(d time.Duration) int64 { return d.Milliseconds() }

func unavailable(b []byte, _ *gateway.Record, _ *Static) ([]byte, bool) { return b, false }

// variables are the $context variables API Gateway documents for
// WebSocket access logs (without the "$context." prefix). Those wsgate
// has no counterpart for (WAF, Cognito, API keys, IAM user details,
// X-Ray) are accepted and always "-". $context.authorizer.{property}
// reads the authorizer's context and is handled apart.
var variables = map[string]value{
	"apiId": str(func(_ *gateway.Record, st *Static) string { return st.APIID }),
	"stage": str(func(_ *gateway.Record, st *Static) string { return st.Stage }),

	"authorize.error":   unavailable,
	"authorize.latency": unavailable,
	"authorize.status":  unavailable,

	"authorizer.error": str(func(r *gateway.Record, _ *Static) string {
		if r.AuthorizerStatus == 0 || r.AuthorizerStatus == http.StatusOK {
			return ""
		}
		return r.ErrorMessage
	}),
	"authorizer.integrationLatency":          num(authorizerLatency),
	"authorizer.latency":                     num(authorizerLatency),
	"authorizer.integrationStatus":           num(authorizerStatus),
	"authorizer.status":                      num(authorizerStatus),
	"authorizer.requestId":                   str(func(r *gateway.Record, _ *Static) string { return ifAuthorized(r, r.RequestID) }),
	"authorizer.principalId":                 authorizerProperty("principalId"),
	"authenticate.error":                     unavailable,
	"authenticate.latency":                   unavailable,
	"authenticate.status":                    unavailable,
	"connectedAt":                            num(func(r *gateway.Record) (int64, bool) { return r.ConnectedAt.UnixMilli(), !r.ConnectedAt.IsZero() }),
	"connectionId":                           str(func(r *gateway.Record, _ *Static) string { return r.ConnectionID }),
	"domainName":                             str(func(r *gateway.Record, _ *Static) string { return r.DomainName }),
	"error.message":                          str(func(r *gateway.Record, _ *Static) string { return r.ErrorMessage }),
	"error.messageString":                    str(func(r *gateway.Record, _ *Static) string { return quoted(r.ErrorMessage) }),
	"error.responseType":                     str(responseType),
	"error.validationErrorString":            unavailable,
	"eventType":                              str(func(r *gateway.Record, _ *Static) string { return r.EventType }),
	"extendedRequestId":                      str(func(r *gateway.Record, _ *Static) string { return r.RequestID }),
	"identity.accountId":                     unavailable,
	"identity.apiKey":                        unavailable,
	"identity.apiKeyId":                      unavailable,
	"identity.caller":                        unavailable,
	"identity.cognitoAuthenticationProvider": unavailable,
	"identity.cognitoAuthenticationType":     unavailable,
	"identity.cognitoIdentityId":             unavailable,
	"identity.cognitoIdentityPoolId":         unavailable,
	"identity.principalOrgId":                unavailable,
	"identity.sourceIp":                      str(func(r *gateway.Record, _ *Static) string { return r.SourceIP }),
	"identity.user":                          unavailable,
	"identity.userAgent":                     str(func(r *gateway.Record, _ *Static) string { return r.UserAgent }),
	"identity.userArn":                       unavailable,
	"integration.error":                      str(func(r *gateway.Record, _ *Static) string { return r.IntegrationError }),
	// integration.integrationStatus is the status of the call itself
	// (Lambda's Invoke answered 200), integration.status the statusCode
	// the function returned.
	"integration.integrationStatus": num(func(r *gateway.Record) (int64, bool) {
		return http.StatusOK, r.Integrated && r.IntegrationError == ""
	}),
	"integration.latency":   num(integrationLatency),
	"integration.requestId": str(func(r *gateway.Record, _ *Static) string { return ifIntegrated(r, r.RequestID) }),
	"integration.status":    num(integrationStatus),
	"integrationLatency":    num(integrationLatency),
	"integrationStatus":     num(integrationStatus),
	"messageDirection":      str(func(*gateway.Record, *Static) string { return "IN" }),
	"messageId":             str(func(r *gateway.Record, _ *Static) string { return r.MessageID }),
	"requestId":             str(func(r *gateway.Record, _ *Static) string { return r.RequestID }),
	"requestTime": str(func(r *gateway.Record, _ *Static) string {
		return r.RequestTime.UTC().Format(requestTimeLayout)
	}),
	"requestTimeEpoch": num(func(r *gateway.Record) (int64, bool) { return r.RequestTime.UnixMilli(), true }),
	"routeKey":         str(func(r *gateway.Record, _ *Static) string { return r.RouteKey }),
	"status":           num(func(r *gateway.Record) (int64, bool) { return int64(r.Status), r.Status != 0 }),
	"waf.error":        unavailable,
	"waf.latency":      unavailable,
	"waf.status":       unavailable,
	"webaclArn":        unavailable,
	"wafResponseCode":  unavailable,
	"xrayTraceId":      unavailable,
}

func authorizerLatency(r *gateway.Record) (int64, bool) {
	return millis(r.AuthorizerLatency), r.AuthorizerStatus != 0
}

func authorizerStatus(r *gateway.Record) (int64, bool) {
	return int64(r.AuthorizerStatus), r.AuthorizerStatus != 0
}

func integrationLatency(r *gateway.Record) (int64, bool) {
	return millis(r.IntegrationLatency), r.Integrated
}

func integrationStatus(r *gateway.Record) (int64, bool) {
	return int64(r.IntegrationStatus), r.Integrated && r.IntegrationError == ""
}

func ifAuthorized(r *gateway.Record, v string) string {
	if r.AuthorizerStatus == 0 {
		return ""
	}
	return v
}

func ifIntegrated(r *gateway.Record, v string) string {
	if !r.Integrated {
		return ""
	}
	return v
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return strconv.Quote(s)
}

// responseType is API Gateway's gateway response type for an error.
func responseType(r *gateway.Record, _ *Static) string {
	switch {
	case r.Status < 400:
		return ""
	case r.Outcome == gateway.OutcomeThrottled:
		return "THROTTLED"
	case r.Status == http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case r.Outcome == gateway.OutcomeUnauthorized:
		return "ACCESS_DENIED"
	case r.Status == http.StatusGatewayTimeout:
		return "INTEGRATION_TIMEOUT"
	case r.Outcome == gateway.OutcomeExecutionError:
		return "INTEGRATION_FAILURE"
	case r.Status < 500:
		return "DEFAULT_4XX"
	}
	return "DEFAULT_5XX"
}

// authorizerProperty reads one key of the authorizer's context, as
// $context.authorizer.{property}: strings as they are, other JSON values
// in their JSON form.
func authorizerProperty(key string) value {
	return func(b []byte, r *gateway.Record, _ *Static) ([]byte, bool) {
		if len(r.Authorizer) == 0 {
			return b, false
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(r.Authorizer, &m) != nil {
			return b, false
		}
		raw, ok := m[key]
		if !ok || string(raw) == "null" {
			return b, false
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return append(b, s...), s != ""
		}
		return append(b, raw...), true
	}
}

// Variables lists the variable names a format may use (with the
// "$context." prefix), sorted, $context.authorizer.{property} aside.
func Variables() []string {
	out := make([]string, 0, len(variables))
	for k := range variables {
		out = append(out, "$context."+k)
	}
	sortStrings(out)
	return out
}

// part is a piece of a parsed format: literal text or a variable.
type part struct {
	text string
	v    value
}

// Format is a parsed access log format.
type Format struct {
	parts []part
	json  bool
}

const prefix = "$context."

// ParseFormat parses an access log format: text with $context variables
// (API Gateway's names). A format that starts with '{' is JSON: values
// are escaped as JSON string contents. In a text format, control
// characters are escaped the same way, so a record is always one line.
// An unknown variable is an error.
func ParseFormat(s string) (*Format, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errNoFormat
	}
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("a format is one line: it may not contain a line break")
	}
	f := &Format{json: strings.HasPrefix(strings.TrimSpace(s), "{")}
	var unknown []string
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			break
		}
		f.parts = append(f.parts, part{text: s[:i]})
		s = s[i+len(prefix):]
		n := 0
		for n < len(s) && isNameByte(s[n]) {
			n++
		}
		for n > 0 && s[n-1] == '.' { // a sentence's full stop is not part of the name
			n--
		}
		name := s[:n]
		s = s[n:]
		v, ok := variables[name]
		if !ok {
			if key, isProp := strings.CutPrefix(name, "authorizer."); isProp && key != "" && !strings.Contains(key, ".") {
				v, ok = authorizerProperty(key), true
			}
		}
		if !ok {
			unknown = append(unknown, prefix+name)
			continue
		}
		f.parts = append(f.parts, part{v: v})
	}
	f.parts = append(f.parts, part{text: s})
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown variable %s (see docs/configuration.md for the list)", strings.Join(unknown, ", "))
	}
	return f, nil
}

func isNameByte(c byte) bool {
	return c == '.' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// Append appends r's line (without the newline) to b.
func (f *Format) Append(b []byte, r *gateway.Record, st *Static) []byte {
	for _, p := range f.parts {
		if p.v == nil {
			b = append(b, p.text...)
			continue
		}
		start := len(b)
		var ok bool
		b, ok = p.v(b, r, st)
		if !ok {
			b = append(b[:start], '-')
			continue
		}
		b = escape(b, start, f.json)
	}
	return b
}

// escape rewrites b[start:] so that it cannot end the line or, in a JSON
// format, the string it sits in.
func escape(b []byte, start int, inJSON bool) []byte {
	clean := true
	for _, c := range b[start:] {
		if c < 0x20 || c == 0x7f || inJSON && (c == '"' || c == '\\') {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	v := string(b[start:])
	b = b[:start]
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c < 0x20 || c == 0x7f:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		case inJSON && (c == '"' || c == '\\'):
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
}
