package bootstrap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/servertest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// sdkVersion is the JS SDK v3 client the Node.js tests install (pinned in
// testdata/npm/package.json and its lock file).
const sdkVersion = "3.1169.0"

var (
	npmOnce sync.Once
	npmErr  error
)

// sdkModules returns testdata/npm/node_modules with the JS SDK v3's
// API Gateway Management API client in it, running `npm ci` there once when
// it is missing (CI's .ci/run installs it ahead).
func sdkModules(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "npm"))
	if err != nil {
		t.Fatal(err)
	}
	modules := filepath.Join(dir, "node_modules")
	pkg := filepath.Join(modules, "@aws-sdk", "client-apigatewaymanagementapi", "package.json")
	npmOnce.Do(func() {
		if _, err := os.Stat(pkg); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = err
			return
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci: %v\n%s", err, out)
		}
	})
	if npmErr != nil {
		testenv.Missing(t, "@aws-sdk/client-apigatewaymanagementapi@"+sdkVersion+" ("+npmErr.Error()+")",
			"npm ci --prefix integration/bootstrap/testdata/npm")
	}
	b, err := os.ReadFile(pkg)
	if err != nil || !bytes.Contains(b, []byte(`"version": "`+sdkVersion+`"`)) {
		t.Fatalf("%s: want version %s: %v", pkg, sdkVersion, err)
	}
	return modules
}

// codeDir copies testdata/functions/name to a temporary directory (tests
// may change it) and, when modules is set, links node_modules to it.
func codeDir(t testing.TB, name, modules string) string {
	t.Helper()
	src := filepath.Join("testdata", "functions", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if modules != "" {
		if err := os.Symlink(modules, filepath.Join(dst, "node_modules")); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// logRecords returns the JSON log records in logs whose msg is msg (all
// of them when msg is empty).
func logRecords(logs *testenv.Buffer, msg string) []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && (msg == "" || m["msg"] == msg) {
			out = append(out, m)
		}
	}
	return out
}

// outputLogged waits for the handler's "answered ..." output line in the
// log, tagged with its function and request id.
func outputLogged(t *testing.T, logs *testenv.Buffer, function, requestID string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, r := range logRecords(logs, "") {
			if strings.HasPrefix(fmt.Sprint(r["msg"]), "answered ") && r["function"] == function && r["requestId"] == requestID {
				return nil
			}
		}
		return fmt.Errorf("no output line of %s with request id %s", function, requestID)
	})
}

// startServer runs a whole wsgate from config text, logging at debug level
// into the returned buffer.
func startServer(t testing.TB, text string) (*server.Server, *testenv.Buffer) {
	t.Helper()
	cfg, err := server.ParseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Start(t, cfg)
}

