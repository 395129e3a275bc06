package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// newTestCommand builds a command integration for a test handler and closes
// it with the test.
func newTestCommand(t testing.TB, cfg Config, env Env) Integration {
	t.Helper()
	cfg.Type = "command"
	if cfg.Command == nil {
		cfg.Command = []string{handlerPath("handler")}
	}
	in, err := New(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	return in
}

type handlerResponse struct {
	StatusCode int               `json:"statusCode"`
	Body       string            `json:"body"`
	Env        map[string]string `json:"env"`
	Context    map[string]string `json:"context"`
	PID        int               `json:"pid"`
}

func invokeOp(t *testing.T, in Integration, event string) (handlerResponse, error) {
	t.Helper()
	out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(event)})
	if err != nil {
		return handlerResponse{}, err
	}
	var r handlerResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("answer %q: %v", out, err)
	}
	return r, nil
}

func TestCommandEcho(t *testing.T) {
	in := newTestCommand(t, Config{}, Env{})
	first, err := invokeOp(t, in, `{"body":"hello"}`)
	if err != nil {
		t.Fatal(err)
	}
	if first.StatusCode != 200 || first.Body != "hello" {
		t.Fatalf("got %+v", first)
	}
	second, err := invokeOp(t, in, `{"body":"again"}`)
	if err != nil {
		t.Fatal(err)
	}
	if second.Body != "again" || second.PID != first.PID {
		t.Fatalf("second invocation %+v did not reuse the warm process %d", second, first.PID)
	}
}

// TestCommandFailuresAreIsolated checks that each way a handler can fail
// fails only its own invocation, and the next one works.
func TestCommandFailuresAreIsolated(t *testing.T) {
	tests := []struct {
		name     string
		event    string
		wantType string // FunctionError type; "" for a timeout
		wantMsg  string
		newPID   bool // the next invocation runs on a fresh process
	}{
		{name: "error", event: `{"op":"error"}`, wantType: "errorString", wantMsg: "handler failed on purpose"},
		{name: "panic", event: `{"op":"panic"}`, wantMsg: "handler panicked on purpose", newPID: true},
		{name: "exit", event: `{"op":"exit"}`, wantType: "Runtime.ExitError", wantMsg: "exit status 3", newPID: true},
		{name: "timeout", event: `{"op":"sleep","millis":60000}`, newPID: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := newTestCommand(t, Config{TimeoutMillis: 1000}, Env{})
			before, err := invokeOp(t, in, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			_, err = invokeOp(t, in, tc.event)
			if tc.wantType == "" && tc.wantMsg == "" {
				if !errors.Is(err, ErrTimeout) {
					t.Fatalf("got %v, want ErrTimeout", err)
				}
			} else {
				var fe *FunctionError
				if !errors.As(err, &fe) {
					t.Fatalf("got %v (%T), want *FunctionError", err, err)
				}
				if tc.wantType != "" && fe.Type != tc.wantType {
					t.Errorf("type %q, want %q", fe.Type, tc.wantType)
				}
				if !strings.Contains(fe.Message, tc.wantMsg) {
					t.Errorf("message %q, want it to contain %q", fe.Message, tc.wantMsg)
				}
			}
			after, err := invokeOp(t, in, `{"body":"next"}`)
			if err != nil {
				t.Fatalf("invocation after the failure: %v", err)
			}
			if after.Body != "next" {
				t.Fatalf("got %+v", after)
			}
			if tc.newPID == (after.PID == before.PID) {
				t.Errorf("pid before %d, after %d; want a fresh process: %v", before.PID, after.PID, tc.newPID)
			}
		})
	}
}

