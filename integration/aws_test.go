package integration

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/sigv4"
)

// seen is one request a test backend received.
type seen struct {
	method, path, query, body string
	header                    http.Header
	id                        *sigv4.Identity
	verifyErr                 error
}

// serviceStub is a loopback server that records each request (verifying its
// SigV4 signature) and answers status and body.
func serviceStub(t *testing.T, status int, answer string) (string, <-chan seen) {
	t.Helper()
	got := make(chan seen, 8)
	v := &sigv4.Verifier{Store: sigv4.StaticCredentials{"AKIDTEST": {AccessKeyID: "AKIDTEST", SecretAccessKey: "s3cret"}}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, header: r.Header}
		if r.Header.Get("Authorization") != "" {
			s.id, s.verifyErr = v.Verify(r)
		}
		b, _ := io.ReadAll(r.Body)
		s.body = string(b)
		got <- s
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, got
}

func awsEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestAWSLambdaNonProxy calls Lambda's Invoke API by path, as a non-proxy
// Lambda integration does: the rendered template is the payload, the
// request is signed for lambda in the URI's region and goes to
// AWS_ENDPOINT_URL_LAMBDA.
func TestAWSLambdaNonProxy(t *testing.T) {
	awsEnv(t)
	url, got := serviceStub(t, 200, `{"greeting":"hi u1"}`)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", url)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // the service's own variable wins
	in, err := New(Config{
		Type:             "aws",
		URI:              "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:hello/invocations",
		RequestTemplates: map[string]string{"$default": `{"principal": "$context.authorizer.principalId", "tier": "$context.authorizer.tier", "body": $input.json('$')}`},
		RequestParameters: map[string]string{
			"integration.request.header.X-Amz-Invocation-Type": "'RequestResponse'",
			"integration.request.header.X-Conn":                "context.connectionId",
		},
		IntegrationResponses: map[string]IntegrationResponse{
			"$default": {ResponseTemplates: map[string]string{"$default": `$input.path('$.greeting') ($context.status)`}},
		},
	}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"body":"hi u1 (200)","statusCode":200}`; string(out) != want {
		t.Errorf("answer %s, want %s", out, want)
	}
	s := <-got
	if s.verifyErr != nil || s.id == nil || s.id.Service != "lambda" || s.id.Region != "eu-west-1" {
		t.Errorf("signature: %v, %+v", s.verifyErr, s.id)
	}
	if s.method != "POST" || s.path != "/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:hello/invocations" {
		t.Errorf("request %s %s", s.method, s.path)
	}
	if s.body != `{"principal": "u1", "tier": "2", "body": {"n":1}}` {
		t.Errorf("payload %s", s.body)
	}
	if s.header.Get("X-Amz-Invocation-Type") != "RequestResponse" || s.header.Get("X-Conn") != "c0nnId=" || s.header.Get("X-Amz-Target") != "" {
		t.Errorf("headers %v", s.header)
	}
}

// TestAWSJSONAction builds a JSON-protocol action: X-Amz-Target and
// Content-Type as the service expects; a 4xx is an answer the integration
// responses select on.
func TestAWSJSONAction(t *testing.T) {
	awsEnv(t)
	url, got := serviceStub(t, 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no table"}`)
	t.Setenv("AWS_ENDPOINT_URL", url)
	in, err := New(Config{
		Type:             "aws",
		URI:              "arn:aws:apigateway:us-east-1:dynamodb:action/PutItem",
		RequestTemplates: map[string]string{"$default": `{"TableName": "t", "Item": {"id": {"S": "$context.connectionId"}}}`},
		IntegrationResponses: map[string]IntegrationResponse{
			"/4\\d\\d/": {ResponseTemplates: map[string]string{"$default": `failed: $input.path('$.message')`}},
		},
	}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(`{}`)})
	if err != nil || string(out) != `{"body":"failed: no table","statusCode":400}` {
		t.Errorf("answer %s, %v", out, err)
	}
	s := <-got
	if s.header.Get("X-Amz-Target") != "DynamoDB_20120810.PutItem" || s.header.Get("Content-Type") != "application/x-amz-json-1.0" || s.path != "/" {
		t.Errorf("request %s %v", s.path, s.header)
	}
	if s.verifyErr != nil || s.id.Service != "dynamodb" {
		t.Errorf("signature: %v", s.verifyErr)
	}
}