func dial(t testing.TB, srv *server.Server, query string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev"+query, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t testing.TB, c *websocket.Conn) string { return servertest.Read(t, c) }

// credentials are the gateway's one key: with a session token, which a
// handler's signed call must carry (X-Amz-Security-Token) to be accepted.
const credentials = `
credentials:
  - accessKeyId: ASIAWSGATETEST
    secretAccessKey: function-test-secret
    sessionToken: function-test-session-token
`

// TestFunctionsEndToEnd sends API Gateway WebSocket events from a real
// client through wsgate to Node.js (CommonJS, ES module, package "type":
// "module", callback) and Python handlers run by their runtime, with no
// container: each calls the management API back with the real SDK (the JS
// SDK v3 with endpoint, boto3 with endpoint_url) signed with the session
// credential wsgate gave it, then answers on a two-way route. A Python
// authorizer guards $connect.
func TestFunctionsEndToEnd(t *testing.T) {
	testenv.LookPath(t, "node", "apt-get install -y nodejs")
	testenv.LookPath(t, "python3", "apt-get install -y python3 python3-boto3")
	modules := sdkModules(t)
	cfg := `
listen: "127.0.0.1:0"
stage: dev
region: eu-west-1
routeSelectionExpression: $request.body.action
` + credentials + `
globals:
  env: { GLOBAL_ONLY: g, SHARED: from-globals }
functions:
  NodeCJS:      { runtime: nodejs20.x, handler: app.handler, codeUri: ` + codeDir(t, "node-cjs", modules) + `, memorySizeMB: 256, concurrency: 2, env: { SHARED: from-function, FUNCTION_ONLY: f }, timeoutMillis: 30000 }
  NodeESM:      { runtime: nodejs20.x, handler: app.handler, codeUri: ` + codeDir(t, "node-esm", modules) + `, timeoutMillis: 30000 }
  NodeModule:   { runtime: nodejs22.x, handler: src/app.handler, codeUri: ` + codeDir(t, "node-module", modules) + `, timeoutMillis: 30000 }
  NodeCallback: { runtime: nodejs18.x, handler: index.handler, codeUri: ` + codeDir(t, "node-callback", modules) + `, timeoutMillis: 30000 }
  Python:       { runtime: python3.11, handler: app.lambda_handler, codeUri: ` + codeDir(t, "python", "") + `, env: { SHARED: from-function }, timeoutMillis: 30000 }
  PythonPkg:    { runtime: python3.12, handler: pkg/mod.handler, codeUri: ` + codeDir(t, "python", "") + ` }
  Authorize:    { runtime: python3.11, handler: auth.handler, codeUri: ` + codeDir(t, "python", "") + ` }
authorizer:
  integration: { type: lambda, function: Authorize }
  identitySource: [route.request.querystring.token]
routes:
  cjs:      { integration: { type: lambda, function: NodeCJS }, routeResponseSelectionExpression: $default }
  esm:      { integration: { type: lambda, function: NodeESM }, routeResponseSelectionExpression: $default }
  module:   { integration: { type: lambda, function: NodeModule }, routeResponseSelectionExpression: $default }
  callback: { integration: { type: lambda, function: NodeCallback }, routeResponseSelectionExpression: $default }
  python:   { integration: { type: lambda, function: Python }, routeResponseSelectionExpression: $default }
  pkg:      { integration: { type: lambda, function: PythonPkg }, routeResponseSelectionExpression: $default }
`
	// The SDK-using functions get 30 s: the init limit is 10 s or the
	// timeout when longer, and importing an SDK on a loaded CI machine can
	// take longer than 10 s.
	srv, logs := startServer(t, cfg)
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev?token=wrong", nil); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("connect with a bad token: %v, want 403 from the Python authorizer", err)
	}
	c := dial(t, srv, "?token=letmein")

	type answer struct {
		Kind, Body, AWSRequestID, FunctionName, FunctionVersion, InvokedFunctionArn string
		LogGroupName, LogStreamName                                                 string
		MemoryLimitInMB                                                             any
		Remaining                                                                   int
		Waits                                                                       *bool
		TimerRan                                                                    *bool
		Env                                                                         map[string]string
	}
	send := func(t *testing.T, action, function string) answer {
		t.Helper()
		body := fmt.Sprintf(`{"action":%q,"n":1}`, action)
		if err := c.WriteMessage(websocket.TextMessage, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if got := read(t, c); got != "callback from "+function {
			t.Fatalf("%s: first frame %q, want the handler's management API call", action, got)
		}
		raw := read(t, c)
		var a answer
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			t.Fatalf("%s: answer %q: %v\nlog:\n%s", action, raw, err, logs)
		}
		if a.Body != body {
			t.Fatalf("%s: handler saw body %q, want %q", action, a.Body, body)
		}
		return a
	}

	t.Run("node commonjs async", func(t *testing.T) {
		a := send(t, "cjs", "NodeCJS")
		codeURI := a.Env["LAMBDA_TASK_ROOT"]
		want := map[string]string{
			"_HANDLER": "app.handler", "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x",
			"AWS_LAMBDA_FUNCTION_NAME": "NodeCJS", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/NodeCJS",
			"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "ASIAWSGATETEST",
			"AWS_SESSION_TOKEN": "function-test-session-token", "TZ": ":UTC",
			"GLOBAL_ONLY": "g", "SHARED": "from-function", "FUNCTION_ONLY": "f",
		}
		for k, v := range want {
			if a.Env[k] != v {
				t.Errorf("%s = %q, want %q", k, a.Env[k], v)
			}
		}
		if !strings.HasSuffix(codeURI, "node-cjs") || a.Env["LAMBDA_RUNTIME_DIR"] == "" ||
			!strings.Contains(a.Env["NODE_PATH"], codeURI) || !strings.HasPrefix(a.Env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") ||
			!strings.Contains(a.Env["AWS_LAMBDA_LOG_STREAM_NAME"], "[$LATEST]") {
			t.Errorf("env %v", a.Env)
		}
		if a.FunctionName != "NodeCJS" || a.FunctionVersion != "$LATEST" || a.MemoryLimitInMB != "256" ||
			a.InvokedFunctionArn != "arn:aws:lambda:eu-west-1:000000000000:function:NodeCJS" ||
			a.LogGroupName != "/aws/lambda/NodeCJS" || a.LogStreamName != a.Env["AWS_LAMBDA_LOG_STREAM_NAME"] ||
			a.Remaining <= 0 || a.Remaining > 30000 || a.Waits == nil || !*a.Waits || a.AWSRequestID == "" {
			t.Errorf("context %+v", a)
		}
		outputLogged(t, logs, "NodeCJS", a.AWSRequestID) // console.log
	})
	t.Run("node es module", func(t *testing.T) {
		if a := send(t, "esm", "NodeESM"); a.Kind != "esm" || a.FunctionName != "NodeESM" {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("node type module in a subdirectory", func(t *testing.T) {
		if a := send(t, "module", "NodeModule"); a.Kind != "module" || a.FunctionName != "NodeModule" {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("node callback", func(t *testing.T) {
		// The body is filled in by a timer after callback was called: Lambda
		// (callbackWaitsForEmptyEventLoop) answers after it ran.
		a := send(t, "callback", "NodeCallback")
		if a.Kind != "callback" || a.TimerRan == nil || !*a.TimerRan {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("python boto3", func(t *testing.T) {
		a := send(t, "python", "Python")
		if a.Kind != "python" || a.FunctionName != "Python" || a.MemoryLimitInMB != 128.0 || a.Remaining <= 0 ||
			a.InvokedFunctionArn != "arn:aws:lambda:eu-west-1:000000000000:function:Python" || a.AWSRequestID == "" {
			t.Errorf("context %+v", a)
		}
		if a.Env["_HANDLER"] != "app.lambda_handler" || a.Env["AWS_EXECUTION_ENV"] != "AWS_Lambda_python3.11" ||
			a.Env["AWS_SESSION_TOKEN"] != "function-test-session-token" || a.Env["SHARED"] != "from-function" ||
			a.Env["GLOBAL_ONLY"] != "g" || a.Env["TZ"] != ":UTC" || a.Env["PYTHONPATH"] == "" {
			t.Errorf("env %v", a.Env)
		}
		outputLogged(t, logs, "Python", a.AWSRequestID) // print
	})
	t.Run("python package handler", func(t *testing.T) {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"pkg"}`)); err != nil {
			t.Fatal(err)
		}
		if got := read(t, c); got != `pkg {"action":"pkg"}` {
			t.Fatalf("got %q", got)
		}
	})
	// nodejs22.x on this machine's node (20 here) is warned about, once.
	if out, _ := exec.Command("node", "--version").Output(); !strings.HasPrefix(string(out), "v22.") {
		found := false
		for _, r := range logRecords(logs, "") {
			if r["function"] == "NodeModule" && strings.Contains(fmt.Sprint(r["msg"]), "expects version 22") {
				found = true
			}
		}
		if !found {
			t.Errorf("no version warning for nodejs22.x on node %s", out)
		}
	}
}

// TestFunctionSlowInit is the cold start of issue 10: 2.5 s of imports and a
// 3 s timeout. Lambda's init phase has its own bound, so the very first
// message is answered.
func TestFunctionSlowInit(t *testing.T) {
	testenv.LookPath(t, "python3", "apt-get install -y python3")
	srv, logs := startServer(t, `
listen: "127.0.0.1:0"
stage: dev
functions:
  Slow: { runtime: python3.11, handler: slow.handler, codeUri: `+codeDir(t, "python-slow", "")+`, timeoutMillis: 3000 }
routes:
  $default: { integration: { type: lambda, function: Slow }, routeResponseSelectionExpression: $default }
`)
	c := dial(t, srv, "")
	if err := c.WriteMessage(websocket.TextMessage, []byte(`first`)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); !strings.HasPrefix(got, "slow but ready") {
		t.Fatalf("first message answered %q, want the handler's answer\nlog:\n%s", got, logs)
	}
	// The queue wait and the cold start are reported.
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, r := range logRecords(logs, "function invoked") {
			if r["function"] == "Slow" && r["queueWait"] != nil && r["processWait"] != nil {
				return nil
			}
		}
		return fmt.Errorf("no debug line with queueWait and processWait")
	})
}

// TestFunctionWatch changes a handler's file under a server watching its
// functions: the next event runs the new code.
func TestFunctionWatch(t *testing.T) {
	testenv.LookPath(t, "python3", "apt-get install -y python3")
	dir := codeDir(t, "python", "")
	srv, _ := startServer(t, `
listen: "127.0.0.1:0"
stage: dev
functions:
  Pkg: { runtime: python3.11, handler: pkg/mod.handler, codeUri: `+dir+` }
routes:
  $default: { integration: { type: lambda, function: Pkg }, routeResponseSelectionExpression: $default }
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.WatchFunctions(ctx, 50*time.Millisecond)
	c := dial(t, srv, "")
	ask := func() string {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`x`)); err != nil {
			t.Fatal(err)
		}
		return read(t, c)
	}
	if got := ask(); got != "pkg x" {
		t.Fatalf("before the change: %q", got)
	}
	src := "def handler(event, context):\n    return {'statusCode': 200, 'body': 'changed ' + event['body']}\n"
	if err := os.WriteFile(filepath.Join(dir, "pkg", "mod.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// The change restarts the function's process: a cold start of
	// python, seconds on a loaded machine.
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := ask(); got != "changed x" {
			return fmt.Errorf("answered %q", got)
		}
		return nil
	})
}

// TestFunctionStreamTarget runs a local function as a change stream's target:
// rows written by the sqlite3 CLI reach it as DynamoDB stream records.
func TestFunctionStreamTarget(t *testing.T) {
	testenv.LookPath(t, "python3", "apt-get install -y python3")
	sqlite := testenv.LookPath(t, "sqlite3", "apt-get install -y sqlite3")
	db := filepath.Join(t.TempDir(), "app.db")
	out := t.TempDir()
	if b, err := exec.Command(sqlite, db, `CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT)`).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, b)
	}
	startServer(t, fmt.Sprintf(`
listen: "127.0.0.1:0"
stage: dev
functions:
  OnChange: { runtime: python3.11, handler: stream.handler, codeUri: %s, env: { OUT_DIR: %s } }
streams:
  - source: { type: sqlite, path: %q, tables: [orders] }
    target: { integration: { type: lambda, function: OnChange } }
`, codeDir(t, "python", ""), out, db))
	if b, err := exec.Command(sqlite, "-cmd", ".timeout 5000", db, `INSERT INTO orders VALUES ('o-1', 'new')`).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, b)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		files, _ := filepath.Glob(filepath.Join(out, "*.json"))
		for _, f := range files {
			if b, _ := os.ReadFile(f); string(b) == `["INSERT"]` {
				return nil
			}
		}
		return fmt.Errorf("no batch recorded in %s (%d files)", out, len(files))
	})
}