func TestCommandInitExit(t *testing.T) {
	logs := newRecorder()
	in := newTestCommand(t, Config{Command: []string{handlerPath("initexit")}}, Env{Logger: slog.New(logs)})
	for i := range 2 { // each invocation gets a fresh process, which fails the same way
		_, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`), RequestID: fmt.Sprint("req-", i)})
		var fe *FunctionError
		if !errors.As(err, &fe) || fe.Type != "Runtime.ExitError" || !strings.Contains(fe.Message, "exit status 1") {
			t.Fatalf("invocation %d: got %v, want Runtime.ExitError with exit status 1", i, err)
		}
		if !strings.Contains(fe.Message, fmt.Sprint("RequestId: req-", i)) {
			t.Errorf("message %q does not name the request", fe.Message)
		}
	}
	if _, ok := logs.find("init failed: missing configuration"); !ok {
		t.Error("init output did not reach the logger")
	}
}

func TestCommandEnvironment(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "gateway-secret-must-not-leak")
	t.Setenv("WSGATE_TEST_LEAK", "x")
	in := newTestCommand(t, Config{
		FunctionName: "chat",
		MemorySizeMB: 256,
		Env:          map[string]string{"APP_SETTING": "on", "AWS_REGION": "eu-west-3"},
	}, Env{
		Region:             "eu-west-1",
		AccessKeyID:        "AKIDCALLBACK",
		SecretAccessKey:    "callback-secret",
		ManagementEndpoint: "http://127.0.0.1:1234/dev",
	})
	start := time.Now()
	out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"op":"env"}`), RequestID: "req-env-1"})
	if err != nil {
		t.Fatal(err)
	}
	var r handlerResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":                 "chat",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE":          "256",
		"AWS_LAMBDA_FUNCTION_VERSION":              "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":                "/aws/lambda/chat",
		"AWS_REGION":                               "eu-west-3", // cfg.Env wins
		"AWS_DEFAULT_REGION":                       "eu-west-1",
		"AWS_ACCESS_KEY_ID":                        "AKIDCALLBACK",
		"AWS_SECRET_ACCESS_KEY":                    "callback-secret",
		"WSGATE_MANAGEMENT_ENDPOINT":               "http://127.0.0.1:1234/dev",
		"AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI": "http://127.0.0.1:1234/dev",
		"AWS_EXECUTION_ENV":                        "AWS_Lambda_wsgate",
		"_HANDLER":                                 "handler",
		"LAMBDA_TASK_ROOT":                         wd,
		"TZ":                                       ":UTC",
		"APP_SETTING":                              "on",
		"PATH":                                     os.Getenv("PATH"),
	}
	for k, v := range want {
		if got := r.Env[k]; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"_LAMBDA_SERVER_PORT", "WSGATE_TEST_LEAK"} {
		if v, ok := r.Env[k]; ok {
			t.Errorf("%s is set (%q)", k, v)
		}
	}
	if !strings.HasPrefix(r.Env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", r.Env["AWS_LAMBDA_RUNTIME_API"])
	}
	ctxWant := map[string]string{
		"functionName":       "chat",
		"functionVersion":    "$LATEST",
		"memoryLimitInMB":    "256",
		"logGroupName":       "/aws/lambda/chat",
		"awsRequestId":       "req-env-1",
		"invokedFunctionArn": "arn:aws:lambda:eu-west-1:000000000000:function:chat",
	}
	for k, v := range ctxWant {
		if got := r.Context[k]; got != v {
			t.Errorf("lambdacontext %s = %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(r.Context["logStreamName"], "/[$LATEST]") {
		t.Errorf("logStreamName = %q", r.Context["logStreamName"])
	}
	if !strings.HasPrefix(r.Context["traceId"], "Root=1-") {
		t.Errorf("trace id = %q", r.Context["traceId"])
	}
	dl, err := time.Parse(time.RFC3339Nano, r.Context["deadline"])
	if err != nil {
		t.Fatal(err)
	}
	// The deadline is start + the 3 s default timeout, at millisecond precision.
	if lo, hi := start.Add(DefaultCommandTimeout-time.Millisecond), time.Now().Add(DefaultCommandTimeout); dl.Before(lo) || dl.After(hi) {
		t.Errorf("deadline %v not within [%v, %v]", dl, lo, hi)
	}
}

func TestCommandOutputReachesLogger(t *testing.T) {
	logs := newRecorder()
	in := newTestCommand(t, Config{FunctionName: "logger"}, Env{Logger: slog.New(logs)})
	if _, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"op":"log"}`), RequestID: "req-log-1"}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"to stdout req-log-1", "to stderr req-log-1"} {
		testenv.Eventually(t, 30*time.Second, func() error {
			attrs, ok := logs.find(line)
			if !ok {
				return fmt.Errorf("no log record %q", line)
			}
			if attrs["requestId"] != "req-log-1" || attrs["function"] != "logger" {
				return fmt.Errorf("record %q has attributes %v", line, attrs)
			}
			return nil
		})
	}
}

// TestCommandConcurrency runs more gated invocations than the pool allows:
// the first Concurrency block inside the handler until released, so if the
// pool let more run at once they would need more processes than the limit.
func TestCommandConcurrency(t *testing.T) {
	const limit, total = 3, 7
	dir := t.TempDir()
	in := newTestCommand(t, Config{Concurrency: limit, TimeoutMillis: 60000}, Env{})
	var wg sync.WaitGroup
	pids := make(chan int, total)
	errs := make(chan error, total)
	for i := range total {
		wg.Go(func() {
			ev := fmt.Sprintf(`{"op":"gate","dir":%q,"tag":"%d"}`, dir, i)
			out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(ev)})
			if err != nil {
				errs <- err
				return
			}
			var r handlerResponse
			if err := json.Unmarshal(out, &r); err != nil {
				errs <- err
				return
			}
			pids <- r.PID
		})
	}
	count := func(prefix string) int {
		m, _ := filepath.Glob(filepath.Join(dir, prefix+"-*"))
		return len(m)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := count("start"); n != limit {
			return fmt.Errorf("%d handlers started, want %d", n, limit)
		}
		return nil
	})
	if n := count("end"); n != 0 {
		t.Fatalf("%d handlers ended before release", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	close(pids)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for pid := range pids {
		seen[pid] = true
	}
	if count("start") != total || count("end") != total {
		t.Fatalf("started %d, ended %d, want %d", count("start"), count("end"), total)
	}
	if len(seen) != limit {
		t.Fatalf("invocations ran on %d processes, want exactly %d", len(seen), limit)
	}
}

// TestCommandWaitRespectsTimeout checks that an invocation queued behind a
// busy process gives up at its deadline with ErrTimeout.
func TestCommandWaitRespectsTimeout(t *testing.T) {
	dir := t.TempDir()
	in := newTestCommand(t, Config{TimeoutMillis: 60000}, Env{})
	done := make(chan error, 1)
	go func() {
		_, err := in.Invoke(context.Background(), &Invocation{Payload: fmt.Appendf(nil, `{"op":"gate","dir":%q,"tag":"a"}`, dir)})
		done <- err
	}()
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := os.Stat(filepath.Join(dir, "start-a"))
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := in.Invoke(ctx, &Invocation{Payload: []byte(`{}`)}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("queued invocation: got %v, want ErrTimeout", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := in.Invoke(ctx, &Invocation{Payload: []byte(`{}`)}); err == nil || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled invocation: got %v, want a cancellation error", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCommandCloseKillsProcesses checks that Close fails what is running and
// leaves no process behind.
func TestCommandCloseKillsProcesses(t *testing.T) {
	in := newTestCommand(t, Config{Concurrency: 2, TimeoutMillis: 60000}, Env{})
	r, err := invokeOp(t, in, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"op":"sleep","millis":60000}`)})
		done <- err
	}()
	c := in.(*commandIntegration)
	testenv.Eventually(t, 10*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.all) != 1 || len(c.idle) != 0 {
			return fmt.Errorf("%d processes, %d idle", len(c.all), len(c.idle))
		}
		return nil
	})
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("running invocation survived Close")
	}
	if err := testenv.ProcessGone(r.PID); err != nil { // a zombie counts: Close must have reaped it
		t.Fatal(err)
	}
	if _, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)}); err == nil {
		t.Fatal("Invoke after Close succeeded")
	}
	if err := in.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCommandInitError(t *testing.T) {
	in := newTestCommand(t, Config{Command: []string{handlerPath("initerror")}}, Env{})
	c := in.(*commandIntegration)
	for i := range 2 {
		_, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
		var fe *FunctionError
		if !errors.As(err, &fe) || fe.Type != "Runtime.ConfigError" || fe.Message != "cannot load config" {
			t.Fatalf("invocation %d: got %v, want the init error", i, err)
		}
		c.mu.Lock()
		n := len(c.all)
		c.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d processes left after an init error; the runner must end them", n)
		}
	}
}

