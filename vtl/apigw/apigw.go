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
		"context":        r.Context.value(),
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
	for _, k := range sortedKeys(m) {
		out.Put(k, m[k])
	}
	return out
}

func putString(m *vtl.Map, k, v string) {
	if v != "" {
		m.Put(k, v)
	}
}

func (c *Context) value() *vtl.Map {
	m := vtl.NewMap(20)
	putString(m, "apiId", c.APIID)
	putString(m, "connectionId", c.ConnectionID)
	if c.ConnectedAt != 0 {
		m.Put("connectedAt", c.ConnectedAt)
	}
	putString(m, "domainName", c.DomainName)
	putString(m, "eventType", c.EventType)
	putString(m, "extendedRequestId", c.ExtendedRequestID)
	putString(m, "messageDirection", c.MessageDirection)
	putString(m, "messageId", c.MessageID)
	putString(m, "requestId", c.RequestID)
	putString(m, "requestTime", c.RequestTime)
	if c.RequestTimeEpoch != 0 {
		m.Put("requestTimeEpoch", c.RequestTimeEpoch)
	}
	putString(m, "routeKey", c.RouteKey)
	putString(m, "stage", c.Stage)
	putString(m, "status", c.Status)

	auth := vtl.NewMap(len(c.Authorizer))
	for _, k := range sortedKeys(c.Authorizer) {
		auth.Put(k, stringify(c.Authorizer[k]))
	}
	m.Put("authorizer", auth)

	id := vtl.NewMap(13)
	i := &c.Identity
	for _, kv := range [...][2]string{
		{"accountId", i.AccountID}, {"apiKey", i.APIKey}, {"apiKeyId", i.APIKeyID}, {"caller", i.Caller},
		{"cognitoAuthenticationProvider", i.CognitoAuthenticationProvider},
		{"cognitoAuthenticationType", i.CognitoAuthenticationType},
		{"cognitoIdentityId", i.CognitoIdentityID}, {"cognitoIdentityPoolId", i.CognitoIdentityPoolID},
		{"principalOrgId", i.PrincipalOrgID}, {"sourceIp", i.SourceIP}, {"user", i.User},
		{"userAgent", i.UserAgent}, {"userArn", i.UserArn},
	} {
		putString(id, kv[0], kv[1])
	}
	m.Put("identity", id)

	e := vtl.NewMap(3)
	putString(e, "message", c.ErrorMessage)
	if c.ErrorMessage != "" {
		e.Put("messageString", vtl.JSON(c.ErrorMessage))
	}
	putString(e, "validationErrorString", c.ErrorValidation)
	m.Put("error", e)
	return m
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
