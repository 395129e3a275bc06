package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/testenv"
)

var (
	authzOnce sync.Once
	authzBin  string
	authzErr  error
)

// buildAuthz builds testdata/authz once per test binary.
func buildAuthz(t *testing.T) string {
	authzOnce.Do(func() {
		authzBin = filepath.Join(testBinDir, "authz")
		out, err := exec.Command("go", "build", "-o", authzBin, "./testdata/authz").CombinedOutput()
		if err != nil {
			authzErr = err
			t.Logf("%s", out)
		}
	})
	if authzErr != nil {
		t.Fatal(authzErr)
	}
	return authzBin
}

// TestAuthorizer: a REQUEST authorizer (an aws-lambda-go program run with
// type: command) decides the handshake, and its context reaches every
// later event of the connection.
func TestAuthorizer(t *testing.T) {
	bin := buildAuthz(t)
	be := newBackend(t, nil)
	cfg := baseConfig()
	ttl := 0
	cfg.Authorizer = &gateway.AuthorizerConfig{
		Integration:      &integration.Config{Type: "command", Command: []string{bin}, Concurrency: 2, TimeoutMillis: 10000},
		IdentitySource:   []string{"route.request.header.Authorization"},
		ResultTTLSeconds: &ttl,
	}
	cfg.Routes["$connect"] = be.route("/connect")
	cfg.Routes["$default"] = be.route("/default")
	cfg.Routes["$disconnect"] = be.route("/disconnect")
	tg := startGateway(t, cfg)

	status := func(token string) int {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", token)
		}
		c, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(""), h)
		if err == nil {
			c.Close()
			return 101
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	for token, want := range map[string]int{"": 401, "unauthorized": 401, "deny": 403, "stage-wildcard": 403, "crash": 500} {
		if got := status(token); got != want {
			t.Errorf("Authorization %q: status %d, want %d", token, got, want)
		}
	}
	if n := be.count("/connect"); n != 0 {
		t.Fatalf("$connect ran %d times for refused connections", n)
	}

	c, _, err := websocket.DefaultDialer.Dial(tg.wsURL(""), http.Header{"Authorization": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte("hi"))
	var msg events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(be.waitEvents(t, "/default", 1)[0], &msg)
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	var conn, disc events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(be.waitEvents(t, "/connect", 1)[0], &conn)
	_ = json.Unmarshal(be.waitEvents(t, "/disconnect", 1)[0], &disc)
	for name, ev := range map[string]events.APIGatewayWebsocketProxyRequest{"CONNECT": conn, "MESSAGE": msg, "DISCONNECT": disc} {
		a, _ := ev.RequestContext.Authorizer.(map[string]any)
		if a["principalId"] != "alice" || a["user"] != "alice" || a["n"] != 1.0 || a["ok"] != true || a["integrationLatency"] == nil {
			t.Errorf("%s requestContext.authorizer = %v", name, ev.RequestContext.Authorizer)
		}
	}
}

// TestAuthorizerCacheKey: identities that differ only in where a NUL
// byte (%00 in the query) falls get separate cache entries. The authorizer
// allows a=x\x00y b=z and denies a=x b=y\x00z; with the values joined on
// NUL both had the key "x\x00y\x00z\x00", so the second was let in on the
// first one's cached Allow.
func TestAuthorizerCacheKey(t *testing.T) {
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		var req events.APIGatewayCustomAuthorizerRequestTypeRequest
		_ = json.Unmarshal(ev, &req)
		effect := "Deny"
		if q := req.QueryStringParameters; q["a"] == "x\x00y" && q["b"] == "z" {
			effect = "Allow"
		}
		return 200, `{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"` + effect + `","Resource":"` + req.MethodArn + `"}]}}`
	})
	cfg := baseConfig()
	cfg.Authorizer = &gateway.AuthorizerConfig{
		Integration:    &integration.Config{Type: "http", URI: be.srv.URL + "/authorize"},
		IdentitySource: []string{"route.request.querystring.a", "route.request.querystring.b"},
	}
	tg := startGateway(t, cfg)
	status := func(query string) int {
		c, resp, err := websocket.DefaultDialer.Dial(tg.wsURL(query), nil)
		if err == nil {
			c.Close()
			return 101
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"a=x%00y&b=z", 101},
		{"a=x&b=y%00z", 403},
		{"a=x%00y&b=z", 101}, // cached
	} {
		if got := status(tc.query); got != tc.want {
			t.Errorf("?%s: %d, want %d", tc.query, got, tc.want)
		}
	}
	if n := be.count("/authorize"); n != 2 {
		t.Errorf("authorizer called %d times, want 2 (one per identity)", n)
	}
}