func TestCommandMissingProgram(t *testing.T) {
	in := newTestCommand(t, Config{Command: []string{filepath.Join(t.TempDir(), "absent")}}, Env{})
	_, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
	var fe *FunctionError
	if err == nil || errors.As(err, &fe) || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want a plain error", err)
	}
	if _, err := New(Config{Type: "command", Command: []string{"x"}, Dir: filepath.Join(t.TempDir(), "absent")}, Env{}); err == nil {
		t.Fatal("missing dir accepted")
	}
	if _, err := New(Config{Type: "command", Command: []string{"x"}, Env: map[string]string{"_LAMBDA_SERVER_PORT": "1"}}, Env{}); err == nil {
		t.Fatal("_LAMBDA_SERVER_PORT accepted")
	}
}

// TestCommandCallerGivesUp checks that an invocation whose caller cancels
// keeps its process until the handler answers, and that the process then
// serves the next invocation.
func TestCommandCallerGivesUp(t *testing.T) {
	dir := t.TempDir()
	in := newTestCommand(t, Config{TimeoutMillis: 60000}, Env{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := in.Invoke(ctx, &Invocation{Payload: fmt.Appendf(nil, `{"op":"gate","dir":%q,"tag":"a"}`, dir)})
		done <- err
	}()
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := os.Stat(filepath.Join(dir, "start-a"))
		return err
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	next := make(chan handlerResponse, 1)
	go func() {
		var r handlerResponse
		out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"body":"next"}`)})
		if err == nil {
			err = json.Unmarshal(out, &r)
		}
		if err != nil {
			t.Error(err)
		}
		next <- r
	}()
	// The next invocation waits for the abandoned one's process.
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := <-next
	pid, err := os.ReadFile(filepath.Join(dir, "start-a"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Body != "next" || fmt.Sprint(r.PID) != string(pid) {
		t.Fatalf("got %+v, want it served by the same process %s", r, pid)
	}
}

func BenchmarkCommandInvoke(b *testing.B) {
	in := newTestCommand(b, Config{Concurrency: 4}, Env{})
	inv := &Invocation{Payload: []byte(`{"body":"hello"}`)}
	b.ReportAllocs()
	b.SetParallelism(1) // GOMAXPROCS goroutines over 4 processes
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := in.Invoke(context.Background(), inv); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCommandInvokeSerial(b *testing.B) {
	in := newTestCommand(b, Config{}, Env{})
	inv := &Invocation{Payload: []byte(`{"body":"hello"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.Invoke(context.Background(), inv); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCommandSlowColdStart checks that a cold start is not charged to the
// function's timeout: a handler whose init outlasts its timeout answers its
// first event, as Lambda's separate init phase allows. The timeout is a
// generous 10 s (the handler's answer after init must fit in it on a loaded
// machine: 100 ms did not at load 50), so the init sleeps 11 s, under an init
// limit raised for the test (TestCommandInitTimeout covers that limit).
func TestCommandSlowColdStart(t *testing.T) {
	const timeout = 10 * time.Second
	in := newTestCommand(t, Config{TimeoutMillis: int(timeout.Milliseconds()), Env: map[string]string{
		"TEST_INIT_SLEEP_MS": strconv.Itoa(int((timeout + time.Second).Milliseconds()))}}, Env{})
	in.(*commandIntegration).initTimeout = time.Minute
	out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"body":"first"}`)})
	if err != nil {
		t.Fatalf("first invocation: %v (the cold start must not count against the %v timeout)", err, timeout)
	}
	if !strings.Contains(string(out), "first") {
		t.Fatalf("first invocation answered %s", out)
	}
}

// TestCommandColdStartOutlastsCaller checks that a cold start longer than the
// caller's own deadline fails that caller with a timeout but goes on, and
// serves a later invocation.
func TestCommandColdStartOutlastsCaller(t *testing.T) {
	in := newTestCommand(t, Config{Env: map[string]string{"TEST_INIT_SLEEP_MS": "500"}}, Env{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := in.Invoke(ctx, &Invocation{Payload: []byte(`{}`)}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first invocation: got %v, want ErrTimeout (the cold start is longer than the caller's deadline)", err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"body":"warm"}`)})
		return err
	})
}

