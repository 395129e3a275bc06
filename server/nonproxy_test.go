package server_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// passthroughConfig has http integrations (%[1]s is the backend's URL)
// with each passthroughBehavior, content handling both ways, and
// integration responses picked by a header and by a body member.
const passthroughConfig = `
listen: "127.0.0.1:0"
stage: dev
routeSelectionExpression: "$request.body.action"
routes:
  never:
    integration:
      type: http
      uri: "%[1]s/echo"
      passthroughBehavior: NEVER
      templateSelectionExpression: "$request.body.kind"
      requestTemplates: { json: '{"templated": true}' }
      integrationResponses: { "$default": {} }
    routeResponseSelectionExpression: "$default"
  notemplates:
    integration:
      type: http
      uri: "%[1]s/echo"
      passthroughBehavior: WHEN_NO_TEMPLATES
      templateSelectionExpression: "$request.body.kind"
      requestTemplates: { json: '{"templated": true}' }
      integrationResponses: { "$default": {} }
    routeResponseSelectionExpression: "$default"
  nomatch:
    integration:
      type: http
      uri: "%[1]s/echo"
      templateSelectionExpression: "$request.body.kind"
      requestTemplates: { json: '{"templated": true}' }
      integrationResponses: { "$default": {} }
    routeResponseSelectionExpression: "$default"
  binary:
    integration:
      type: http
      uri: "%[1]s/echo"
      contentHandlingStrategy: CONVERT_TO_BINARY
      requestTemplates: { "$default": "$input.path('$.data')" }
      integrationResponses: { "$default": { contentHandlingStrategy: CONVERT_TO_TEXT } }
    routeResponseSelectionExpression: "$default"
  tobinary:
    integration:
      type: http
      uri: "%[1]s/echo"
      requestTemplates: { "$default": "$input.path('$.data')" }
      integrationResponses: { "$default": { contentHandlingStrategy: CONVERT_TO_BINARY } }
    routeResponseSelectionExpression: "$default"
  byheader:
    integration:
      type: http
      uri: "%[1]s/outcome"
      requestParameters: { integration.request.querystring.want: route.request.body.want }
      integrationResponseSelectionExpression: "${integration.response.header.X-Outcome}"
      integrationResponses:
        "/ok|fine/": { responseTemplates: { "$default": "good: $input.path('$.outcome')" } }
        "$default": { responseTemplates: { "$default": "other: $context.status" } }
    routeResponseSelectionExpression: "$default"
  bybody:
    integration:
      type: http
      uri: "%[1]s/outcome"
      requestParameters: { integration.request.querystring.want: route.request.body.want }
      integrationResponseSelectionExpression: "${integration.response.body.outcome}"
      integrationResponses:
        "/2\\d\\d/": { responseTemplates: { "$default": "never: the key is the body's outcome" } }
        fine: { responseTemplates: { "$default": "fine by the body" } }
    routeResponseSelectionExpression: "$default"
`

// outcomeBackend echoes /echo's body as it came (bytes), and answers
// /outcome with the query's want in X-Outcome and in the body.
func outcomeBackend(t *testing.T) (*httptest.Server, chan []byte) {
	got := make(chan []byte, 16)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			got <- body
			_, _ = w.Write(body)
		default:
			want := strings.Trim(r.URL.Query().Get("want"), `"`)
			w.Header().Set("X-Outcome", want)
			fmt.Fprintf(w, `{"outcome": %q}`, want)
		}
	}))
	t.Cleanup(backend.Close)
	return backend, got
}

func TestPassthroughAndContentHandling(t *testing.T) {
	backend, got := outcomeBackend(t)
	srv := startServer(t, fmt.Sprintf(passthroughConfig, backend.URL))
	c := dialKey(t, srv.Addr(), "")
	frameMessage := func(s string) string {
		if !strings.HasPrefix(s, `{"message": `) {
			return "not a frame: " + s
		}
		m, _, _ := strings.Cut(strings.TrimPrefix(s, `{"message": "`), `"`)
		return m
	}
	cases := []struct{ msg, want, backend string }{
		{`{"action":"never","kind":"json"}`, `{"templated": true}`, `{"templated": true}`},
		{`{"action":"never","kind":"xml"}`, "Unsupported Media Type", ""},
		{`{"action":"notemplates","kind":"xml"}`, "Unsupported Media Type", ""},
		{`{"action":"notemplates","kind":"json"}`, `{"templated": true}`, `{"templated": true}`},
		{`{"action":"nomatch","kind":"xml"}`, `{"action":"nomatch","kind":"xml"}`, `{"action":"nomatch","kind":"xml"}`},
	}
	for _, tc := range cases {
		answer := ask(t, c, tc.msg)
		if tc.backend == "" {
			if m := frameMessage(answer); m != tc.want {
				t.Errorf("%s: %q, want the %q frame", tc.msg, answer, tc.want)
			}
			continue
		}
		if answer != tc.want {
			t.Errorf("%s: answered %q, want %q", tc.msg, answer, tc.want)
		}
		select {
		case b := <-got:
			if string(b) != tc.backend {
				t.Errorf("%s: the backend got %q, want %q", tc.msg, b, tc.backend)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the backend got nothing", tc.msg)
		}
	}
	select {
	case b := <-got:
		t.Errorf("a refused message reached the backend: %q", b)
	default:
	}

	// CONVERT_TO_BINARY sends the bytes the base64 text stands for; the
	// response's CONVERT_TO_TEXT sends them back as base64 text.
	raw := []byte{0xff, 0x00, 0xfe, 'a'}
	data := base64.StdEncoding.EncodeToString(raw)
	if answer := ask(t, c, `{"action":"binary","data":"`+data+`"}`); answer != data {
		t.Errorf("binary round trip: %q, want %q", answer, data)
	}
	if b := <-got; string(b) != string(raw) {
		t.Errorf("the backend got %x, want %x", b, raw)
	}
	// The response's CONVERT_TO_BINARY sends bytes that are not UTF-8 in
	// a binary frame.
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"tobinary","data":"`+data+`"}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || string(b) != string(raw) {
		t.Errorf("tobinary: type %d %x %v, want a binary frame %x", typ, b, err, raw)
	}
	<-got

	// integrationResponseSelectionExpression on a header and on the body.
	for _, tc := range []struct{ msg, want string }{
		{`{"action":"byheader","want":"fine"}`, "good: fine"},
		{`{"action":"byheader","want":"bad"}`, "other: 200"},
		{`{"action":"bybody","want":"fine"}`, "fine by the body"},
	} {
		if answer := ask(t, c, tc.msg); answer != tc.want {
			t.Errorf("%s: %q, want %q", tc.msg, answer, tc.want)
		}
	}
	// No integration response for the body's key: the client gets nothing,
	// and the next answer is the next message's.
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"bybody","want":"nothing"}`))
	if answer := ask(t, c, `{"action":"byheader","want":"ok"}`); answer != "good: ok" {
		t.Errorf("after an unmatched key: %q, want good: ok", answer)
	}
}
