package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// mgmtAt is the Go SDK's management client with endpoint as its base, as
// a handler on AWS builds it for a custom domain
// (https://{domain}/{basePath}).
func mgmtAt(endpoint string) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
	})
}

// TestBasePaths: with API mappings, clients connect where a custom domain
// puts them (a base path, several levels, or the root), and the stage's
// own path still works; events carry the stage and, for a custom domain,
// the Host the client used as domainName; the management API answers at
// {basePath}/@connections/{id}, signed by the Go SDK.
func TestBasePaths(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.DomainName = "abcdef1234.execute-api.us-east-1.amazonaws.com"
	cfg.BasePaths = map[string]string{"/": "dev", "/chat": "dev", "/v1/chat": "dev"}
	cfg.Routes["$connect"] = be.route("/connect")
	cfg.Routes["echo"] = echoRoute(nil)
	tg := startGateway(t, cfg)

	cases := []struct {
		name, path, host, domain, endpoint string
	}{
		{"the stage's own path", "/dev", "", cfg.DomainName, "http://" + tg.addr + "/dev"},
		{"a base path", "/chat", "chat.example.com", "chat.example.com", "http://" + tg.addr + "/chat"},
		{"two levels", "/v1/chat/", "api.example.com", "api.example.com", "http://" + tg.addr + "/v1/chat"},
		{"the root", "/", "ws.example.com", "ws.example.com", "http://" + tg.addr},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.host != "" {
				h.Set("Host", tc.host)
			}
			c, resp, err := websocket.DefaultDialer.Dial("ws://"+tg.addr+tc.path, h)
			if err != nil {
				t.Fatalf("dial %s: %v (%v)", tc.path, err, resp)
			}
			defer c.Close()
			if got := readAfter(t, c, `{"action":"echo"}`); got != `{"action":"echo"}` {
				t.Fatalf("echo answered %q", got)
			}
			var ev events.APIGatewayWebsocketProxyRequest
			if err := json.Unmarshal(be.waitEvents(t, "/connect", i+1)[i], &ev); err != nil {
				t.Fatal(err)
			}
			if ev.RequestContext.Stage != "dev" || ev.RequestContext.DomainName != tc.domain {
				t.Fatalf("stage %q, domainName %q; want dev, %q", ev.RequestContext.Stage, ev.RequestContext.DomainName, tc.domain)
			}
			id := ev.RequestContext.ConnectionID
			m := mgmtAt(tc.endpoint)
			ctx := context.Background()
			if _, err := m.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("via " + tc.path)}); err != nil {
				t.Fatalf("PostToConnection at %s: %v", tc.endpoint, err)
			}
			if got := readText(t, c); got != "via "+tc.path {
				t.Fatalf("client got %q", got)
			}
			if _, err := m.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); err != nil {
				t.Fatalf("GetConnection at %s: %v", tc.endpoint, err)
			}
			if _, err := m.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
				t.Fatalf("DeleteConnection at %s: %v", tc.endpoint, err)
			}
			if code, _ := readClose(t, c); code != 1000 {
				t.Fatalf("close code %d", code)
			}
		})
	}
	if !tg.gw.Serves("/chat/@connections/x") || !tg.gw.Serves("/anything") {
		t.Fatal("Serves: the mapped paths are not the gateway's")
	}
}

// TestBasePathsOnly: without a root mapping, paths outside the stage and
// the base paths answer 403 ForbiddenException, as before; a prefix of a
// base path is no match.
func TestBasePathsOnly(t *testing.T) {
	cfg := baseConfig()
	cfg.BasePaths = map[string]string{"/chat": "dev"}
	tg := startGateway(t, cfg)
	for _, p := range []string{"/", "/chatter", "/other/@connections/x"} {
		resp, _ := tg.signed(t, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-ErrorType") != "ForbiddenException" {
			t.Errorf("GET %s answered %d %s", p, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
	}
	if tg.gw.Serves("/chatter") || !tg.gw.Serves("/chat") || !tg.gw.Serves("/dev/@connections") {
		t.Fatal("Serves disagrees with routing")
	}
	tg.dial(t, nil) // /dev
	c, _, err := websocket.DefaultDialer.Dial("ws://"+tg.addr+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestBasePathsConfig: mappings use API Gateway's characters and name
// the stage.
func TestBasePathsConfig(t *testing.T) {
	cfg := baseConfig()
	cfg.BasePaths = map[string]string{"chat": "dev", "/a b": "dev", "/x": "prod", "/dev": "dev", "/a/../b": "dev", "/a//b": "dev"}
	cfg.SetDefaults()
	err := cfg.Validate()
	for _, want := range []string{
		`basePaths["chat"]: want "/" or a path`,
		`basePaths["/a b"]: segment "a b"`,
		`basePaths["/x"]: maps to stage "prod", but the stage is "dev"`,
		`basePaths["/dev"]: is the stage's own path`,
		`basePaths["/a/../b"]: segment ".."`,
		`basePaths["/a//b"]: segment ""`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
	ok := baseConfig()
	ok.BasePaths = map[string]string{"/": "dev", "/v1/chat$-_.+!*'()": "dev"}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(ok, gateway.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	_ = gw.Shutdown(context.Background())
}
