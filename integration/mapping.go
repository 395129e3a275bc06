package integration

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/vtl"
	"github.com/wsgate/wsgate/vtl/apigw"
)

// IntegrationResponse is one response of a non-proxy integration
// (AWS::ApiGatewayV2::IntegrationResponse), filed in
// Config.IntegrationResponses under its IntegrationResponseKey: "$default",
// a status code such as "403", or a pattern between slashes ("/4\d\d/").
type IntegrationResponse struct {
	// ResponseTemplates are VTL templates by template key; the answer's
	// body is the one TemplateSelectionExpression picks.
	ResponseTemplates map[string]string `json:"responseTemplates,omitempty"`
	// TemplateSelectionExpression picks a response template:
	// ${integration.response.statuscode}, $request.body.PATH or static
	// text. Default "\$default"; a key with no template falls back to the
	// "$default" template.
	TemplateSelectionExpression string `json:"templateSelectionExpression,omitempty"`
	// ContentHandlingStrategy converts the body sent to the client:
	// CONVERT_TO_BINARY base64-decodes it (a binary frame when it is not
	// UTF-8), CONVERT_TO_TEXT base64-encodes it. Default: as it is.
	ContentHandlingStrategy string `json:"contentHandlingStrategy,omitempty"`
}

// Content handling strategies and passthrough behaviours, as AWS spells
// them.
const (
	convertToBinary   = "CONVERT_TO_BINARY"
	convertToText     = "CONVERT_TO_TEXT"
	whenNoMatch       = "WHEN_NO_MATCH"
	whenNoTemplates   = "WHEN_NO_TEMPLATES"
	passthroughNever  = "NEVER"
	unsupportedMedia  = "Unsupported Media Type"
	statusUnsupported = http.StatusUnsupportedMediaType
)

// GatewayError is an answer API Gateway gives in place of the backend's,
// such as 415 Unsupported Media Type for a message no request template
// takes: the gateway sends the client Message (a frame, or the status on
// $connect).
type GatewayError struct {
	Status  int
	Message string
}