// TestCommandInitTimeout checks that a process stuck in init is killed at
// the init limit, failing the invocation that waits for it.
func TestCommandInitTimeout(t *testing.T) {
	in := newTestCommand(t, Config{TimeoutMillis: 100, Env: map[string]string{"TEST_INIT_SLEEP_MS": "600000"}}, Env{})
	c := in.(*commandIntegration)
	c.initTimeout = 300 * time.Millisecond
	_, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "Runtime.ExitError" {
		t.Fatalf("got %v, want the Runtime.ExitError of the killed init", err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if n := len(c.all); n != 0 {
			return fmt.Errorf("%d processes still alive", n)
		}
		return nil
	})
}

// TestCommandPythonRuntime runs a custom runtime written in plain Python:
// Content-Length bodies instead of Go's chunked ones, and the error type in
// the header.
func TestCommandPythonRuntime(t *testing.T) {
	python := testenv.LookPath(t, "python3", "apt-get install -y python3")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	in := newTestCommand(t, Config{
		Command:      []string{python, "-u", "bootstrap.py"},
		Dir:          filepath.Join(wd, "testdata", "python"),
		FunctionName: "py",
		// A cold start of python3 takes over Lambda's default 3 s on a
		// loaded 2-core machine; the test is about the protocol.
		TimeoutMillis: 20000,
	}, Env{})
	for _, body := range []string{"one", "two"} {
		out, err := in.Invoke(context.Background(), &Invocation{Payload: fmt.Appendf(nil, `{"body":%q}`, body)})
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ Body, Function, Deadline string }
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		if r.Body != body || r.Function != "py" || r.Deadline == "" {
			t.Fatalf("got %s", out)
		}
	}
	_, err = in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"op":"error"}`)})
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "ValueError" || fe.Message != "python says no" {
		t.Fatalf("got %v, want the ValueError", err)
	}
	if out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"body":"after"}`)}); err != nil {
		t.Fatalf("after the error: %s, %v", out, err)
	}
}

