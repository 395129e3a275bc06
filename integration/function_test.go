package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestHandlerSessionToken checks that the first credential's session token
// reaches handlers as AWS_SESSION_TOKEN (without it their signed management
// calls are refused), and that HandlerEnv is passed on.
func TestHandlerSessionToken(t *testing.T) {
	in := newTestCommand(t, Config{}, Env{AccessKeyID: "ASIAX", SecretAccessKey: "s", SessionToken: "tok",
		HandlerEnv: map[string]string{"AWS_CA_BUNDLE": "/ca.pem"}})
	out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"op":"env"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var r handlerResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Env["AWS_ACCESS_KEY_ID"] != "ASIAX" || r.Env["AWS_SESSION_TOKEN"] != "tok" || r.Env["AWS_CA_BUNDLE"] != "/ca.pem" {
		t.Fatalf("env %v", r.Env)
	}
}

// TestLocalFunctionRouting checks which lambda integrations run locally: a
// defined name does, with AWS-only options refused; any other name is AWS
// Lambda's.
func TestLocalFunctionRouting(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fns, err := NewFunctions(map[string]FunctionConfig{"Local": {Runtime: "provided.al2023", CodeURI: dir}},
		Globals{CacheDir: t.TempDir()}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer fns.Close()
	env := Env{Functions: fns, Region: "us-east-1"}
	in, err := New(Config{Type: "lambda", Function: "Local"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := in.(*localLambda); !ok {
		t.Fatalf("Local built %T, want the local function", in)
	}
	if _, err := New(Config{Type: "lambda", Function: "Local", Endpoint: "http://127.0.0.1:1"}, env); err == nil ||
		!strings.Contains(err.Error(), "runs locally; endpoint, profile, region and qualifier do not apply") {
		t.Fatalf("endpoint on a local function: %v", err)
	}
	in, err = New(Config{Type: "lambda", Function: "Elsewhere"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := in.(*lambdaIntegration); !ok {
		t.Fatalf("Elsewhere built %T, want AWS Lambda", in)
	}
	if got := fns.Names(); len(got) != 1 || got[0] != "Local" {
		t.Fatalf("Names() = %v", got)
	}
}

// TestFunctionMissingInterpreter checks the error when the runtime's
// interpreter is not installed.
func TestFunctionMissingInterpreter(t *testing.T) {
	for _, tc := range []struct{ runtime, want string }{
		{"nodejs20.x", `Node.js is needed and "/nonexistent/node" was not found`},
		{"python3.12", `Python 3 is needed and "/nonexistent/python" was not found`},
	} {
		_, err := NewFunctions(map[string]FunctionConfig{"F": {Runtime: tc.runtime, Handler: "app.handler", CodeURI: t.TempDir()}},
			Globals{CacheDir: t.TempDir(), Node: "/nonexistent/node", Python: "/nonexistent/python"}, Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.runtime, err, tc.want)
		}
	}
}

// TestCommandRecycle checks what serve --watch relies on: after a recycle an
// idle process is gone at once, and a busy one finishes its event and is then
// replaced rather than reused.
func TestCommandRecycle(t *testing.T) {
	in := newTestCommand(t, Config{}, Env{})
	c := in.(*commandIntegration)
	pid := func(payload string) int {
		t.Helper()
		out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		var r handlerResponse
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		return r.PID
	}
	first := pid(`{}`)
	if again := pid(`{}`); again != first {
		t.Fatalf("a warm process was not reused: %d then %d", first, again)
	}
	c.recycle()
	second := pid(`{}`)
	if second == first {
		t.Fatal("an idle process served after a recycle")
	}

	dir := t.TempDir()
	busy := make(chan int, 1)
	go func() {
		out, err := in.Invoke(context.Background(), &Invocation{Payload: fmt.Appendf(nil, `{"op":"gate","dir":%q,"tag":"a"}`, dir)})
		var r handlerResponse
		if err == nil {
			err = json.Unmarshal(out, &r)
		}
		if err != nil {
			t.Error(err)
		}
		busy <- r.PID
	}()
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := os.Stat(filepath.Join(dir, "start-a"))
		return err
	})
	c.recycle() // while the gate holds the process
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := <-busy; p != second {
		t.Fatalf("the busy event ran on %d, want %d", p, second)
	}
	if third := pid(`{}`); third == second {
		t.Fatal("a process busy during the recycle was reused")
	}
}

// TestCommandWaitLimit checks the bound on a whole invocation without a
// caller's deadline: 29 s, or init plus timeout when longer.
func TestCommandWaitLimit(t *testing.T) {
	for _, tc := range []struct {
		timeoutMillis int
		want          time.Duration
	}{
		{3000, DefaultTimeout},
		{60000, 120 * time.Second}, // an init limit of 60 s (the timeout, being longer than 10 s) plus 60 s
	} {
		c := newTestCommand(t, Config{TimeoutMillis: tc.timeoutMillis}, Env{}).(*commandIntegration)
		if got := c.waitLimit(); got != tc.want {
			t.Errorf("timeout %d ms: wait limit %v, want %v", tc.timeoutMillis, got, tc.want)
		}
	}
}
