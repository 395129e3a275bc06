package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
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
