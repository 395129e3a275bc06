package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/wsgate/wsgate/sigv4"
	"github.com/wsgate/wsgate/vtl/apigw"
)

// awsIntegration is API Gateway's AWS integration type: a service action
// built from mapping templates and requestParameters, signed with SigV4 and
// sent to the service's endpoint (AWS, LocalStack or moto_server).
type awsIntegration struct {
	target  serviceTarget
	method  string
	mapping *mapping
	creds   aws.CredentialsProvider
	client  *http.Client
	timeout time.Duration
}

var _ Integration = (*awsIntegration)(nil)

// service is how API Gateway talks to one AWS service.
type service struct {
	signingName string
	hostPrefix  string // endpoint host: {hostPrefix}.{region}.amazonaws.com
	envName     string // AWS_ENDPOINT_URL_{envName}: the SDKs' service id
	// protocol of the action form: "query" (Action=... in the query
	// string, the parameters form-encoded), "json1.0" or "json1.1" (the
	// body is the template's JSON, X-Amz-Target names the action). Empty:
	// the service has only the path form.
	protocol     string
	targetPrefix string // X-Amz-Target: {targetPrefix}.{Action}
	version      string // query protocol's Version
}

// services are the AWS services whose action form wsgate can build. Any
// service can be called with the path form.
var services = map[string]service{
	"sqs":      {signingName: "sqs", hostPrefix: "sqs", envName: "SQS", protocol: "query", version: "2012-11-05"},
	"sns":      {signingName: "sns", hostPrefix: "sns", envName: "SNS", protocol: "query", version: "2010-03-31"},
	"dynamodb": {signingName: "dynamodb", hostPrefix: "dynamodb", envName: "DYNAMODB", protocol: "json1.0", targetPrefix: "DynamoDB_20120810"},
	"states":   {signingName: "states", hostPrefix: "states", envName: "SFN", protocol: "json1.0", targetPrefix: "AWSStepFunctions"},
	"kinesis":  {signingName: "kinesis", hostPrefix: "kinesis", envName: "KINESIS", protocol: "json1.1", targetPrefix: "Kinesis_20131202"},
	"events":   {signingName: "events", hostPrefix: "events", envName: "EVENTBRIDGE", protocol: "json1.1", targetPrefix: "AWSEvents"},
	"lambda":   {signingName: "lambda", hostPrefix: "lambda", envName: "LAMBDA"},
}

// serviceTarget is a parsed service integration URI.
type serviceTarget struct {
	region  string
	name    string // the service as the URI names it
	svc     service
	action  string // action form
	path    string // path form, with {name} placeholders
	syncSFN bool   // StartSyncExecution: the sync-states endpoint
}

// parseServiceURI parses arn:aws:apigateway:{region}:{service}:action/{Action}
// or :path/{path}. region stands in for an empty region in the ARN.
func parseServiceURI(uri, region string) (serviceTarget, error) {
	var t serviceTarget
	parts := strings.SplitN(uri, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "apigateway" || parts[4] == "" {
		return t, fmt.Errorf("%q: want arn:aws:apigateway:{region}:{service}:action/{Action} or :path/{path}", uri)
	}
	t.region, t.name = parts[3], parts[4]
	if t.region == "" {
		t.region = region
	}
	// {subdomain}.{service}: the subdomain is the host prefix.
	sub, name, hasSub := strings.Cut(t.name, ".")
	if !hasSub {
		name = sub
	}
	svc, known := services[name]
	if !known {
		svc = service{signingName: name, hostPrefix: name, envName: strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	if hasSub {
		svc.hostPrefix = sub + "." + svc.hostPrefix
	}
	t.svc = svc
	kind, rest, _ := strings.Cut(parts[5], "/")
	switch kind {
	case "action":
		if rest == "" || strings.ContainsAny(rest, "/?&=") {
			return t, fmt.Errorf("%q: the action must be a name such as SendMessage", uri)
		}
		if !known || svc.protocol == "" {
			return t, fmt.Errorf("%q: wsgate cannot build the action form for service %q (use the path form, or one of sqs, sns, dynamodb, states, kinesis, events)", uri, name)
		}
		t.action = rest
		t.syncSFN = name == "states" && rest == "StartSyncExecution"
	case "path":
		if rest == "" {
			return t, fmt.Errorf("%q: the path is empty", uri)
		}
		t.path = "/" + rest
	default:
		return t, fmt.Errorf("%q: want action/{Action} or path/{path} after the service", uri)
	}
	return t, nil
}

// endpoint is the service's base URL: AWS_ENDPOINT_URL_{SERVICE}, else
// AWS_ENDPOINT_URL, else the public AWS endpoint of the region.
func (t *serviceTarget) endpoint() string {
	if u := os.Getenv("AWS_ENDPOINT_URL_" + t.svc.envName); u != "" {
		return strings.TrimSuffix(u, "/")
	}
	if u := os.Getenv("AWS_ENDPOINT_URL"); u != "" {
		return strings.TrimSuffix(u, "/")
	}
	host := t.svc.hostPrefix
	if t.syncSFN {
		host = "sync-" + host
	}
	suffix := ".amazonaws.com"
	if strings.HasPrefix(t.region, "cn-") {
		suffix = ".amazonaws.com.cn"
	}
	return "https://" + host + "." + t.region + suffix
}

func newAWS(cfg Config, env Env) (*awsIntegration, error) {
	region := cfg.Region
	if region == "" {
		region = env.Region
	}
	target, err := parseServiceURI(cfg.URI, region)
	if err != nil {
		return nil, err
	}
	if target.region == "" {
		return nil, errors.New("aws integration: no region (in the uri, region, the gateway region or AWS_REGION)")
	}
	mp, err := buildMapping(&cfg)
	if err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(target.region)}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	// Only environment and shared files are read here; credentials are
	// fetched (and cached) on the first call.
	awsCfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("aws integration: loading aws config: %w", err)
	}
	method := cfg.IntegrationMethod
	if method == "" {
		method = http.MethodPost
	}
	a := &awsIntegration{
		target:  target,
		method:  method,
		mapping: mp,
		creds:   awsCfg.Credentials,
		client:  newHTTPClient(cfg.MaxConnsPerHost),
		timeout: cfg.Timeout(DefaultTimeout),
	}
	if isRoleArn(cfg.CredentialsArn) {
		a.creds = &assumedRole{roleArn: cfg.CredentialsArn, region: target.region, base: awsCfg.Credentials, client: a.client, log: env.Logger}
	}
	return a, nil
}

// request builds the service request for one integration request.
func (a *awsIntegration) request(ctx context.Context, ir *integrationRequest) (*http.Request, error) {
	t := &a.target
	u, err := url.Parse(t.endpoint())
	if err != nil {
		return nil, fmt.Errorf("aws integration: endpoint: %w", err)
	}
	query := ir.query
	header := ir.header
	if t.path != "" {
		u.Path = strings.TrimSuffix(u.Path, "/") + expandPath(t.path, ir.path)
		u.RawPath = ""
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/"
		switch t.svc.protocol {
		case "query":
			ir.body = queryAction(ir.body, header.Get("Content-Type"), query, t.action, t.svc.version)
		default: // JSON protocols
			header.Set("X-Amz-Target", t.svc.targetPrefix+"."+t.action)
			if header.Get("Content-Type") == "" {
				header.Set("Content-Type", "application/x-amz-"+strings.Replace(t.svc.protocol, "json", "json-", 1))
			}
		}
	}
	u.RawQuery = query.Encode()
	if header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/json")
	}
	req, err := http.NewRequestWithContext(ctx, a.method, u.String(), bytes.NewReader(ir.body))
	if err != nil {
		return nil, fmt.Errorf("aws integration: %w", err)
	}
	req.Header = header
	return req, nil
}

