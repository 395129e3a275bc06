package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// usagePlansConfig has three keys: gold in a plan with a quota of 2 a day,
// silver in a plan with a bucket of 1 (refilled once in 1000 s), stray in
// no plan. The authorizer hands out gold's key as usageIdentifierKey when
// apiKeySelectionExpression reads it from there.
const usagePlansConfig = `
listen: "127.0.0.1:0"
stage: dev
routeSelectionExpression: "$request.body.action"
apiKeys:
  - { name: gold, value: "gold-0123456789abcdef" }
  - { name: silver, value: "silver-0123456789abcd" }
  - { name: stray, value: "stray-0123456789abcde" }
usagePlans:
  - { name: daily, quota: { limit: 2, period: DAY }, apiKeys: [gold] }
  - { name: slow, throttle: { rateLimit: 0.001, burstLimit: 1 }, apiKeys: [silver] }
routes:
  open:
    integration: { type: mock }
    routeResponseSelectionExpression: "$default"
  secret:
    apiKeyRequired: true
    integration: { type: mock }
    routeResponseSelectionExpression: "$default"
`

func TestUsagePlans(t *testing.T) {
	srv := startServer(t, usagePlansConfig)
	message := func(frame string) string {
		var f map[string]string
		if json.Unmarshal([]byte(frame), &f) != nil || f["connectionId"] == "" || f["requestId"] == "" {
			return "not an error frame: " + frame
		}
		return f["message"]
	}
	const secret = `{"action":"secret"}`

	gold := dialKey(t, srv.Addr(), "gold-0123456789abcdef")
	for i := range 2 {
		if got := ask(t, gold, secret); got != secret {
			t.Fatalf("gold request %d within the quota: %q", i+1, got)
		}
	}
	if got := message(ask(t, gold, secret)); got != "Limit Exceeded" {
		t.Errorf("gold over its quota: %q, want Limit Exceeded", got)
	}
	// The quota is the key's, across connections; routes without
	// apiKeyRequired are not metered.
	gold2 := dialKey(t, srv.Addr(), "gold-0123456789abcdef")
	if got := message(ask(t, gold2, secret)); got != "Limit Exceeded" {
		t.Errorf("gold on a second connection: %q, want Limit Exceeded", got)
	}
	if got := ask(t, gold2, `{"action":"open"}`); got != `{"action":"open"}` {
		t.Errorf("gold on the open route: %q", got)
	}

	silver := dialKey(t, srv.Addr(), "silver-0123456789abcd")
	if got := ask(t, silver, secret); got != secret {
		t.Fatalf("silver's first request: %q", got)
	}
	if got := message(ask(t, silver, secret)); got != "Too Many Requests" {
		t.Errorf("silver over its rate: %q, want Too Many Requests", got)
	}
	stray := dialKey(t, srv.Addr(), "stray-0123456789abcde")
	if got := message(ask(t, stray, secret)); got != "Forbidden" {
		t.Errorf("a key in no plan: %q, want Forbidden", got)
	}

	// A reload that keeps the plans keeps the spent quota; a new limit
	// counts anew.
	reload(t, srv, strings.Replace(usagePlansConfig, "stage: dev\n", "stage: dev\nstageVariables: { v: '2' }\n", 1))
	if got := message(ask(t, gold, secret)); got != "Limit Exceeded" {
		t.Errorf("gold after a reload that kept its plan: %q, want Limit Exceeded", got)
	}
	reload(t, srv, strings.Replace(usagePlansConfig, "limit: 2,", "limit: 3,", 1))
	if got := ask(t, gold, secret); got != secret {
		t.Errorf("gold after its quota changed: %q, want an answer", got)
	}
}

// On $connect the refusals are the handshake's status: 403 without a key,
// 429 over the quota. The key comes from the authorizer's
// usageIdentifierKey.
func TestUsagePlanConnect(t *testing.T) {
	text := strings.Replace(usagePlansConfig, "routes:\n", `apiKeySelectionExpression: "$context.authorizer.usageIdentifierKey"
authorizer:
  integration:
    type: mock
    response:
      principalId: user-1
      usageIdentifierKey: "gold-0123456789abcdef"
      policyDocument:
        Version: "2012-10-17"
        Statement: [{ Action: "execute-api:Invoke", Effect: Allow, Resource: "*" }]
routes:
  $connect:
    apiKeyRequired: true
    integration: { type: mock, response: { statusCode: 200 } }
`, 1)
	srv := startServer(t, text)
	for i := range 2 {
		// The x-api-key header is not read: the authorizer's key counts.
		c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", http.Header{"X-Api-Key": {"stray-0123456789abcde"}})
		if err != nil {
			t.Fatalf("connection %d within the quota: %v", i+1, err)
		}
		c.Close()
	}
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("connection over the quota: %v, %v; want 429", err, resp)
	}
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body["message"] != "Limit Exceeded" {
		t.Errorf("429 body: %v %v, want {\"message\":\"Limit Exceeded\"}", body, err)
	}
}
