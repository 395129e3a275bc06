package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgate/wsgate/accesslog"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/metrics"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/streams"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// observedConfig has an admin listener, an authorizer, and routes that
// succeed (echo), fail in the integration (fail: statusCode 500) and are
// missing (no $default: the Forbidden frame). %s is the access log block.
const observedConfig = `
listen: "127.0.0.1:0"
stage: dev
credentials: [{ accessKeyId: AKIDLOCAL, secretAccessKey: change-me }]
admin: { listen: "127.0.0.1:0" }
authorizer:
  integration:
    type: mock
    response:
      principalId: user-1
      context: { role: admin, level: 3 }
      policyDocument:
        Version: "2012-10-17"
        Statement: [{ Action: "execute-api:Invoke", Effect: Allow, Resource: "*" }]
routes:
  "$connect": { integration: { type: mock, response: { statusCode: 200 } } }
  "$disconnect": { integration: { type: mock, response: { statusCode: 200 } } }
  echo: { integration: { type: mock }, routeResponseSelectionExpression: "$default" }
  fail:
    integration: { type: mock, response: { statusCode: 500, body: boom } }
    routeResponseSelectionExpression: "$default"
%s`

// scrape reads the admin listener's /metrics with Prometheus's text parser.
func scrape(t *testing.T, srv *server.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of family name with exactly labels
// (name=value pairs); a histogram's is its sample count. -1 when absent.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		ok := true
		for _, l := range m.Label {
			i := slices.Index(labels, l.GetName())
			if i < 0 || i%2 != 0 || labels[i+1] != l.GetValue() {
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// want is one expected series value.
type want struct {
	name   string
	labels []string
	value  float64
}

func checkMetrics(fams map[string]*dto.MetricFamily, wants []want) error {
	var errs []string
	for _, w := range wants {
		if got := value(fams, w.name, w.labels...); got != w.value {
			errs = append(errs, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, got, w.value))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// signedPost posts data to the management API, signed as boto3 would.
func signedPost(t *testing.T, url string, data []byte) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(signed(t, http.MethodPost, url, data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// session is the scripted session of the metrics and access log tests:
// one connect, three messages (echo answers, fail's integration answers
// 500, nomatch has no route), one POST, one close. After each step it
// waits for stepDone(n), n being the records so far, if given.
func session(t *testing.T, srv *server.Server, stepDone func(n int)) {
	t.Helper()
	step := func(n int) {
		if stepDone != nil {
			stepDone(n)
		}
	}
	hdr := http.Header{"Authorization": {"token"}, "User-Agent": {"observe-test/1.0"}}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	step(1)
	for i, msg := range []string{`{"action":"echo","n":1}`, `{"action":"fail"}`, `{"action":"nomatch"}`} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		read(t, c)
		step(2 + i)
	}
	id := onlyConnection(t, srv)
	if status := signedPost(t, srv.ManagementEndpoint()+"/@connections/"+url.PathEscape(id), []byte("hello")); status != 200 {
		t.Fatalf("POST: %d", status)
	}
	if got := read(t, c); got != "hello" {
		t.Fatalf("POST delivered %q", got)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	for { // until the server's close answer
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	step(5)
}

// TestMetricsCountTraffic: /metrics moves exactly as the traffic says.
func TestMetricsCountTraffic(t *testing.T) {
	srv := startServer(t, fmt.Sprintf(observedConfig, "keepAliveWaitDescriptors: 77\n"))
	if srv.AdminAddr() == "" || srv.AdminAddr() == srv.Addr() {
		t.Fatalf("admin listener %q beside %q", srv.AdminAddr(), srv.Addr())
	}
	fams := scrape(t, srv)
	if err := checkMetrics(fams, []want{
		{"wsgate_connects_total", nil, 0},
		{"wsgate_connections", nil, 0},
		{"wsgate_messages_received_total", []string{"route", "echo"}, 0},
		{"wsgate_integration_errors_total", []string{"route", "fail"}, 0},
	}); err != nil {
		t.Fatalf("before any traffic:\n%v", err)
	}
	for _, f := range []string{"go_goroutines", "process_open_fds"} {
		if fams[f] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", f)
		}
	}

	session(t, srv, nil)
	// The $disconnect record comes after the close: poll for it.
	wants := []want{
		{"wsgate_connects_total", nil, 1},
		{"wsgate_handshakes_total", []string{"outcome", "ok"}, 1},
		{"wsgate_handshakes_total", []string{"outcome", "unauthorized"}, 0},
		{"wsgate_connections", nil, 0},
		{"wsgate_messages_received_total", []string{"route", "echo"}, 1},
		{"wsgate_messages_received_total", []string{"route", "fail"}, 1},
		{"wsgate_messages_received_total", []string{"route", "$default"}, 1},
		{"wsgate_integration_errors_total", []string{"route", "fail"}, 1},
		{"wsgate_integration_errors_total", []string{"route", "echo"}, 0},
		{"wsgate_client_errors_total", []string{"route", "$default"}, 1},
		{"wsgate_client_errors_total", []string{"route", "echo"}, 0},
		{"wsgate_execution_errors_total", []string{"route", "echo"}, 0},
		{"wsgate_execution_errors_total", []string{"route", "fail"}, 0},
		{"wsgate_integration_latency_seconds", []string{"route", "echo"}, 1},
		{"wsgate_integration_latency_seconds", []string{"route", "fail"}, 1},
		{"wsgate_integration_latency_seconds", []string{"route", "$connect"}, 1},
		{"wsgate_integration_latency_seconds", []string{"route", "$disconnect"}, 1},
		{"wsgate_integration_latency_seconds", []string{"route", "$default"}, 0},
		{"wsgate_authorizer_latency_seconds", nil, 1},
		{"wsgate_throttled_total", []string{"route", "echo"}, 0},
		// echo's answer, fail's answer, the Forbidden frame and the POST.
		{"wsgate_messages_sent_total", nil, 4},
		// Three messages and the close frame in; four messages and the
		// close echo out.
		{"wsgate_frames_total", []string{"direction", "in"}, 4},
		{"wsgate_frames_total", []string{"direction", "out"}, 5},
		{"wsgate_management_requests_total", []string{"operation", "PostToConnection", "status", "200"}, 1},
		{"wsgate_management_request_duration_seconds", []string{"operation", "PostToConnection"}, 1},
		{"wsgate_closes_total", []string{"reason", "client_close"}, 1},
		{"wsgate_queue_full_total", nil, 0},
		{"wsgate_group_deliveries_skipped_total", nil, 0},
		{"wsgate_inflight_invocations", nil, 0},
	}
	testenv.Eventually(t, 15*time.Second, func() error { return checkMetrics(scrape(t, srv), wants) })
	// Bytes in: each client frame is masked (6 header bytes below 126).
	in := 6*4 + len(`{"action":"echo","n":1}`) + len(`{"action":"fail"}`) + len(`{"action":"nomatch"}`) + 2 + len("bye")
	if got := value(scrape(t, srv), "wsgate_bytes_total", "direction", "in"); got != float64(in) {
		t.Errorf("bytes in = %v, want %d", got, in)
	}
	// The front's keep-alive waits: their bound is keepAliveWaitDescriptors
	// (Linux; elsewhere none are held).
	if got, want := value(scrape(t, srv), "wsgate_http_keepalive_wait_descriptors_limit"), map[bool]float64{true: 77}[runtime.GOOS == "linux"]; got != want {
		t.Errorf("keep-alive wait descriptors' limit = %v, want %v", got, want)
	}
	// The streams' pacing counts are there, at 0 without a burst.
	pf := scrape(t, srv)
	for _, name := range []string{"wsgate_stream_pace_waits_total", "wsgate_stream_pace_excused_total", "wsgate_stream_pace_refused_total"} {
		if pf[name] == nil || value(pf, name) != 0 {
			t.Errorf("%s: %v, want a counter at 0", name, pf[name])
		}
	}

	// A management call with a bad signature is counted by its status.
	resp, err := http.Post(srv.ManagementEndpoint()+"/@connections/abc", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testenv.Eventually(t, 15*time.Second, func() error {
		return checkMetrics(scrape(t, srv), []want{{"wsgate_management_requests_total", []string{"operation", "PostToConnection", "status", "403"}, 1}})
	})
}

// TestMetricsCountThrottling: a message refused by its route's token
// bucket and a handshake refused by connectionThrottling are client
// errors and throttled requests, as API Gateway counts them.
func TestMetricsCountThrottling(t *testing.T) {
	srv := startServer(t, interopConfig+`admin: { listen: "127.0.0.1:0" }
connectionThrottling: { rateLimit: 0.001, burstLimit: 1 }
routes:
  slow: { integration: { type: mock }, routeResponseSelectionExpression: "$default", throttling: { rateLimit: 0.001, burstLimit: 1 } }
`)
	c := dial(t, srv)
	for range 2 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"slow"}`)); err != nil {
			t.Fatal(err)
		}
		read(t, c)
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", nil); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("second handshake: %v %v, want 429", resp, err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		return checkMetrics(scrape(t, srv), []want{
			{"wsgate_messages_received_total", []string{"route", "slow"}, 2},
			{"wsgate_throttled_total", []string{"route", "slow"}, 1},
			{"wsgate_client_errors_total", []string{"route", "slow"}, 1},
			{"wsgate_throttled_total", []string{"route", "$connect"}, 1},
			{"wsgate_handshakes_total", []string{"outcome", "throttled"}, 1},
			{"wsgate_handshakes_total", []string{"outcome", "ok"}, 1},
		})
	})
}

// TestMetricsLabelsAreBounded: messages naming a thousand different
// routes that do not exist add no series: the route label only takes
// configured route keys.
func TestMetricsLabelsAreBounded(t *testing.T) {
	srv := startServer(t, fmt.Sprintf(observedConfig, ""))
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", http.Header{"Authorization": {"token"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 1000 {
		if err := c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"action":"route-%d"}`, i)); err != nil {
			t.Fatal(err)
		}
		read(t, c) // Forbidden
	}
	// The error frame can reach the client just before its message is
	// counted: wait for the count, then look at the labels.
	var fams map[string]*dto.MetricFamily
	testenv.Eventually(t, 10*time.Second, func() error {
		fams = scrape(t, srv)
		if got := value(fams, "wsgate_client_errors_total", "route", "$default"); got != 1000 {
			return fmt.Errorf("client errors = %v, want 1000", got)
		}
		return nil
	})
	routes := map[string]bool{}
	for _, m := range fams["wsgate_messages_received_total"].Metric {
		for _, l := range m.Label {
			routes[l.GetValue()] = true
		}
	}
	if len(routes) != 5 || !routes["$default"] || !routes["echo"] {
		t.Errorf("route label values %v, want the five configured keys and $default", routes)
	}
	if got := value(fams, "wsgate_client_errors_total", "route", "$default"); got != 1000 {
		t.Errorf("client errors = %v, want 1000", got)
	}
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.HasPrefix(l.GetValue(), "route-") || len(l.GetValue()) == 16 && strings.HasSuffix(l.GetValue(), "=") {
					t.Errorf("%s has a client-chosen or connection id label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// everyVariableFormat is a JSON access log format with every variable
// wsgate knows, and one authorizer context property.
func everyVariableFormat() string {
	var parts []string
	for _, v := range append(accesslog.Variables(), "$context.authorizer.role", "$context.authorizer.level") {
		parts = append(parts, fmt.Sprintf("%q:%q", strings.TrimPrefix(v, "$context."), v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// volatile are the variables whose values change from run to run; the
// golden file has a placeholder for them (or "-" when absent).
var volatile = map[string]string{
	"requestId": "<requestId>", "extendedRequestId": "<requestId>", "integration.requestId": "<requestId>",
	"authorizer.requestId": "<requestId>", "messageId": "<messageId>", "connectionId": "<connectionId>",
	"requestTime": "<requestTime>", "requestTimeEpoch": "<epochMillis>", "connectedAt": "<epochMillis>",
	"integrationLatency": "<millis>", "integration.latency": "<millis>", "authorizer.latency": "<millis>",
	"authorizer.integrationLatency": "<millis>", "domainName": "<host:port>",
}

// TestAccessLogGolden: the access log of the scripted session, in a JSON
// format with every variable, matches testdata/accesslog.golden (run with
// -update to rewrite it). Ids, times and latencies are checked for shape
// and replaced by placeholders.
func TestAccessLogGolden(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "access.log")
	block := fmt.Sprintf("accessLog: { destination: %q, format: %q }\n", logFile, everyVariableFormat())
	srv := startServer(t, fmt.Sprintf(observedConfig, block))
	lines := func() []string {
		b, _ := os.ReadFile(logFile)
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	session(t, srv, func(n int) {
		testenv.Eventually(t, 15*time.Second, func() error {
			if l := lines(); len(l) != n || l[0] == "" {
				return fmt.Errorf("%d lines, want %d", len(l), n)
			}
			return nil
		})
	})
	testenv.Eventually(t, 15*time.Second, func() error {
		if l := lines(); len(l) != 5 {
			return fmt.Errorf("%d lines, want 5 (with the disconnect)", len(l))
		}
		return nil
	})
	var got bytes.Buffer
	conns := map[string]bool{}
	for i, line := range lines() {
		var rec map[string]string
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		for k, placeholder := range volatile {
			v := rec[k]
			if v == "-" {
				continue
			}
			if v == "" {
				t.Errorf("line %d: %s empty, want a value or -", i+1, k)
			}
			if k == "connectionId" {
				conns[v] = true
			}
			rec[k] = placeholder
		}
		enc := json.NewEncoder(&got)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rec) // keys sorted
	}
	if len(conns) != 1 {
		t.Errorf("connection ids %v, want one for the whole session", conns)
	}
	golden := filepath.Join("testdata", "accesslog.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("access log differs from %s (run with -update to accept):\n%s", golden, got.String())
	}
}

// TestAccessLogUnknownVariable: a format naming a variable API Gateway
// does not have is a config error naming it.
func TestAccessLogUnknownVariable(t *testing.T) {
	_, err := server.ParseConfig([]byte(`accessLog: { format: "$context.requestId $context.requestIdd $context.status." }`))
	if err == nil || !strings.Contains(err.Error(), "accessLog.format: unknown variable $context.requestIdd") {
		t.Fatalf("error %v, want accessLog.format: unknown variable $context.requestIdd", err)
	}
	for _, bad := range []string{`admin: { listen: "nope" }`, `accessLog: { format: "" }`, `accessLog: { format: "x", bufferLines: -1 }`} {
		if _, err := server.ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// readyz fetches /readyz.
func readyz(t *testing.T, srv *server.Server) (int, server.Readiness) {
	t.Helper()
	resp, err := http.Get("http://" + srv.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r server.Readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, r
}

// TestHealthAndReadiness: /healthz answers while the process serves;
// /readyz is 200 with a running stream, 503 naming the stream once it has
// failed, 503 when an added check fails, and 503 once shutdown began.
func TestHealthAndReadiness(t *testing.T) {
	db, _ := sqliteDB(t)
	srv := startServer(t, ordersStream(db, "{ group: orders }")+`admin: { listen: "127.0.0.1:0" }`+"\n")
	resp, err := http.Get("http://" + srv.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		if status, r := readyz(t, srv); status != 200 || !r.Ready {
			return fmt.Errorf("/readyz %d %+v", status, r)
		}
		return nil
	})
	notYet := fmt.Errorf("not registered yet")
	srv.AddReadyCheck("cluster", func() error { return notYet })
	if status, r := readyz(t, srv); status != 503 || r.Ready || !slices.Contains(r.Reasons, "cluster: not registered yet") {
		t.Errorf("/readyz with a failing check: %d %+v", status, r)
	}
	notYet = nil

	// The stream's source fails for good: /readyz flips.
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ckpt := filepath.Join(t.TempDir(), "ckpt.json")
	if err := os.WriteFile(ckpt, []byte(`{"streamArn":"arn:aws:dynamodb:us-east-1:1`), 0o644); err != nil {
		t.Fatal(err)
	}
	failing := startServer(t, subscribeRoute+fmt.Sprintf(`
admin: { listen: "127.0.0.1:0" }
streams:
  - name: ddb
    source: { type: dynamodb, streamArn: "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2024-01-01T00:00:00.000", endpoint: "http://127.0.0.1:1", checkpoint: %q }
    target: { group: orders }
`, ckpt))
	testenv.Eventually(t, 15*time.Second, func() error {
		status, r := readyz(t, failing)
		if status != 503 || r.Ready || len(r.Reasons) != 1 || !strings.HasPrefix(r.Reasons[0], "stream ddb: failed: ") {
			return fmt.Errorf("/readyz %d %+v, want 503 naming the failed stream", status, r)
		}
		return nil
	})
	fams := scrape(t, failing)
	if err := checkMetrics(fams, []want{
		{"wsgate_stream_state", []string{"stream", "ddb", "state", "failed"}, 1},
		{"wsgate_stream_state", []string{"stream", "ddb", "state", "running"}, 0},
		{"wsgate_stream_delivered_total", []string{"stream", "ddb"}, 0},
		{"wsgate_stream_stops_total", []string{"stream", "ddb", "reason", "shutdown"}, 0},
		{"wsgate_stream_stops_total", []string{"stream", "ddb", "reason", "lease_lost"}, 0},
		{"wsgate_stream_batches_cut_total", []string{"stream", "ddb"}, 0},
	}); err != nil {
		t.Error(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := srv.Ready(); r.Ready || !slices.Contains(r.Reasons, "listener: shutting down") {
		t.Errorf("after Shutdown: %+v", r)
	}
}

// TestNoAdminListener: without an admin block nothing else listens.
func TestNoAdminListener(t *testing.T) {
	srv := startServer(t, interopConfig)
	if srv.AdminAddr() != "" {
		t.Fatalf("admin listener at %s without an admin block", srv.AdminAddr())
	}
}

// TestFunctionMetrics: a local function's first invocation is a cold
// start, the next reuses the process, and a handler that raises counts
// as an error and an execution error of its route.
func TestFunctionMetrics(t *testing.T) {
	testenv.LookPath(t, "python3", "apt-get install -y python3")
	dir := t.TempDir()
	code := "def handler(event, context):\n    if '\"boom\"' in event.get('body', ''):\n        raise ValueError('boom')\n    return {'statusCode': 200, 'body': 'ok'}\n"
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, fmt.Sprintf(`
listen: "127.0.0.1:0"
stage: dev
credentials: [{ accessKeyId: AKIDLOCAL, secretAccessKey: change-me }]
admin: { listen: "127.0.0.1:0" }
globals: { cacheDir: %q }
functions:
  Fn: { runtime: python3.11, handler: app.handler, codeUri: %q }
routes:
  run: { integration: { type: lambda, function: Fn }, routeResponseSelectionExpression: "$default" }
`, t.TempDir(), dir))
	c := dial(t, srv)
	for _, msg := range []string{`{"action":"run"}`, `{"action":"run"}`, `{"action":"run","x":"boom"}`} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		read(t, c)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		return checkMetrics(scrape(t, srv), []want{
			{"wsgate_function_cold_starts_total", []string{"function", "Fn"}, 1},
			{"wsgate_function_processes", []string{"function", "Fn"}, 1},
			{"wsgate_function_invocations_total", []string{"function", "Fn"}, 3},
			{"wsgate_function_errors_total", []string{"function", "Fn"}, 1},
			{"wsgate_function_init_duration_seconds", []string{"function", "Fn"}, 1},
			{"wsgate_function_duration_seconds", []string{"function", "Fn"}, 3},
			{"wsgate_execution_errors_total", []string{"route", "run"}, 1},
			{"wsgate_integration_latency_seconds", []string{"route", "run"}, 3},
		})
	})
}

// TestStreamStopReasons: the reason label of wsgate_stream_stops_total
// takes every value streams.StopReason gives.
func TestStreamStopReasons(t *testing.T) {
	if !slices.Equal(metrics.StreamStopReasons, streams.StopReasons) {
		t.Fatalf("metrics %v, streams %v", metrics.StreamStopReasons, streams.StopReasons)
	}
}