// TestCommandOutputIsRateLimited: a handler that floods its output (100,000
// lines and one line of 1 MB) reaches the log at logLinesPerSecond, lines cut
// at 8 KB, and every dropped line is counted in a report.
func TestCommandOutputIsRateLimited(t *testing.T) {
	const lines, rate = 100000, 10
	logs := newRecorder()
	script := fmt.Sprintf(`yes chatty | head -n %d; head -c 1000000 /dev/zero | tr '\0' x; echo; exec %s`, lines, handlerPath("handler"))
	in := newTestCommand(t, Config{Command: []string{"/bin/sh", "-c", script}, LogLinesPerSecond: rate, TimeoutMillis: 60000}, Env{Logger: slog.New(logs)})
	start := time.Now()
	if _, err := invokeOp(t, in, `{}`); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil { // flushes the output and the last report
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	logged, dropped, longest := 0, int64(0), 0
	logs.shared.mu.Lock()
	for _, rec := range logs.shared.records {
		switch {
		case rec.Message == "function output rate limited":
			rec.Attrs(func(a slog.Attr) bool {
				if a.Key == "droppedLines" {
					dropped += a.Value.Int64()
				}
				return true
			})
		case rec.Message == "chatty" || strings.HasPrefix(rec.Message, "xxx"):
			logged++
			longest = max(longest, len(rec.Message))
		}
	}
	logs.shared.mu.Unlock()
	// At most a full bucket plus the refill over the test's whole run.
	if bound := rate + int(elapsed.Seconds()*rate) + 1; logged > bound {
		t.Errorf("%d output lines logged in %v, want at most %d", logged, elapsed, bound)
	}
	if logged == 0 {
		t.Error("no output line logged")
	}
	if int64(logged)+dropped < lines+1 {
		t.Errorf("%d logged + %d reported dropped < %d lines written", logged, dropped, lines+1)
	}
	if longest > maxLogLine {
		t.Errorf("a logged line has %d bytes, limit %d", longest, maxLogLine)
	}
}

// TestCommandKillsSetsidGrandchild: a process the handler started in a new
// session (out of its process group) is killed when the integration closes.
func TestCommandKillsSetsidGrandchild(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("needs /proc")
	}
	setsid := testenv.LookPath(t, "setsid", "apt-get install -y util-linux")
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := fmt.Sprintf(`%s sleep 1000 & echo $! > %s; exec %s`, setsid, pidFile, handlerPath("handler"))
	in := newTestCommand(t, Config{Command: []string{"/bin/sh", "-c", script}}, Env{})
	r, err := invokeOp(t, in, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	})
	testenv.Eventually(t, 10*time.Second, func() error { // setsid has run: another session than the handler's
		_, gs, err := procStat(pid)
		if err != nil {
			return err
		}
		_, hs, err := procStat(r.PID)
		if err != nil {
			return err
		}
		if gs == hs {
			return fmt.Errorf("grandchild %d still in the handler's session %d", pid, hs)
		}
		return nil
	})
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error { return deadOrGone(pid) })
}

// deadOrGone reports an error while pid is a live process; a zombie (dead,
// not yet reaped by its new parent) counts as gone.
func deadOrGone(pid int) error {
	state, _, err := procStat(pid)
	if err != nil || state == 'Z' {
		return nil
	}
	return fmt.Errorf("process %d still alive (state %c)", pid, state)
}

// procStat reads a process's state and session id from /proc/PID/stat.
func procStat(pid int) (state byte, session int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) state ppid pgrp session ..."; comm may hold spaces and
	// parentheses, so the fields start after the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 4 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat: %s", pid, b)
	}
	session, err = strconv.Atoi(f[3])
	return f[0][0], session, err
}
