package bootstrap_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/integration/bootstrap"
	"github.com/wsgate/wsgate/internal/testenv"
)

// newFunction defines one function and returns a lambda integration that
// names it.
func newFunction(t *testing.T, fc integration.FunctionConfig) integration.Integration {
	t.Helper()
	if fc.TimeoutMillis == 0 {
		// Lambda's 3 s default (and the 10 s init limit it raises) is
		// too short for a runtime starting on a loaded machine (load 46:
		// 10-60 s); these tests are about what a failure looks like, not
		// how long it takes. The integration's own timeout (API Gateway's
		// 29 s by default) is raised above init plus invoke.
		fc.TimeoutMillis = 90000
	}
	fns, err := integration.NewFunctions(map[string]integration.FunctionConfig{"F": fc},
		integration.Globals{CacheDir: t.TempDir()}, integration.Env{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fns.Close() })
	in, err := integration.New(integration.Config{Type: "lambda", Function: "F", TimeoutMillis: integration.MaxTimeoutMillis}, integration.Env{Functions: fns})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// errorDoc is Lambda's error document: stackTrace for Python, trace for
// Node.js.
type errorDoc struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	StackTrace   []string `json:"stackTrace"`
	Trace        []string `json:"trace"`
	RequestID    string   `json:"requestId"`
}

// invokeError invokes and returns the function error and its document.
func invokeError(t *testing.T, in integration.Integration) (*integration.FunctionError, errorDoc) {
	t.Helper()
	out, err := in.Invoke(context.Background(), &integration.Invocation{Payload: []byte(`{}`), RequestID: "req-1"})
	var fe *integration.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("got %s, %v; want a function error", out, err)
	}
	var doc errorDoc
	if err := json.Unmarshal(fe.Payload, &doc); err != nil {
		t.Fatalf("error document %q: %v", fe.Payload, err)
	}
	if doc.ErrorType != fe.Type || doc.ErrorMessage != fe.Message {
		t.Fatalf("document %+v does not match %v", doc, fe)
	}
	return fe, doc
}