// TestAuthorizerGroups: context.groups joins the connection to groups.
func TestAuthorizerGroups(t *testing.T) {
	bin := buildAuthz(t)
	cfg := baseConfig()
	cfg.Authorizer = &gateway.AuthorizerConfig{
		Integration:    &integration.Config{Type: "command", Command: []string{bin}, TimeoutMillis: 10000},
		IdentitySource: []string{"route.request.header.Authorization"},
	}
	tg := startGateway(t, cfg)
	c, _, err := websocket.DefaultDialer.Dial(tg.wsURL(""), http.Header{"Authorization": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, g := range []string{"vip", "news"} {
		if d := tg.publish(t, g, []byte(g)); d.Delivered != 1 {
			t.Fatalf("%s: %+v", g, d)
		}
		if got := readText(t, c); got != g {
			t.Fatalf("got %q", got)
		}
	}
}

// TestIAMConnect: with authorizationType AWS_IAM, a URL presigned by
// botocore connects, a tampered one gets 403, and so does an unsigned
// one; a header-signed upgrade (aws-sdk-go-v2's signer) connects too.
func TestIAMConnect(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3 python3-botocore")
	cfg := baseConfig()
	cfg.AuthorizationType = "AWS_IAM"
	tg := startGateway(t, cfg)
	out, err := exec.Command(py, "testdata/presign.py", "http://"+tg.addr+"/dev?room=1").CombinedOutput()
	if err != nil {
		t.Fatalf("presign: %v\n%s", err, out)
	}
	signed := "ws" + strings.TrimPrefix(strings.TrimSpace(string(out)), "http")
	if !strings.Contains(signed, "X-Amz-Signature=") {
		t.Fatalf("presigned URL %q", signed)
	}
	c, _, err := websocket.DefaultDialer.Dial(signed, nil)
	if err != nil {
		t.Fatalf("presigned connect: %v", err)
	}
	c.Close()
	for name, u := range map[string]string{
		"tampered query": strings.Replace(signed, "room=1", "room=2", 1),
		"unsigned":       tg.wsURL("room=1"),
	} {
		_, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("%s: %v, want 403", name, err)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+tg.addr+"/dev", nil)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req,
		sha256Hex(nil), "execute-api", testRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Authorization": req.Header["Authorization"], "X-Amz-Date": req.Header["X-Amz-Date"]}
	c, _, err = websocket.DefaultDialer.Dial(tg.wsURL(""), h)
	if err != nil {
		t.Fatalf("header-signed connect: %v", err)
	}
	c.Close()
}

var (
	postbackOnce sync.Once
	postbackErr  error
)

// TestCommandPostsBack: an unmodified aws-lambda-go handler run with
// type: command posts to its own connection through @connections with the
// credentials and endpoint wsgate injects, and returns a two-way answer;
// the client receives both.
func TestCommandPostsBack(t *testing.T) {
	bin := filepath.Join(testBinDir, "postback")
	postbackOnce.Do(func() {
		if out, err := exec.Command("go", "build", "-o", bin, "./testdata/postback").CombinedOutput(); err != nil {
			postbackErr = err
			t.Logf("%s", out)
		}
	})
	if postbackErr != nil {
		t.Fatal(postbackErr)
	}
	cfg := baseConfig()
	cfg.Routes["$default"] = gateway.Route{
		Integration:                      &integration.Config{Type: "command", Command: []string{bin}, TimeoutMillis: 10000},
		RouteResponseSelectionExpression: "$default",
	}
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	_ = c.WriteMessage(websocket.TextMessage, []byte("hello"))
	got := map[string]bool{readText(t, c): true, readText(t, c): true}
	if !got["pushed: hello"] || !got["returned: hello"] {
		t.Fatalf("client got %v, want the pushed and the returned message", got)
	}
}
