package bootstrap_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
)

// executeAPIConfig runs the testdata/functions/execute-api handlers, each on
// a route of its own, with TLS in its default mode (auto) and a state
// directory of the test's own.
func executeAPIConfig(t *testing.T, modules string) string {
	dir := codeDir(t, "execute-api", modules)
	return `
listen: "127.0.0.1:0"
stage: dev
apiId: abc123xyz
region: eu-west-1
routeSelectionExpression: $request.body.action
stateDir: ` + t.TempDir() + `
` + credentials + `
functions:
  Boto3:       { runtime: python3.11, handler: boto3_client.handler, codeUri: ` + dir + `, timeoutMillis: 30000 }
  Recipe:      { runtime: python3.11, handler: recipe.handler, codeUri: ` + dir + `, timeoutMillis: 30000 }
  SDK:         { runtime: nodejs20.x, handler: sdk.handler, codeUri: ` + dir + `, timeoutMillis: 30000 }
  ResolvePy:   { runtime: python3.11, handler: resolve.handler, codeUri: ` + dir + `, timeoutMillis: 30000 }
  ResolveNode: { runtime: nodejs20.x, handler: resolve.handler, codeUri: ` + dir + `, timeoutMillis: 30000 }
routes:
  boto3:       { integration: { type: lambda, function: Boto3 } }
  recipe:      { integration: { type: lambda, function: Recipe } }
  sdk:         { integration: { type: lambda, function: SDK } }
  resolvepy:   { integration: { type: lambda, function: ResolvePy }, routeResponseSelectionExpression: $default }
  resolvenode: { integration: { type: lambda, function: ResolveNode }, routeResponseSelectionExpression: $default }
`
}

// executeAPIHost is the AWS host of the API executeAPIConfig defines.
const executeAPIHost = "abc123xyz.execute-api.eu-west-1.amazonaws.com"

// TestExecuteAPIHost: handlers written for AWS that build
// https://{apiId}.execute-api.{region}.amazonaws.com/{stage} themselves
// (boto3 with endpoint_url, the raw botocore recipe, the JS SDK v3 with
// endpoint) reach wsgate unchanged and deliver to clients connected over
// ws:// and wss://. The runtime clients route that one host to wsgate and
// botocore's URLLib3Session trusts the local CA; the handlers verify the
// certificate by the real host name.
func TestExecuteAPIHost(t *testing.T) {
	testenv.LookPath(t, "node", "apt-get install -y nodejs")
	testenv.LookPath(t, "python3", "apt-get install -y python3 python3-boto3")
	srv, logs := startServer(t, executeAPIConfig(t, sdkModules(t)))
	if srv.ExecuteAPIHost() != executeAPIHost {
		t.Fatalf("ExecuteAPIHost %q", srv.ExecuteAPIHost())
	}
	b, err := os.ReadFile(srv.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	_, port, _ := net.SplitHostPort(srv.Addr())
	secure := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second}
	wss, _, err := secure.Dial("wss://localhost:"+port+"/dev", nil)
	if err != nil {
		t.Fatalf("wss://: %v", err)
	}
	defer wss.Close()
	clients := map[string]*websocket.Conn{"ws://": dial(t, srv, ""), "wss://": wss}

	endpoint := "https://" + executeAPIHost + "/dev"
	for _, tc := range []struct{ action, want string }{
		{"boto3", "boto3 via " + endpoint},
		{"recipe", `{"via": "botocore recipe"}`},
		{"sdk", "JS SDK v3 via " + endpoint},
	} {
		for scheme, c := range clients {
			t.Run(tc.action+" to "+scheme, func(t *testing.T) {
				if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"`+tc.action+`"}`)); err != nil {
					t.Fatal(err)
				}
				if got := read(t, c); got != tc.want {
					t.Fatalf("got %q, want %q\nlog:\n%s", got, tc.want, logs)
				}
			})
		}
	}
}

// TestExecuteAPIHostOnly: the runtime clients route the configured API's
// host (any letter case, with or without the root's dot) and nothing else:
// another API id, another region and any other name are looked up as
// before. Lookups are numeric (Python) or through a lookup function that
// resolves nothing (Node.js), so no DNS query leaves the machine.
func TestExecuteAPIHostOnly(t *testing.T) {
	testenv.LookPath(t, "node", "apt-get install -y nodejs")
	testenv.LookPath(t, "python3", "apt-get install -y python3")
	srv, _ := startServer(t, executeAPIConfig(t, ""))
	c := dial(t, srv, "")
	want := map[string]string{
		executeAPIHost: srv.Addr(),
		"ABC123XYZ.Execute-Api.EU-WEST-1.amazonaws.com": srv.Addr(),
		executeAPIHost + ".":                            srv.Addr(),
		"other.execute-api.eu-west-1.amazonaws.com":     "not resolved",
		"abc123xyz.execute-api.us-east-1.amazonaws.com": "not resolved",
		"x." + executeAPIHost:                           "not resolved",
		"example.com":                                   "not resolved",
	}
	hosts := make([]string, 0, len(want))
	for h := range want {
		hosts = append(hosts, h)
	}
	for _, action := range []string{"resolvepy", "resolvenode"} {
		t.Run(action, func(t *testing.T) {
			// fetch() (Node.js's undici) reaches wsgate too, which refuses
			// the unsigned call: 403.
			fetchURL := "https://" + executeAPIHost + "/dev/@connections/nobody"
			msg, _ := json.Marshal(map[string]any{"action": action, "hosts": hosts, "fetch": fetchURL, "portHostForm": executeAPIHost})
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			raw := read(t, c)
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				t.Fatalf("answer %q: %v", raw, err)
			}
			for h, w := range want {
				if got[h] != w {
					t.Errorf("%s goes to %q, want %q", h, got[h], w)
				}
			}
			if action == "resolvenode" && (got["fetch"] != "403" || got["portHostForm"] != srv.Addr()) {
				t.Errorf("fetch(%s): %q, want wsgate's 403; net.connect(443, host) went to %q, want %s",
					fetchURL, got["fetch"], got["portHostForm"], srv.Addr())
			}
		})
	}
}