func (e *GatewayError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// mapping is a non-proxy integration's templates and parameters, parsed
// once.
type mapping struct {
	selectRequest  *apigw.Selection
	selectResponse *apigw.Selection
	request        map[string]*vtl.Template
	responses      []*response // in key order
	params         []param     // requestParameters, in key order
	passthrough    string      // passthroughBehavior
	content        string      // the request's contentHandlingStrategy
}

// param is one requestParameters entry: where the value goes
// (integration.request.KIND.NAME) and the template that computes it.
type param struct {
	kind    string // "header", "querystring" or "path"
	name    string
	value   *vtl.Template
	literal string // when value is nil
}

type response struct {
	key       string
	re        *regexp.Regexp // for /pattern/ keys
	selection *apigw.Selection
	templates map[string]*vtl.Template
	content   string // contentHandlingStrategy
}

func hasMapping(c *Config) bool {
	return len(c.RequestTemplates) > 0 || len(c.IntegrationResponses) > 0 || c.TemplateSelectionExpression != "" ||
		len(c.RequestParameters) > 0 || c.IntegrationResponseSelectionExpression != "" || c.PassthroughBehavior != "" ||
		c.ContentHandlingStrategy != ""
}

// validateMapping files the problems of the mapping fields in e.
func validateMapping(c *Config, e *confcheck.Errors) {
	if !hasMapping(c) {
		return
	}
	switch c.Type {
	case "mock":
		if c.Response != nil {
			e.Addf("response", "a mock integration has either a response or mapping templates, not both")
		}
		if len(c.RequestParameters) > 0 {
			e.Addf("requestParameters", "a mock integration sends no request: no parameters")
		}
		if c.ContentHandlingStrategy != "" {
			e.Addf("contentHandlingStrategy", "a mock integration sends no request: nothing to convert")
		}
	case "aws", "http":
	case "http_proxy":
		if len(c.RequestTemplates) > 0 || c.TemplateSelectionExpression != "" {
			e.Addf("requestTemplates", "an http_proxy integration forwards the message as it is: no templates (use http)")
		}
		if len(c.IntegrationResponses) > 0 || c.IntegrationResponseSelectionExpression != "" {
			e.Addf("integrationResponses", "an http_proxy integration answers with the backend's body: no integration responses (use http)")
		}
		if c.PassthroughBehavior != "" {
			e.Addf("passthroughBehavior", "an http_proxy integration forwards every message: no passthroughBehavior (use http)")
		}
	default:
		e.Addf("requestTemplates", "mapping templates and requestParameters are for mock, aws, http and http_proxy integrations")
		return
	}
	switch c.PassthroughBehavior {
	case "", whenNoMatch, whenNoTemplates, passthroughNever:
	default:
		e.Addf("passthroughBehavior", "%q: want WHEN_NO_MATCH, WHEN_NO_TEMPLATES or NEVER", c.PassthroughBehavior)
	}
	validContent("contentHandlingStrategy", c.ContentHandlingStrategy, e)
	for k, ir := range c.IntegrationResponses {
		validContent(confcheck.Field(confcheck.Key("integrationResponses", k), "contentHandlingStrategy"), ir.ContentHandlingStrategy, e)
	}
	if _, err := buildMapping(c); err != nil {
		e.In("", err)
	}
}

func validContent(path, v string, e *confcheck.Errors) {
	if v != "" && v != convertToBinary && v != convertToText {
		e.Addf(path, "%q: want CONVERT_TO_BINARY or CONVERT_TO_TEXT", v)
	}
}

// paramSource translates a requestParameters value (route.request.header.X,
// route.request.querystring.X, route.request.body.PATH, context.X,
// stageVariables.X or a 'literal') into the template computing it.
func paramSource(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "route.request.header."):
		return "$input.params('" + quoteVTL(strings.TrimPrefix(v, "route.request.header.")) + "')", nil
	case strings.HasPrefix(v, "route.request.querystring."):
		return "$input.params().querystring.get('" + quoteVTL(strings.TrimPrefix(v, "route.request.querystring.")) + "')", nil
	case v == "route.request.body":
		return "$input.body", nil
	case strings.HasPrefix(v, "route.request.body."):
		return "$input.json('$." + quoteVTL(strings.TrimPrefix(v, "route.request.body.")) + "')", nil
	case strings.HasPrefix(v, "context.") && isPath(v), strings.HasPrefix(v, "stageVariables.") && isPath(v):
		return "${" + v + "}", nil
	}
	return "", fmt.Errorf("%q: want route.request.header.NAME, route.request.querystring.NAME, route.request.body[.PATH], context.NAME, stageVariables.NAME or a 'literal'", v)
}

func quoteVTL(s string) string { return strings.ReplaceAll(s, "'", "''") }

// isPath reports whether s is a dotted name a template can reference.
func isPath(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
				return false
			}
		}
	}
	return true
}

// parseParams compiles requestParameters; each key is
// integration.request.{header,querystring,path}.NAME.
func parseParams(src map[string]string, e *confcheck.Errors) []param {
	var out []param
	for _, k := range slices.Sorted(maps.Keys(src)) {
		path := confcheck.Key("requestParameters", k)
		rest, ok := strings.CutPrefix(k, "integration.request.")
		kind, name, _ := strings.Cut(rest, ".")
		if !ok || name == "" || kind != "header" && kind != "querystring" && kind != "path" {
			e.Addf(path, "want integration.request.header.NAME, integration.request.querystring.NAME or integration.request.path.NAME")
			continue
		}
		v := src[k]
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			out = append(out, param{kind: kind, name: name, literal: v[1 : len(v)-1]})
			continue
		}
		text, err := paramSource(v)
		if err != nil {
			e.Addf(path, "%v", err)
			continue
		}
		t, err := vtl.Parse(text)
		if err != nil {
			e.Addf(path, "%v", err)
			continue
		}
		out = append(out, param{kind: kind, name: name, value: t})
	}
	return out
}

