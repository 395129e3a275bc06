package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/servertest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// issueExample is the config from the gateway's specification, verbatim
// but for the backend addresses.
const issueExample = `
listen: "127.0.0.1:0"
apiId: "local"
stage: "dev"
region: "us-east-1"
routeSelectionExpression: "$request.body.action"
idleTimeoutSeconds: 600
maxConnectionSeconds: 7200
credentials:
  - accessKeyId: "AKIDLOCAL"
    secretAccessKey: "change-me"
routes:
  "$connect":    { integration: { type: http, uri: "http://127.0.0.1:9000/connect", timeoutMillis: 29000 } }
  "$disconnect": { integration: { type: http, uri: "http://127.0.0.1:9000/disconnect" } }
  "$default":
    integration: { type: http, uri: "http://127.0.0.1:9000/default" }
    routeResponseSelectionExpression: "$default"
  "echo":
    integration: { type: mock }
    routeResponseSelectionExpression: "$default"
`

func TestParseConfig(t *testing.T) {
	cfg, err := server.ParseConfig([]byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stage != "dev" || len(cfg.Routes) != 4 || cfg.Routes["$connect"].Integration.TimeoutMillis != 29000 ||
		cfg.Routes["$default"].RouteResponseSelectionExpression != "$default" || cfg.OutboundQueueFrames != 256 ||
		cfg.MaxGroupsPerConnection != 100 || cfg.MaxGroups != 1000000 {
		t.Fatalf("parsed %+v", cfg)
	}
	js := `{"stage":"prod","routes":{"echo":{"integration":{"type":"mock"}}}}`
	if cfg, err := server.ParseConfig([]byte(js)); err != nil || cfg.Stage != "prod" {
		t.Fatalf("JSON config: %v", err)
	}
	bad := []struct{ name, text, want string }{
		{"unknown field", "stage: dev\nstagee: x\n", `unknown field "stagee"`},
		{"bad integration type", "routes:\n  x: { integration: { type: grpc } }\n", `unknown integration type "grpc"`},
		{"custom $ route", "routes:\n  $foo: { integration: { type: mock } }\n", "may not start with '$'"},
		{"two-way $connect", "routes:\n  $connect: { integration: { type: mock }, routeResponseSelectionExpression: $default }\n", "cannot be two-way"},
		{"bad expression", "routeSelectionExpression: $request.header.x\n", "only $request.body"},
		{"join without allow", "routes:\n  sub: { groups: { join: $request.body.group } }\n", "allow list"},
		{"too many groups per connection", "maxGroupsPerConnection: 20000\n", "maxGroupsPerConnection: must be between 1 and 10000, got 20000"},
		{"negative maxGroups", "maxGroups: -1\n", "maxGroups: must be between 1 and 100000000, got -1"},
		{"bad stream", "streams:\n  - source: { type: oracle }\n    target: { group: g }\n", "oracle"},
		{"bad filter pattern", "streams:\n  - source: { type: sqlite, path: a.db, tables: [t] }\n    target: { group: g, filterCriteria: { filters: [{ pattern: '{\"eventName\":\"INSERT\"}' }] } }\n",
			`streams[0].target.filterCriteria.filters[0].pattern: eventName: want a list of rules or an object, got "INSERT"`},
		{"filter pattern not an object", "streams:\n  - source: { type: sqlite, path: a.db, tables: [t] }\n    target: { group: g, filterCriteria: { filters: [{ pattern: [INSERT] }] } }\n",
			"a pattern is a JSON object, or a string holding one"},
		{"unknown runtime", "functions:\n  F: { runtime: java21, handler: a.b, codeUri: . }\n", `functions.F: runtime "java21": want one of`},
		{"no handler", "functions:\n  F: { runtime: nodejs20.x, codeUri: . }\n", `handler "": want module.function`},
		{"no codeUri", "functions:\n  F: { runtime: python3.12, handler: app.handler }\n", "codeUri is required"},
		{"function timeout", "functions:\n  F: { runtime: python3.12, handler: a.b, codeUri: ., timeoutMillis: 999 }\n", "timeoutMillis 999 out of range 1000..900000"},
		{"function memory", "functions:\n  F: { runtime: python3.12, handler: a.b, codeUri: ., memorySizeMB: 64 }\n", "memorySizeMB 64 out of range 128..10240"},
		{"function concurrency", "functions:\n  F: { runtime: python3.12, handler: a.b, codeUri: ., concurrency: 65 }\n", "concurrency 65 out of range 1..64"},
		{"reserved env", "functions:\n  F: { runtime: python3.12, handler: a.b, codeUri: ., env: { AWS_REGION: x, _HANDLER: y } }\n", "reserved keys that Lambda sets itself: AWS_REGION, _HANDLER"},
		{"reserved global env", "globals: { env: { AWS_SESSION_TOKEN: x } }\n", "globals: env sets reserved keys that Lambda sets itself: AWS_SESSION_TOKEN"},
		{"function name", "functions:\n  \"a b\": { runtime: python3.12, handler: a.b, codeUri: . }\n", `name "a b": use 1 to 64 letters`},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := server.ParseConfig([]byte(b.text))
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("error %v, want one containing %q", err, b.want)
			}
		})
	}
}

func startServer(t *testing.T, text string) *server.Server {
	t.Helper()
	return startServerLog(t, text, io.Discard)
}

// startServerLog is startServer logging to w.
func startServerLog(t *testing.T, text string, w io.Writer) *server.Server {
	t.Helper()
	return startServerWrapped(t, text, w, nil)
}