// queryAction adds Action and Version to a query-protocol request: to a
// form-encoded body that lacks them (services and emulators read a form
// body's parameters; moto reads Action only from there), else to the query
// string. It returns the body.
func queryAction(body []byte, contentType string, query url.Values, action, version string) []byte {
	if mt, _, _ := strings.Cut(contentType, ";"); strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err == nil && !form.Has("Action") {
			body = appendFormParam(body, "Action", action)
		}
		if err == nil && !form.Has("Version") && !query.Has("Version") {
			body = appendFormParam(body, "Version", version)
		}
		return body
	}
	query.Set("Action", action)
	if !query.Has("Version") {
		query.Set("Version", version)
	}
	return body
}

func appendFormParam(body []byte, k, v string) []byte {
	if len(body) > 0 {
		body = append(body, '&')
	}
	return append(append(append(body, k...), '='), url.QueryEscape(v)...)
}

// expandPath replaces the {name} placeholders of a path with the
// integration.request.path parameters, escaped as one path segment.
func expandPath(p string, params map[string]string) string {
	if len(params) == 0 || !strings.Contains(p, "{") {
		return p
	}
	for k, v := range params {
		p = strings.ReplaceAll(p, "{"+k+"}", url.PathEscape(v))
	}
	return p
}

// Invoke renders the request, signs it with the credentials and sends it;
// the answer is the integration response for the service's status and
// body. A service error (4xx, 5xx) is an answer like any other, for the
// integration responses to select on.
func (a *awsIntegration) Invoke(ctx context.Context, inv *Invocation) ([]byte, error) {
	ctx, cancel := context.WithDeadline(ctx, deadlineOf(ctx, a.timeout))
	defer cancel()
	ir, err := a.mapping.build(ctx, inv.Payload)
	if err != nil {
		return nil, fmt.Errorf("aws integration: %w", err)
	}
	req, err := a.request(ctx, ir)
	if err != nil {
		return nil, err
	}
	creds, err := a.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws integration: credentials: %w", err)
	}
	sc := sigv4.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := sigv4.Sign(req, sc, a.target.svc.signingName, a.target.region, time.Now(), ""); err != nil {
		return nil, fmt.Errorf("aws integration: signing: %w", err)
	}
	res, err := send(ctx, a.client, req)
	if err != nil {
		return nil, fmt.Errorf("aws integration %s: %w", a.target.name, err)
	}
	return a.mapping.answer(ctx, ir.req, res, false)
}

// Close drops the pooled connections.
func (a *awsIntegration) Close() error {
	a.client.CloseIdleConnections()
	return nil
}

// send does req and reads the answer, bounded by MaxPayload.
func send(ctx context.Context, client *http.Client, req *http.Request) (*apigw.Result, error) {
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body, resp.ContentLength)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, fmt.Errorf("reading response: %w", err)
	}
	return &apigw.Result{Status: strconv.Itoa(resp.StatusCode), Header: resp.Header, Body: string(body)}, nil
}