func parseSelection(path, s string, e *confcheck.Errors) *apigw.Selection {
	if s == "" {
		s = `\$default`
	}
	sel, err := apigw.ParseSelection(s)
	if err != nil {
		e.Addf(path, "%v", err)
	}
	return sel
}

func parseTemplates(path string, src map[string]string, e *confcheck.Errors) map[string]*vtl.Template {
	out := make(map[string]*vtl.Template, len(src))
	for k, s := range src {
		t, err := vtl.Parse(s)
		if err != nil {
			e.Addf(confcheck.Key(path, k), "%v", err)
			continue
		}
		out[k] = t
	}
	return out
}

func buildMapping(c *Config) (*mapping, error) {
	var e confcheck.Errors
	m := &mapping{
		selectRequest: parseSelection("templateSelectionExpression", c.TemplateSelectionExpression, &e),
		selectResponse: parseSelection("integrationResponseSelectionExpression",
			cmp.Or(c.IntegrationResponseSelectionExpression, "${integration.response.statuscode}"), &e),
		request:     parseTemplates("requestTemplates", c.RequestTemplates, &e),
		params:      parseParams(c.RequestParameters, &e),
		passthrough: c.PassthroughBehavior,
		content:     c.ContentHandlingStrategy,
	}
	for _, k := range slices.Sorted(maps.Keys(c.IntegrationResponses)) {
		ir := c.IntegrationResponses[k]
		path := confcheck.Key("integrationResponses", k)
		r := &response{
			key:       k,
			selection: parseSelection(path+".templateSelectionExpression", ir.TemplateSelectionExpression, &e),
			templates: parseTemplates(path+".responseTemplates", ir.ResponseTemplates, &e),
			content:   ir.ContentHandlingStrategy,
		}
		if len(k) > 2 && k[0] == '/' && k[len(k)-1] == '/' {
			re, err := regexp.Compile(`^(?:` + k[1:len(k)-1] + `)$`)
			if err != nil {
				e.Addf(path, "bad pattern: %v", err)
			}
			r.re = re
		}
		m.responses = append(m.responses, r)
	}
	return m, e.Err()
}