// startServerWrapped is startServerLog with wrap, when set, put in front
// of everything the listener serves (Server.Wrap).
func startServerWrapped(t *testing.T, text string, w io.Writer, wrap func(http.Handler) http.Handler) *server.Server {
	t.Helper()
	cfg, err := server.ParseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir() // the local CA, not in the package directory
	}
	srv, err := server.New(*cfg, slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		srv.Wrap(wrap)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// onlyConnection waits for the server's single connection and returns its id.
func onlyConnection(t *testing.T, srv *server.Server) string {
	t.Helper()
	var id string
	testenv.Eventually(t, 30*time.Second, func() error {
		infos, _, _ := srv.Hub().Connections(context.Background(), hub.Page{})
		if len(infos) != 1 {
			return os.ErrNotExist
		}
		id = infos[0].ConnectionID
		return nil
	})
	return id
}

func dial(t *testing.T, srv *server.Server) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *websocket.Conn) string { return servertest.Read(t, c) }

const interopConfig = `
listen: "127.0.0.1:0"
stage: dev
credentials: [{ accessKeyId: AKIDLOCAL, secretAccessKey: change-me }]
`

// TestBoto3: boto3's client and the raw botocore technique.
func TestBoto3(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3 python3-boto3")
	srv := startServer(t, interopConfig)
	c := dial(t, srv)
	id := onlyConnection(t, srv)
	out, err := exec.Command(py, "testdata/boto3_client.py", srv.ManagementEndpoint(), id).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No module named") {
			testenv.Missing(t, "boto3", "pip install boto3")
		}
		t.Fatalf("boto3 script: %v\n%s", err, out)
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res["sourceIp"] != "127.0.0.1" || res["gone"] != "GoneException" || res["goneStatus"] != 410.0 ||
		res["raw/@connections/"] != 200.0 || res["raw/%40connections/"] != 200.0 || res["badSecret"] != "InvalidSignatureException" {
		t.Fatalf("boto3 results: %s", out)
	}
	for _, want := range []string{"from boto3", "raw /@connections/", "raw /%40connections/"} {
		if got := read(t, c); got != want {
			t.Fatalf("client got %q, want %q", got, want)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1000 {
		t.Fatalf("after delete_connection: %v", err)
	}
}

// TestAWSCLI: post-to-connection, get-connection and delete-connection
// with the AWS CLI v1 (pip) and v2 (Debian's awscli).
func TestAWSCLI(t *testing.T) {
	clis := awsCLIs(t)
	for v, bin := range clis {
		t.Run(v, func(t *testing.T) {
			srv := startServer(t, interopConfig)
			c := dial(t, srv)
			id := onlyConnection(t, srv)
			home := t.TempDir()
			run := func(args ...string) (string, error) {
				args = append(args, "--endpoint-url", srv.ManagementEndpoint())
				if v == "v2" && args[1] == "post-to-connection" {
					args = append(args, "--cli-binary-format", "raw-in-base64-out")
				}
				cmd := exec.Command(bin, args...)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_ACCESS_KEY_ID=AKIDLOCAL",
					"AWS_SECRET_ACCESS_KEY=change-me", "AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true",
					"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "creds"),
					"AWS_PAGER="}
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			if out, err := run("apigatewaymanagementapi", "post-to-connection", "--connection-id="+id, "--data", "from the CLI "+v); err != nil {
				t.Fatalf("post-to-connection: %v\n%s", err, out)
			}
			if got := read(t, c); got != "from the CLI "+v {
				t.Fatalf("client got %q", got)
			}
			out, err := run("apigatewaymanagementapi", "get-connection", "--connection-id="+id)
			if err != nil || !strings.Contains(out, `"SourceIp": "127.0.0.1"`) || !strings.Contains(out, "ConnectedAt") {
				t.Fatalf("get-connection: %v\n%s", err, out)
			}
			if out, err := run("apigatewaymanagementapi", "delete-connection", "--connection-id="+id); err != nil {
				t.Fatalf("delete-connection: %v\n%s", err, out)
			}
			out, err = run("apigatewaymanagementapi", "post-to-connection", "--connection-id="+id, "--data", "x")
			if err == nil || !strings.Contains(out, "An error occurred (GoneException) when calling the PostToConnection operation") {
				t.Fatalf("post after delete: %v\n%s", err, out)
			}
		})
	}
}

// TestLoadConfigFunctionPaths checks that a function's paths are relative to
// the config file, and a bare program name stays one.
func TestLoadConfigFunctionPaths(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "wsgate.yaml")
	err := os.WriteFile(p, []byte(`
functions:
  A: { runtime: python3.12, handler: app.handler, codeUri: ./a, interpreter: ./venv/bin/python }
  B: { runtime: nodejs20.x, handler: app.handler, codeUri: /abs/b }
globals: { node: node22, python: ../py/bin/python3, cacheDir: cache }
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// --check (LoadConfig) reports a codeUri that is not a directory.
	if _, err := server.LoadConfig(p); err == nil || !strings.Contains(err.Error(), "functions.A: codeUri "+filepath.Join(dir, "a")+" is not a directory") ||
		!strings.Contains(err.Error(), "functions.B: codeUri /abs/b is not a directory") {
		t.Fatalf("LoadConfig with missing code directories: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "b")
	if err := os.Mkdir(b, 0o755); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(text), "/abs/b", b, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := cfg.Functions["A"], cfg.Functions["B"]
	if fa.CodeURI != filepath.Join(dir, "a") || fa.Interpreter != filepath.Join(dir, "venv/bin/python") || fb.CodeURI != b ||
		cfg.Globals.Node != "node22" || cfg.Globals.Python != filepath.Join(filepath.Dir(dir), "py/bin/python3") ||
		cfg.Globals.CacheDir != filepath.Join(dir, "cache") {
		t.Fatalf("functions %+v, globals %+v", cfg.Functions, cfg.Globals)
	}
}