// TestHTTPProxyForwardsTheMessage: http_proxy sends the raw message, with
// requestParameters mapping the route request, context, stage variables
// and literals into headers, query and path.
func TestHTTPProxyForwardsTheMessage(t *testing.T) {
	url, got := serviceStub(t, 200, `pong`)
	in, err := New(Config{
		Type: "http_proxy",
		URI:  url + "/rooms/{room}?fixed=1",
		RequestParameters: map[string]string{
			"integration.request.header.X-Connection-Id": "context.connectionId",
			"integration.request.header.X-Env":           "stageVariables.env",
			"integration.request.querystring.route":      "context.routeKey",
			"integration.request.querystring.kind":       "route.request.body.kind",
			"integration.request.path.room":              "'lobby 1'",
		},
	}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	msg := `{"kind":"chat","text":"hello"}`
	out, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(msg)})
	if err != nil || string(out) != `{"body":"pong","statusCode":200}` {
		t.Fatalf("answer %s, %v", out, err)
	}
	s := <-got
	if s.body != msg {
		t.Errorf("body %q, want the message as it is", s.body)
	}
	if s.path != "/rooms/lobby%201" || s.query != "fixed=1&kind=%22chat%22&route=ask" {
		t.Errorf("request %s ? %s", s.path, s.query)
	}
	if s.header.Get("X-Connection-Id") != "c0nnId=" || s.header.Get("X-Env") != "test" {
		t.Errorf("headers %v", s.header)
	}
}

// TestHTTPNonProxyTemplates: http with templates sends the rendered
// request and renders the answer with the integration responses.
func TestHTTPNonProxyTemplates(t *testing.T) {
	url, got := serviceStub(t, 201, `{"id": 7}`)
	in, err := New(Config{
		Type:              "http",
		URI:               url + "/items",
		IntegrationMethod: "PUT",
		RequestTemplates:  map[string]string{"$default": `{"from": "$context.connectionId", "text": $input.json('$.text')}`},
		IntegrationResponses: map[string]IntegrationResponse{
			"/2\\d\\d/": {ResponseTemplates: map[string]string{"$default": `created $input.path('$.id')`}},
		},
	}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(`{"text":"hi"}`)})
	if err != nil || string(out) != `{"body":"created 7","statusCode":201}` {
		t.Fatalf("answer %s, %v", out, err)
	}
	if s := <-got; s.method != "PUT" || s.body != `{"from": "c0nnId=", "text": "hi"}` || s.header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %q %v", s.method, s.body, s.header)
	}
}

// TestServiceEndpoints: the endpoint of each URI, from the SDKs' variables
// or AWS's host names.
func TestServiceEndpoints(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_SFN", "")
	cases := []struct{ uri, env, want string }{
		{"arn:aws:apigateway:eu-west-1:states:action/StartSyncExecution", "", "https://sync-states.eu-west-1.amazonaws.com"},
		{"arn:aws:apigateway:eu-west-1:states:action/StartExecution", "", "https://states.eu-west-1.amazonaws.com"},
		{"arn:aws:apigateway:eu-west-1:states:action/StartSyncExecution", "http://127.0.0.1:5000/", "http://127.0.0.1:5000"},
		{"arn:aws:apigateway:cn-north-1:sqs:path/1/q", "", "https://sqs.cn-north-1.amazonaws.com.cn"},
		{"arn:aws:apigateway:us-east-1:iot.data:path/topics/a", "", "https://iot.data.us-east-1.amazonaws.com"},
	}
	for _, c := range cases {
		t.Setenv("AWS_ENDPOINT_URL_SFN", c.env)
		tg, err := parseServiceURI(c.uri, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.endpoint(); got != c.want {
			t.Errorf("%s (AWS_ENDPOINT_URL_SFN=%q): %s, want %s", c.uri, c.env, got, c.want)
		}
	}
}

// TestAWSStartSyncExecution: Step Functions' StartSyncExecution by action,
// as AWS's synchronous Express workflow pattern builds it, against a
// loopback stand-in answering StartSyncExecution's documented shape
// (moto_server does not implement the action: no real endpoint runs
// here). AWS_ENDPOINT_URL_SFN wins over the sync-states host.
func TestAWSStartSyncExecution(t *testing.T) {
	awsEnv(t)
	url, got := serviceStub(t, 200, `{"executionArn":"arn:aws:states:us-east-1:123456789012:express:m:e1:x","status":"SUCCEEDED","output":"{\"greeting\":\"hi\"}","startDate":1.7E9,"stopDate":1.7E9}`)
	t.Setenv("AWS_ENDPOINT_URL_SFN", url)
	in, err := New(Config{
		Type: "aws",
		URI:  "arn:aws:apigateway:us-east-1:states:action/StartSyncExecution",
		RequestTemplates: map[string]string{"$default": `#set($body = $input.json('$'))
{"input": "$util.escapeJavaScript($body).replaceAll("\\'","'")", "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}`},
		IntegrationResponses: map[string]IntegrationResponse{
			"$default": {ResponseTemplates: map[string]string{"$default": `$util.parseJson($input.path('$.output')).greeting ($input.path('$.status'))`}},
		},
	}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(`{"who":"it's me"}`)})
	if err != nil || string(out) != `{"body":"hi (SUCCEEDED)","statusCode":200}` {
		t.Errorf("answer %s, %v", out, err)
	}
	s := <-got
	if s.header.Get("X-Amz-Target") != "AWSStepFunctions.StartSyncExecution" || s.verifyErr != nil || s.id.Service != "states" {
		t.Errorf("request %v, signature %v", s.header, s.verifyErr)
	}
	if want := `{"input": "{\"who\":\"it's me\"}", "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}`; s.body != want {
		t.Errorf("body %s\nwant %s", s.body, want)
	}
}