// wsEvent is what a mapping template needs of the Lambda proxy event the
// gateway built.
type wsEvent struct {
	Headers         map[string]string `json:"headers"`
	Query           map[string]string `json:"queryStringParameters"`
	StageVariables  map[string]string `json:"stageVariables"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	RequestContext  struct {
		APIID             string         `json:"apiId"`
		ConnectionID      string         `json:"connectionId"`
		ConnectedAt       int64          `json:"connectedAt"`
		DomainName        string         `json:"domainName"`
		EventType         string         `json:"eventType"`
		ExtendedRequestID string         `json:"extendedRequestId"`
		MessageDirection  string         `json:"messageDirection"`
		MessageID         string         `json:"messageId"`
		RequestID         string         `json:"requestId"`
		RequestTime       string         `json:"requestTime"`
		RequestTimeEpoch  int64          `json:"requestTimeEpoch"`
		RouteKey          string         `json:"routeKey"`
		Stage             string         `json:"stage"`
		Authorizer        map[string]any `json:"authorizer"`
		Identity          struct {
			SourceIP  string `json:"sourceIp"`
			UserAgent string `json:"userAgent"`
			AccountID string `json:"accountId"`
			Caller    string `json:"caller"`
			User      string `json:"user"`
			UserArn   string `json:"userArn"`
			APIKey    string `json:"apiKey"`
			APIKeyID  string `json:"apiKeyId"`
		} `json:"identity"`
	} `json:"requestContext"`
}

// requestOf makes the template variables' request from the event. b64 is
// the body as the event has it when it is base64 (a binary message), else
// "".
func requestOf(payload []byte) (req *apigw.Request, b64 string, err error) {
	var ev wsEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, "", fmt.Errorf("mapping: reading the event: %w", err)
	}
	body := ev.Body
	if ev.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(body); err == nil {
			body, b64 = string(b), ev.Body
		}
	}
	rc := &ev.RequestContext
	auth := rc.Authorizer
	if auth != nil {
		delete(auth, "integrationLatency") // in the event, not among the template variables
	}
	return &apigw.Request{
		Body:           body,
		QueryString:    ev.Query,
		Header:         ev.Headers,
		StageVariables: ev.StageVariables,
		Context: apigw.Context{
			APIID: rc.APIID, ConnectionID: rc.ConnectionID, ConnectedAt: rc.ConnectedAt,
			DomainName: rc.DomainName, EventType: rc.EventType, ExtendedRequestID: rc.ExtendedRequestID,
			MessageDirection: rc.MessageDirection, MessageID: rc.MessageID, RequestID: rc.RequestID,
			RequestTime: rc.RequestTime, RequestTimeEpoch: rc.RequestTimeEpoch, RouteKey: rc.RouteKey,
			Stage: rc.Stage, Authorizer: auth,
			Identity: apigw.Identity{
				SourceIP: rc.Identity.SourceIP, UserAgent: rc.Identity.UserAgent, AccountID: rc.Identity.AccountID,
				Caller: rc.Identity.Caller, User: rc.Identity.User, UserArn: rc.Identity.UserArn,
				APIKey: rc.Identity.APIKey, APIKeyID: rc.Identity.APIKeyID,
			},
		},
	}, b64, nil
}

// errNoStatus is AWS's configuration error for a MOCK whose request
// template does not give an integer statusCode; the client gets
// "Internal server error".
var errNoStatus = errors.New("mock: unable to parse statusCode: it should be an integer that is defined in the request template")

// mock runs a MOCK integration as API Gateway does: the request template
// (picked by templateSelectionExpression, else "$default"; without one the
// message passes through) must render JSON with an integer statusCode; the
// integration response whose key matches that status renders the answer's
// body. The result is a proxy response for the gateway.
func (m *mapping) mock(ctx context.Context, payload []byte) ([]byte, error) {
	ir, err := m.build(ctx, payload)
	if err != nil {
		return nil, err
	}
	var doc struct {
		StatusCode json.RawMessage `json:"statusCode"`
	}
	if json.Unmarshal(ir.body, &doc) != nil || doc.StatusCode == nil {
		return nil, errNoStatus
	}
	status, err := strconv.Atoi(string(doc.StatusCode))
	if err != nil {
		return nil, errNoStatus
	}
	// A mock has no response body: $input is the request's parameters
	// with an empty body.
	return m.answer(ctx, ir.req, &apigw.Result{Status: strconv.Itoa(status)}, false)
}

// integrationRequest is what the templates and parameters made of one
// event: the body, headers, query and path parameters to send.
type integrationRequest struct {
	req    *apigw.Request // the template variables, for the response
	body   []byte
	header http.Header
	query  url.Values
	path   map[string]string
}

// build renders the request template (picked by
// templateSelectionExpression, else "$default"; without one the message
// passes through) and the requestParameters for one event.
func (m *mapping) build(ctx context.Context, payload []byte) (*integrationRequest, error) {
	req, b64, err := requestOf(payload)
	if err != nil {
		return nil, err
	}
	ir := &integrationRequest{req: req, body: []byte(req.Body), header: http.Header{}, query: url.Values{}}
	if b64 != "" && m.content == convertToText {
		ir.body = []byte(b64)
	}
	t := pick(m.request, m.selectRequest.Eval(req, ""))
	switch {
	case t != nil:
		if ir.body, err = apigw.Render(ctx, t, req, vtl.Limits{}); err != nil {
			return nil, fmt.Errorf("request template: %w", err)
		}
	case m.passthrough == passthroughNever, m.passthrough == whenNoTemplates && len(m.request) > 0:
		return nil, &GatewayError{Status: statusUnsupported, Message: unsupportedMedia}
	}
	if m.content == convertToBinary {
		b, err := base64.StdEncoding.DecodeString(string(ir.body))
		if err != nil {
			return nil, fmt.Errorf("contentHandlingStrategy CONVERT_TO_BINARY: the body is not base64: %w", err)
		}
		ir.body = b
	}
	for _, p := range m.params {
		v := p.literal
		if p.value != nil {
			b, err := apigw.Render(ctx, p.value, req, vtl.Limits{})
			if err != nil {
				return nil, fmt.Errorf("requestParameters integration.request.%s.%s: %w", p.kind, p.name, err)
			}
			v = string(b)
		}
		switch p.kind {
		case "header":
			ir.header.Set(p.name, v)
		case "querystring":
			ir.query.Set(p.name, v)
		default: // "path"
			if ir.path == nil {
				ir.path = map[string]string{}
			}
			ir.path[p.name] = v
		}
	}
	return ir, nil
}

// answer is the proxy response for the gateway from a backend's answer
// res. proxy (http_proxy) passes the body through. Otherwise the
// integration response integrationResponseSelectionExpression picks
// decides, as on AWS: its template renders the body (with $input.body the
// backend's body and $context.status the status), without one the
// backend's body passes through, its contentHandlingStrategy converts the
// body, and with no matching integration response the client gets
// nothing.
func (m *mapping) answer(ctx context.Context, req *apigw.Request, res *apigw.Result, proxy bool) ([]byte, error) {
	status, _ := strconv.Atoi(res.Status)
	answer := map[string]any{"statusCode": status}
	if proxy {
		if res.Body != "" {
			answer["body"] = res.Body
		}
		return json.Marshal(answer)
	}
	r := m.selected(req, res)
	if r == nil {
		return json.Marshal(answer)
	}
	body := res.Body
	resp := *req
	resp.Body = res.Body
	resp.Context.Status = res.Status
	if t := pick(r.templates, r.selection.EvalResult(req, res)); t != nil {
		out, err := apigw.Render(ctx, t, &resp, vtl.Limits{})
		if err != nil {
			return nil, fmt.Errorf("response template: %w", err)
		}
		body = string(out)
	}
	switch r.content {
	case convertToBinary:
		if _, err := base64.StdEncoding.DecodeString(body); err != nil {
			return nil, fmt.Errorf("integration response %s: contentHandlingStrategy CONVERT_TO_BINARY: the body is not base64: %w", r.key, err)
		}
		answer["isBase64Encoded"] = true
	case convertToText:
		body = base64.StdEncoding.EncodeToString([]byte(body))
	}
	if body != "" {
		answer["body"] = body
	}
	return json.Marshal(answer)
}

// selected is the integration response for a backend's answer: the key
// integrationResponseSelectionExpression computes picks it.
func (m *mapping) selected(req *apigw.Request, res *apigw.Result) *response {
	return m.response(m.selectResponse.EvalResult(req, res))
}

// pick is the template at key, else the "$default" one, else nil.
func pick(templates map[string]*vtl.Template, key string) *vtl.Template {
	if t, ok := templates[key]; ok {
		return t
	}
	return templates["$default"]
}

// response is the integration response for a selection key (a status,
// by default): the one keyed by the key itself, else the first /pattern/
// (in key order) it matches, else $default.
func (m *mapping) response(status string) *response {
	var pattern, def *response
	for _, r := range m.responses {
		switch {
		case r.key == status:
			return r
		case pattern == nil && r.re != nil && r.re.MatchString(status):
			pattern = r
		case r.key == "$default":
			def = r
		}
	}
	if pattern != nil {
		return pattern
	}
	return def
}
