package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/server"
)

// mockTemplatesConfig is a MOCK API as API Gateway runs one: $connect
// decides from the query string, "ask" answers from a response template,
// "broken" has a request template without a statusCode.
const mockTemplatesConfig = `
listen: "127.0.0.1:0"
apiId: local
stage: dev
routeSelectionExpression: "$request.body.action"
routes:
  "$connect":
    integration:
      type: mock
      requestTemplates:
        "$default": |
          #if($input.params('token') == "ok")
          {"statusCode": 200}
          #else
          {"statusCode": 401}
          #end
      integrationResponses: { "$default": {} }
  ask:
    integration:
      type: mock
      templateSelectionExpression: "$request.body.kind"
      requestTemplates:
        "$default": '{"statusCode": 200}'
        teapot: '{"statusCode": 418}'
      integrationResponses:
        "/2\\d\\d/":
          responseTemplates:
            "$default": |
              #set($who = "$context.connectionId")
              {"connectionId": "$who", "route": "$context.routeKey", "event": "$context.eventType", "kind": "$util.escapeJavaScript($context.routeKey)"}
        "$default":
          responseTemplates: { "$default": "status $context.status" }
    routeResponseSelectionExpression: "$default"
  broken:
    integration:
      type: mock
      requestTemplates: { "$default": '{"no": "status"}' }
    routeResponseSelectionExpression: "$default"
`

func TestMockIntegrationTemplates(t *testing.T) {
	srv := startServer(t, mockTemplatesConfig)

	_, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev?token=bad", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("$connect with a bad token: %v, %v; want 401", err, resp)
	}

	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev?token=ok", nil)
	if err != nil {
		t.Fatalf("$connect with the token: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	id := onlyConnection(t, srv)

	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"ask"}`)); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if msg := read(t, c); json.Unmarshal([]byte(msg), &got) != nil {
		t.Fatalf("answer is not JSON: %q", msg)
	}
	want := map[string]string{"connectionId": id, "route": "ask", "event": "MESSAGE", "kind": "ask"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("answer %v, want %s=%q", got, k, v)
		}
	}

	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"ask","kind":"teapot"}`)); err != nil {
		t.Fatal(err)
	}
	if msg := read(t, c); msg != "status 418" {
		t.Errorf("teapot answer %q, want %q", msg, "status 418")
	}

	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"broken"}`)); err != nil {
		t.Fatal(err)
	}
	var frame map[string]string
	if msg := read(t, c); json.Unmarshal([]byte(msg), &frame) != nil || frame["message"] != "Internal server error" || frame["connectionId"] != id {
		t.Errorf("broken template answer %q, want the Internal server error frame", msg)
	}
}

// validationConfig validates messages against JSON schema draft 4 models,
// picked by the message's "kind" (else the $default model).
const validationConfig = `
listen: "127.0.0.1:0"
apiId: local
stage: dev
routeSelectionExpression: "$request.body.action"
models:
  Message:
    $schema: "http://json-schema.org/draft-04/schema#"
    type: object
    required: [action, text]
    properties:
      text: { type: string, maxLength: 10 }
  Number:
    type: object
    required: ["n"]
    properties: { "n": { type: integer, minimum: 1 } }
routes:
  send:
    requestModels: { "$default": Message, count: Number }
    modelSelectionExpression: "$request.body.kind"
    integration: { type: mock }
    routeResponseSelectionExpression: "$default"
