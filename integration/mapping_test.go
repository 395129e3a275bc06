package integration

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func messageEvent(body string) []byte {
	ev := map[string]any{
		"body":            body,
		"isBase64Encoded": false,
		"stageVariables":  map[string]string{"env": "test"},
		"requestContext": map[string]any{
			"routeKey": "ask", "eventType": "MESSAGE", "connectionId": "c0nnId=", "requestId": "r3qId=",
			"stage": "dev", "apiId": "local", "connectedAt": 1700000000000,
			"identity":   map[string]any{"sourceIp": "127.0.0.1"},
			"authorizer": map[string]any{"principalId": "u1", "tier": 2, "integrationLatency": 5},
		},
	}
	b, _ := json.Marshal(ev)
	return b
}

func mockWithTemplates(t *testing.T) Integration {
	t.Helper()
	in, err := New(Config{
		Type:                        "mock",
		TemplateSelectionExpression: "$request.body.kind",
		RequestTemplates: map[string]string{
			"deny":     `{"statusCode": 403}`,
			"$default": `{"statusCode": #if($input.path('$.n') > 1)201#{else}200#end}`,
		},
		IntegrationResponses: map[string]IntegrationResponse{
			"/2\\d\\d/": {
				TemplateSelectionExpression: "${integration.response.statuscode}",
				ResponseTemplates: map[string]string{
					"201":      `many for $context.connectionId`,
					"$default": `{"id": "$context.connectionId", "route": "$context.routeKey", "status": "$context.status", "who": "$context.authorizer.principalId", "tier": "$context.authorizer.tier", "env": "$stageVariables.env", "body": "$input.body"}`,
				},
			},
			"403": {ResponseTemplates: map[string]string{"$default": `denied #if($context.authorizer.integrationLatency)bad#end`}},
		},
	}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

func TestMockTemplates(t *testing.T) {
	in := mockWithTemplates(t)
	cases := []struct{ name, body, want string }{
		{"default template and response", `{"kind":"x","n":1}`, `{"body":"{\"id\": \"c0nnId=\", \"route\": \"ask\", \"status\": \"200\", \"who\": \"u1\", \"tier\": \"2\", \"env\": \"test\", \"body\": \"{}\"}","statusCode":200}`},
		{"status picks the response template", `{"kind":"x","n":5}`, `{"body":"many for c0nnId=","statusCode":201}`},
		{"template by selection", `{"kind":"deny"}`, `{"body":"denied ","statusCode":403}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(c.body), Body: c.body})
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != c.want {
				t.Errorf("got  %s\nwant %s", out, c.want)
			}
		})
	}
}

func TestMockTemplateStatus(t *testing.T) {
	cases := []struct {
		name      string
		templates map[string]string
		body      string
		want      string
		err       bool
	}{
		{"no statusCode", map[string]string{"$default": `{"nope": 1}`}, `{}`, "", true},
		{"not JSON", map[string]string{"$default": `hello`}, `{}`, "", true},
		{"string statusCode", map[string]string{"$default": `{"statusCode": "200"}`}, `{}`, "", true},
		{"passthrough", map[string]string{"other": `{"statusCode": 500}`}, `{"statusCode": 204}`, `{"statusCode":204}`, false},
		{"no integration response", map[string]string{"$default": `{"statusCode": 200}`}, `{}`, `{"statusCode":200}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := New(Config{Type: "mock", RequestTemplates: c.templates}, Env{})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(c.body)})
			if c.err {
				if !errors.Is(err, errNoStatus) {
					t.Fatalf("got %s, %v; want errNoStatus", out, err)
				}
				return
			}
			if err != nil || string(out) != c.want {
				t.Fatalf("got %s, %v; want %s", out, err, c.want)
			}
		})
	}
}

func TestMappingConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad template", Config{Type: "mock", RequestTemplates: map[string]string{"$default": "#if(true)"}},
			`requestTemplates["$default"]: vtl: line 1:1: #if has no #end`},
		{"bad response template", Config{Type: "mock", IntegrationResponses: map[string]IntegrationResponse{"$default": {ResponseTemplates: map[string]string{"a": "$x.y("}}}},
			`integrationResponses["$default"].responseTemplates["a"]: vtl`},
		{"bad pattern", Config{Type: "mock", IntegrationResponses: map[string]IntegrationResponse{"/[/": {}}},
			`integrationResponses["/[/"]: bad pattern`},
		{"bad selection", Config{Type: "mock", TemplateSelectionExpression: "$request.header.x", RequestTemplates: map[string]string{"a": "x"}},
			`templateSelectionExpression: selection expression "$request.header.x": unsupported variable`},
		{"not non-proxy", Config{Type: "lambda", Function: "f", RequestTemplates: map[string]string{"a": "x"}},
			"requestTemplates: mapping templates and requestParameters are for mock, aws, http and http_proxy integrations"},
		{"proxy with templates", Config{Type: "http_proxy", URI: "http://127.0.0.1:1/", RequestTemplates: map[string]string{"a": "x"}},
			"requestTemplates: an http_proxy integration forwards the message as it is"},
		{"parameter target", Config{Type: "http_proxy", URI: "http://127.0.0.1:1/", RequestParameters: map[string]string{"integration.request.body.x": "'a'"}},
			`requestParameters["integration.request.body.x"]: want integration.request.header.NAME`},
		{"parameter source", Config{Type: "http_proxy", URI: "http://127.0.0.1:1/", RequestParameters: map[string]string{"integration.request.header.x": "method.request.header.y"}},
			`requestParameters["integration.request.header.x"]: "method.request.header.y": want route.request.header.NAME`},
		{"aws uri", Config{Type: "aws", URI: "arn:aws:lambda:us-east-1:123:function:f"},
			`uri: "arn:aws:lambda:us-east-1:123:function:f": want arn:aws:apigateway:{region}:{service}:action/{Action}`},
		{"aws action of an unknown service", Config{Type: "aws", URI: "arn:aws:apigateway:us-east-1:s3:action/PutObject"},
			`wsgate cannot build the action form for service "s3"`},
		{"aws action of lambda", Config{Type: "aws", URI: "arn:aws:apigateway:us-east-1:lambda:action/Invoke"},
			`wsgate cannot build the action form for service "lambda"`},
		{"method", Config{Type: "aws", URI: "arn:aws:apigateway:us-east-1:sqs:action/SendMessage", IntegrationMethod: "FETCH"},
			`integrationMethod: "FETCH": want GET`},
		{"response and templates", Config{Type: "mock", Response: map[string]any{"statusCode": 200}, RequestTemplates: map[string]string{"a": "x"}},
			"response: a mock integration has either"},
		{"passthrough", Config{Type: "mock", PassthroughBehavior: "SOMETIMES"},
			`passthroughBehavior: "SOMETIMES": want WHEN_NO_MATCH, WHEN_NO_TEMPLATES or NEVER`},
		{"proxy passthrough", Config{Type: "http_proxy", URI: "http://127.0.0.1:1/", PassthroughBehavior: "NEVER"},
			"passthroughBehavior: an http_proxy integration forwards every message"},
		{"content handling", Config{Type: "http", URI: "http://127.0.0.1:1/", ContentHandlingStrategy: "CONVERT_TO_XML"},
			`contentHandlingStrategy: "CONVERT_TO_XML": want CONVERT_TO_BINARY or CONVERT_TO_TEXT`},
		{"response content handling", Config{Type: "http", URI: "http://127.0.0.1:1/", IntegrationResponses: map[string]IntegrationResponse{"$default": {ContentHandlingStrategy: "x"}}},
			`integrationResponses["$default"].contentHandlingStrategy: "x": want`},
		{"mock content handling", Config{Type: "mock", ContentHandlingStrategy: "CONVERT_TO_TEXT"},
			"contentHandlingStrategy: a mock integration sends no request"},
		{"response selection", Config{Type: "http", URI: "http://127.0.0.1:1/", IntegrationResponseSelectionExpression: "$context.x"},
			`integrationResponseSelectionExpression: selection expression "$context.x": unsupported variable`},
		{"proxy response selection", Config{Type: "http_proxy", URI: "http://127.0.0.1:1/", IntegrationResponseSelectionExpression: "${integration.response.statuscode}"},
			"no integration responses"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want %q in it", err, c.want)
			}
		})
	}
}
