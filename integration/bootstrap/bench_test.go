package bootstrap_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/integration/bootstrap"
	"github.com/wsgate/wsgate/internal/testenv"
)

// benchFunctions are the smallest handler of each runtime family.
func benchFunctions(b *testing.B) map[string]integration.FunctionConfig {
	testenv.LookPath(b, "node", "apt-get install -y nodejs")
	testenv.LookPath(b, "python3", "apt-get install -y python3")
	dir := codeDir(b, "bench", "")
	provided := b.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(provided, "bootstrap"), "../testdata/handler")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return map[string]integration.FunctionConfig{
		"nodejs20.x":      {Runtime: "nodejs20.x", Handler: "index.handler", CodeURI: dir},
		"python3.11":      {Runtime: "python3.11", Handler: "app.handler", CodeURI: dir},
		"provided.al2023": {Runtime: "provided.al2023", CodeURI: provided},
	}
}

var benchEvent = &integration.Invocation{Payload: []byte(`{"body":"hello"}`)}

// benchEnv is what a wsgate serving TLS (the default) gives its functions
// beyond Lambda's variables, so the runtime clients' execute-api routing and
// botocore hook are part of the cold start measured.
var benchEnv = integration.Env{HandlerEnv: map[string]string{
	"WSGATE_EXECUTE_API_HOST": "local.execute-api.us-east-1.amazonaws.com",
	"WSGATE_EXECUTE_API_ADDR": "127.0.0.1:8080",
	"WSGATE_CA_BUNDLE":        "/nonexistent/ca-bundle.pem",
}}

// BenchmarkColdStart measures a cold start per runtime: starting the
// process, the runtime client, importing the handler and answering one
// event. Building and closing the pool are not timed.
func BenchmarkColdStart(b *testing.B) {
	for name, fc := range benchFunctions(b) {
		b.Run(name, func(b *testing.B) {
			cache := b.TempDir()
			for range b.N {
				b.StopTimer()
				fns, err := integration.NewFunctions(map[string]integration.FunctionConfig{"F": fc},
					integration.Globals{CacheDir: cache}, benchEnv)
				if err != nil {
					b.Fatal(err)
				}
				in, err := integration.New(integration.Config{Type: "lambda", Function: "F"}, integration.Env{Functions: fns})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := in.Invoke(context.Background(), benchEvent); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = fns.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkWarmInvoke measures one event on a warm process per runtime:
// the Runtime API round trip, the client's JSON and the handler call.
func BenchmarkWarmInvoke(b *testing.B) {
	for name, fc := range benchFunctions(b) {
		b.Run(name, func(b *testing.B) {
			fns, err := integration.NewFunctions(map[string]integration.FunctionConfig{"F": fc},
				integration.Globals{CacheDir: b.TempDir()}, benchEnv)
			if err != nil {
				b.Fatal(err)
			}
			defer fns.Close()
			in, err := integration.New(integration.Config{Type: "lambda", Function: "F"}, integration.Env{Functions: fns})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := in.Invoke(context.Background(), benchEvent); err != nil { // warm up
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := in.Invoke(context.Background(), benchEvent); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInterpreterStart is the floor under a cold start: the bare
// interpreter starting and exiting, with no runtime client or handler.
func BenchmarkInterpreterStart(b *testing.B) {
	for name, argv := range map[string][]string{
		"nodejs20.x": {"node", "-e", "0"},
		"python3.11": {"python3", "-c", "pass"},
	} {
		rt, _ := bootstrap.Lookup(name)
		ip, _, err := rt.FindInterpreter(argv[0], true)
		if err != nil {
			b.Skip(err)
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				if out, err := exec.Command(ip.Path, argv[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}