`

func TestRequestValidation(t *testing.T) {
	srv := startServer(t, validationConfig)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	id := onlyConnection(t, srv)
	cases := []struct {
		msg   string
		valid bool
	}{
		{`{"action":"send","text":"hello"}`, true},
		{`{"action":"send","text":"far too long a text"}`, false},
		{`{"action":"send"}`, false},
		{`{"action":"send","kind":"count","n":3}`, true},
		{`{"action":"send","kind":"count","n":0}`, false},
		{`{"action":"send","kind":"count","n":1.5}`, false},
	}
	for _, tc := range cases {
		if err := c.WriteMessage(websocket.TextMessage, []byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		got := read(t, c)
		if tc.valid {
			if got != tc.msg {
				t.Errorf("%s: answered %q, want the echo", tc.msg, got)
			}
			continue
		}
		var frame map[string]string
		if json.Unmarshal([]byte(got), &frame) != nil || frame["message"] != "Invalid request body" || frame["connectionId"] != id || frame["requestId"] == "" {
			t.Errorf("%s: answered %q, want the Invalid request body frame", tc.msg, got)
		}
	}
}

func TestRouteGuardErrors(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"unknown model", "routes:\n  x: { integration: { type: mock }, requestModels: { $default: Nope } }\n",
			`routes["x"].requestModels["$default"]: no model "Nope" under models`},
		{"bad schema", "models: { M: { type: 5 } }\nroutes:\n  x: { integration: { type: mock }, requestModels: { $default: M } }\n",
			`routes["x"].requestModels["$default"]: model "M":`},
		{"remote reference", "models: { M: { $ref: \"http://example.com/s.json\" } }\nroutes:\n  x: { integration: { type: mock }, requestModels: { $default: M } }\n",
			"models may not reference other documents"},
		{"connect", "models: { M: {} }\nroutes:\n  $connect: { integration: { type: mock }, requestModels: { $default: M } }\n",
			`routes["$connect"].requestModels: $connect has no body to validate`},
		{"selection without models", "routes:\n  x: { integration: { type: mock }, modelSelectionExpression: $request.body.k }\n",
			`routes["x"].modelSelectionExpression: set but the route has no requestModels`},
		{"api key without keys", "routes:\n  x: { integration: { type: mock }, apiKeyRequired: true }\n",
			`routes["x"].apiKeyRequired: no apiKeys are configured`},
		{"short api key", "apiKeys: [{ name: a, value: short }]\n", "apiKeys[0].value: must be 20 to 128 characters (as on AWS), got 5"},
		{"api key source", "apiKeySelectionExpression: $request.querystring.key\n", `apiKeySelectionExpression: "$request.querystring.key": want`},
		{"authorizer key without authorizer", "apiKeySelectionExpression: $context.authorizer.usageIdentifierKey\n", "needs an authorizer"},
		{"plan names an unknown key", "usagePlans: [{ name: p, apiKeys: [nope] }]\n", `usagePlans[0].apiKeys[0]: "nope" is not the name of one of apiKeys`},
		{"key in two plans", "apiKeys: [{ name: a, value: 0123456789abcdefghij }]\nusagePlans: [{ name: p, apiKeys: [a] }, { name: q, apiKeys: [a] }]\n",
			`usagePlans[1].apiKeys[0]: "a" is already in usage plan "p"`},
		{"quota period", "usagePlans: [{ name: p, quota: { limit: 5, period: YEAR } }]\n", `usagePlans[0].quota.period: "YEAR": want DAY, WEEK or MONTH`},
		{"day offset", "usagePlans: [{ name: p, quota: { limit: 5, period: DAY, offset: 1 } }]\n", "usagePlans[0].quota.offset: must be between 0 and 0, got 1"},
		{"month offset", "usagePlans: [{ name: p, quota: { limit: 5, period: MONTH, offset: 28 } }]\n", "usagePlans[0].quota.offset: must be between 0 and 27, got 28"},
		{"plan throttle", "usagePlans: [{ name: p, throttle: { rateLimit: 1, burstLimit: 0 } }]\n", "usagePlans[0].throttle.burstLimit: must be between 1 and 1000000, got 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.ParseConfig([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// apiKeysConfig guards one route with an API key; $connect lets every
// client in, and the mock answers with the key id the template sees.
const apiKeysConfig = `
listen: "127.0.0.1:0"
apiId: local
stage: dev
routeSelectionExpression: "$request.body.action"
apiKeySelectionExpression: "$request.header.x-api-key"
apiKeys:
  - { name: partner, id: k1d, value: "0123456789abcdefghij" }
  - { name: old, value: "old-key-0123456789abc", enabled: false }
routes:
  open:
    integration: { type: mock }
    routeResponseSelectionExpression: "$default"
  secret:
    apiKeyRequired: true
    integration:
      type: mock
      requestTemplates: { "$default": '{"statusCode": 200}' }
      integrationResponses: { "$default": { responseTemplates: { "$default": "key $context.identity.apiKeyId" } } }
    routeResponseSelectionExpression: "$default"
`

// dialKey connects to ws://addr/dev with key as x-api-key (none when
// empty), closing the connection when the test ends.
func dialKey(t *testing.T, addr, key string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("X-Api-Key", key)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/dev", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ask sends msg on c and reads the next message.
func ask(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	return read(t, c)
}

func TestAPIKeys(t *testing.T) {
	srv := startServer(t, apiKeysConfig)
	dial := func(key string) *websocket.Conn { return dialKey(t, srv.Addr(), key) }
	good := dial("0123456789abcdefghij")
	if got := ask(t, good, `{"action":"secret"}`); got != "key k1d" {
		t.Errorf("good key: %q", got)
	}
	for _, key := range []string{"", "unknown-key-0123456789", "old-key-0123456789abc"} {
		c := dial(key)
		if got := ask(t, c, `{"action":"open"}`); got != `{"action":"open"}` {
			t.Errorf("key %q on the open route: %q", key, got)
		}
		var frame map[string]string
		if got := ask(t, c, `{"action":"secret"}`); json.Unmarshal([]byte(got), &frame) != nil || frame["message"] != "Forbidden" {
			t.Errorf("key %q on the guarded route: %q, want the Forbidden frame", key, got)
		}
	}

	// On $connect, a missing key refuses the handshake with 403.
	guarded := strings.Replace(apiKeysConfig, "routes:\n", "routes:\n  $connect:\n    apiKeyRequired: true\n    integration: { type: mock }\n", 1)
	srv2 := startServer(t, guarded)
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+srv2.Addr()+"/dev", nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("$connect without a key: %v, %v; want 403", err, resp)
	}
	h := http.Header{"X-Api-Key": {"0123456789abcdefghij"}}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv2.Addr()+"/dev", h)
	if err != nil {
		t.Fatalf("$connect with the key: %v", err)
	}
	c.Close()
}
