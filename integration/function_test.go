package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
