// Package apigw gives VTL templates the variables API Gateway gives its
// mapping templates: $input, $util, $context and $stageVariables, with
// AWS's behaviour (documented quirks in docs/compatibility.md and
// docs/vtl.md).
//
// A Request holds one request's data; Request.Vars makes the variables and
// Render renders a template with them. Neither keeps state between calls,
// so both are safe to use from many goroutines on different Requests.
package apigw

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/wsgate/wsgate/vtl"
)

// Request is what one mapping template sees.
type Request struct {
	// Body is the message (or integration response) body: $input.body.
	Body string
	// Path, QueryString and Header are $input.params(): for a WebSocket
	// API, the $connect request's query string and headers.
	Path, QueryString, Header map[string]string
	// StageVariables are $stageVariables.
	StageVariables map[string]string
	// Context is $context.
	Context Context
}

// Context is $context for a WebSocket API, as API Gateway's WebSocket
// mapping template reference lists it. Empty strings and zero numbers are
// absent (null) in the template.
type Context struct {
	APIID             string
	ConnectionID      string
	ConnectedAt       int64 // epoch milliseconds
	DomainName        string
	EventType         string // CONNECT, MESSAGE or DISCONNECT
	ExtendedRequestID string
	MessageDirection  string
	MessageID         string // MESSAGE only
	RequestID         string
	RequestTime       string // CLF: 02/Jan/2006:15:04:05 -0700
	RequestTimeEpoch  int64  // epoch milliseconds
	RouteKey          string
	Stage             string
	Status            string // the response status, in response templates
	// Authorizer is the Lambda authorizer's principalId and context. Its
	// values are stringified, as AWS does in templates (1 → "1", true →
	// "true").
	Authorizer map[string]any
	Identity   Identity
	// ErrorMessage and ErrorValidation are $context.error.message and
	// $context.error.validationErrorString.
	ErrorMessage, ErrorValidation string
}

// Identity is $context.identity.
type Identity struct {
	AccountID, APIKey, APIKeyID, Caller, CognitoAuthenticationProvider,
	CognitoAuthenticationType, CognitoIdentityID, CognitoIdentityPoolID,
	PrincipalOrgID, SourceIP, User, UserAgent, UserArn string
}

// Vars returns the template variables for r.
func (r *Request) Vars() map[string]any {
	return map[string]any{
		"input":          &Input{req: r},
		"util":           Util{},
		"context":        &contextVar{c: &r.Context},
		"stageVariables": stringMap(r.StageVariables),
	}
}

// Render renders t with r's variables and API Gateway's null handling
// (a null reference renders as nothing).
func Render(ctx context.Context, t *vtl.Template, r *Request, lim vtl.Limits) ([]byte, error) {
	return t.Render(ctx, r.Vars(), vtl.Options{Limits: lim, QuietNull: true})
}

func stringMap(m map[string]string) *vtl.Map {
	out := vtl.NewMap(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out.Put(k, m[k])
	}
	return out
}

func putString(m *vtl.Map, k, v string) {
	if v != "" {
		m.Put(k, v)
	}
}

// contextVar is $context. It answers each variable when it is asked for,
// so a template that reads two variables does not build all of them.
type contextVar struct {
	c                 *Context
	auth, id, errVars *vtl.Map
}

var _ vtl.Object = (*contextVar)(nil)

func str(s string) (any, bool) { return s, s != "" }

func num(n int64) (any, bool) { return n, n != 0 }

// Property answers $context.name.
func (v *contextVar) Property(name string) (any, bool) {
	c := v.c
	switch name {
	case "apiId":
		return str(c.APIID)
	case "connectionId":
		return str(c.ConnectionID)
	case "connectedAt":
		return num(c.ConnectedAt)
	case "domainName":
		return str(c.DomainName)
	case "eventType":
		return str(c.EventType)
	case "extendedRequestId":
		return str(c.ExtendedRequestID)
	case "messageDirection":
		return str(c.MessageDirection)
	case "messageId":
		return str(c.MessageID)
	case "requestId":
		return str(c.RequestID)
	case "requestTime":
		return str(c.RequestTime)
	case "requestTimeEpoch":
		return num(c.RequestTimeEpoch)
	case "routeKey":
		return str(c.RouteKey)
	case "stage":
		return str(c.Stage)
	case "status":
		return str(c.Status)
	case "authorizer":
		if v.auth == nil {
			v.auth = vtl.NewMap(len(c.Authorizer))
			for _, k := range slices.Sorted(maps.Keys(c.Authorizer)) {
				v.auth.Put(k, stringify(c.Authorizer[k]))
			}
		}
		return v.auth, true
	case "identity":
		if v.id == nil {
			v.id = vtl.NewMap(4)
			i := &c.Identity
			for _, kv := range [...][2]string{
				{"accountId", i.AccountID}, {"apiKey", i.APIKey}, {"apiKeyId", i.APIKeyID}, {"caller", i.Caller},
				{"cognitoAuthenticationProvider", i.CognitoAuthenticationProvider},
				{"cognitoAuthenticationType", i.CognitoAuthenticationType},
				{"cognitoIdentityId", i.CognitoIdentityID}, {"cognitoIdentityPoolId", i.CognitoIdentityPoolID},
				{"principalOrgId", i.PrincipalOrgID}, {"sourceIp", i.SourceIP}, {"user", i.User},
				{"userAgent", i.UserAgent}, {"userArn", i.UserArn},
			} {
				putString(v.id, kv[0], kv[1])
			}
		}
		return v.id, true
	case "error":
		if v.errVars == nil {
			v.errVars = vtl.NewMap(3)
			putString(v.errVars, "message", c.ErrorMessage)
			if c.ErrorMessage != "" {
				v.errVars.Put("messageString", vtl.JSON(c.ErrorMessage))
			}
			putString(v.errVars, "validationErrorString", c.ErrorValidation)
		}
		return v.errVars, true
	}
	return nil, false
}

// Call answers $context.get('name') and the getters Velocity tries.
func (v *contextVar) Call(name string, args []any) (any, bool, error) {
	if name == "get" && len(args) == 1 {
		if k, ok := args[0].(string); ok {
			p, _ := v.Property(k)
			return p, true, nil
		}
	}
	return nil, false, nil
}

// stringify renders an authorizer context value as AWS does in templates.
func stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return vtl.JSON(vtl.Value(v))
}