// TestNodeErrors checks that Node.js handler failures come back in Lambda's
// shape, with Lambda's error types for init failures and the exact install
// line when the AWS SDK Lambda bundles is missing.
func TestNodeErrors(t *testing.T) {
	testenv.LookPath(t, "node", "apt-get install -y nodejs")
	dir := codeDir(t, "errors-node", "")
	tests := []struct {
		name, handler, typ, msg, trace string
	}{
		{"async throw", "index.throws", "TypeError", "node says no", "index.js:3"},
		{"rejection", "index.rejects", "RangeError", "rejected", ""},
		{"callback error", "index.callbackError", "Error", "via callback", ""},
		{"not a function", "index.notAFunction", "Runtime.HandlerNotFound", "index.notAFunction is not a function", ""},
		{"not exported", "index.nope", "Runtime.HandlerNotFound", "index.nope is undefined or not exported", ""},
		{"no module", "absent.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'absent'", ""},
		{"malformed", "index", "Runtime.MalformedHandlerName", "Bad handler index", ""},
		{"syntax error", "syntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: ", ""},
		{"missing sdk at init", "missing-sdk.handler", "Runtime.ImportModuleError",
			"runtime bundles the AWS SDK for JavaScript v3; wsgate does not: run `npm install @aws-sdk/client-dynamodb` in " + dir, ""},
		{"missing sdk at invoke", "index.needsSdk", "Error",
			"run `npm install @aws-sdk/client-not-installed` in " + dir, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.handler == "index" {
				// Validate refuses a malformed handler before anything runs.
				fc := integration.FunctionConfig{Runtime: "nodejs20.x", Handler: tc.handler, CodeURI: dir}
				if err := fc.Validate(); err == nil || !strings.Contains(err.Error(), "want module.function") {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			in := newFunction(t, integration.FunctionConfig{Runtime: "nodejs20.x", Handler: tc.handler, CodeURI: dir})
			fe, doc := invokeError(t, in)
			if fe.Type != tc.typ || !strings.Contains(fe.Message, tc.msg) {
				t.Fatalf("got %s: %s, want %s: ...%s...", fe.Type, fe.Message, tc.typ, tc.msg)
			}
			if doc.Trace == nil {
				t.Fatalf("no trace in %s", fe.Payload)
			}
			if tc.trace != "" && !strings.Contains(strings.Join(doc.Trace, "\n"), tc.trace) {
				t.Fatalf("trace %q lacks %q", doc.Trace, tc.trace)
			}
		})
	}
}

// TestPythonErrors does the same for Python.
func TestPythonErrors(t *testing.T) {
	python := testenv.LookPath(t, "python3", "apt-get install -y python3")
	dir := codeDir(t, "errors-python", "")
	// A python3 without site-packages has no boto3, as a fresh machine.
	// It wraps the real program, not the python3 found on PATH: that may
	// be a pyenv shim, whose ~270 bash processes per start took this
	// case from 1 s to 8 s on a quiet machine (to a minute under load).
	rt, _ := bootstrap.Lookup("python3.11")
	resolved, _, err := rt.FindInterpreter(python, true)
	if err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(t.TempDir(), "python-bare")
	if err := os.WriteFile(bare, []byte("#!/bin/sh\nexec "+resolved.Path+" -S \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, handler, interp, typ, msg, trace string
	}{
		{"raise", "app.raises", "", "ValueError", "python says no", `app.py", line 5, in raises`},
		{"unserializable", "app.unserializable", "", "Runtime.MarshalError", "Unable to marshal response: Object of type object is not JSON serializable", ""},
		{"not found", "app.nope", "", "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'", ""},
		{"no module", "absent.handler", "", "Runtime.ImportModuleError", "Unable to import module 'absent': No module named 'absent'", ""},
		{"init raises", "initfails.handler", "", "RuntimeError", "init went wrong", "initfails.py"},
		{"missing boto3", "missing_boto.handler", bare, "Runtime.ImportModuleError",
			"No module named 'boto3'. Lambda's python3.11 runtime bundles boto3; wsgate does not: run `pip install boto3`", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newFunction(t, integration.FunctionConfig{Runtime: "python3.11", Handler: tc.handler, CodeURI: dir, Interpreter: tc.interp})
			fe, doc := invokeError(t, in)
			if fe.Type != tc.typ || !strings.Contains(fe.Message, tc.msg) {
				t.Fatalf("got %s: %s, want %s: ...%s...", fe.Type, fe.Message, tc.typ, tc.msg)
			}
			if doc.StackTrace == nil {
				t.Fatalf("no stackTrace in %s", fe.Payload)
			}
			if tc.trace != "" && !strings.Contains(strings.Join(doc.StackTrace, ""), tc.trace) {
				t.Fatalf("stackTrace %q lacks %q", doc.StackTrace, tc.trace)
			}
		})
	}
}

// TestProvidedRuntime runs an OS-only runtime function: the aws-lambda-go
// program built as codeUri/bootstrap, as Go functions ship to Lambda.
func TestProvidedRuntime(t *testing.T) {
	goTool := testenv.LookPath(t, "go", "install Go")
	dir := t.TempDir()
	build := exec.Command(goTool, "build", "-o", filepath.Join(dir, "bootstrap"), "../testdata/handler")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	in := newFunction(t, integration.FunctionConfig{Runtime: "provided.al2023", Handler: "ignored.by.go", CodeURI: dir})
	out, err := in.Invoke(context.Background(), &integration.Invocation{Payload: []byte(`{"op":"env"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Env     map[string]string
		Context map[string]string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Env["_HANDLER"] != "ignored.by.go" || r.Env["LAMBDA_TASK_ROOT"] != dir || r.Context["functionName"] != "F" {
		t.Fatalf("env %v, context %v", r.Env, r.Context)
	}
	if _, ok := r.Env["AWS_EXECUTION_ENV"]; ok {
		t.Errorf("AWS_EXECUTION_ENV = %q; Lambda sets none for OS-only runtimes", r.Env["AWS_EXECUTION_ENV"])
	}

	// Without a bootstrap the function is refused before anything runs.
	_, err = integration.NewFunctions(map[string]integration.FunctionConfig{
		"G": {Runtime: "provided.al2", CodeURI: t.TempDir()}}, integration.Globals{CacheDir: t.TempDir()}, integration.Env{})
	if err == nil || !strings.Contains(err.Error(), "needs an executable named bootstrap") {
		t.Fatalf("no bootstrap: %v", err)
	}
}

// TestNodeNonAsyncHandlers checks Lambda's rules for handlers that return
// no promise: the return value is ignored (the answer is null once the event
// loop is empty) and context.succeed answers.
func TestNodeNonAsyncHandlers(t *testing.T) {
	testenv.LookPath(t, "node", "apt-get install -y nodejs")
	dir := codeDir(t, "errors-node", "")
	for handler, want := range map[string]string{"index.syncReturn": "null", "index.succeed": `{"via":"succeed"}`} {
		in := newFunction(t, integration.FunctionConfig{Runtime: "nodejs20.x", Handler: handler, CodeURI: dir})
		out, err := in.Invoke(context.Background(), &integration.Invocation{Payload: []byte(`{}`)})
		if err != nil || string(out) != want {
			t.Errorf("%s: %s, %v; want %s", handler, out, err, want)
		}
	}
}
