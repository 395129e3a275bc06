package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// isolateAWS gives the SDK fixed credentials and no shared files or
// instance metadata, so a test never leaves loopback or reads the developer's
// ~/.aws.
func isolateAWS(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_LAMBDA":     "",
		"AWS_CA_BUNDLE":               "",
	} {
		t.Setenv(k, v)
	}
}

func newTestLambda(t *testing.T, cfg Config) Integration {
	t.Helper()
	cfg.Type = "lambda"
	in, err := New(cfg, Env{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	return in
}

// TestLambdaInvokeAPI checks the request the integration sends and how it
// maps each kind of Invoke API answer, against a loopback server that
// answers as Lambda does.
func TestLambdaInvokeAPI(t *testing.T) {
	isolateAWS(t)
	tests := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		want    string
		wantFE  *FunctionError
		wantErr []string
	}{
		{name: "success", status: 200, header: map[string]string{"X-Amz-Executed-Version": "3"},
			body: `{"statusCode":200,"body":"ok"}`, want: `{"statusCode":200,"body":"ok"}`},
		{name: "function error", status: 200, header: map[string]string{"X-Amz-Function-Error": "Unhandled"},
			body:   `{"errorMessage":"something went wrong!","errorType":"errorString"}`,
			wantFE: &FunctionError{Type: "errorString", Message: "something went wrong!"}},
		{name: "function error without document", status: 200, header: map[string]string{"X-Amz-Function-Error": "Unhandled"},
			body: `Task timed out`, wantFE: &FunctionError{Type: "Unhandled", Message: "Task timed out"}},
		{name: "not found", status: 404,
			header:  map[string]string{"X-Amzn-ErrorType": "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.awsgirlambda/"},
			body:    `{"Type":"User","Message":"Function not found: arn:aws:lambda:eu-west-1:123456789012:function:my-fn:live"}`,
			wantErr: []string{"ResourceNotFoundException", "Function not found"}},
		{name: "throttled, not retried", status: 429,
			header:  map[string]string{"X-Amzn-ErrorType": "TooManyRequestsException"},
			body:    `{"Reason":"ConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`,
			wantErr: []string{"TooManyRequestsException", "Rate Exceeded."}},
		{name: "service error", status: 500,
			header:  map[string]string{"X-Amzn-ErrorType": "ServiceException"},
			body:    `{"message":"internal"}`,
			wantErr: []string{"ServiceException", "internal"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			type seen struct{ path, query, invType, auth, body string }
			got := make(chan seen, 4)
			uri := backend(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				b, _ := io.ReadAll(r.Body)
				got <- seen{r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Amz-Invocation-Type"), r.Header.Get("Authorization"), string(b)}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			in := newTestLambda(t, Config{Function: "my-fn", Qualifier: "live", Endpoint: uri})
			out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{"body":"hi"}`)})
			s := <-got
			if s.path != "/2015-03-31/functions/my-fn/invocations" || s.query != "Qualifier=live" ||
				s.invType != "RequestResponse" || s.body != `{"body":"hi"}` ||
				!strings.Contains(s.auth, "Credential=AKIDTEST/") || !strings.Contains(s.auth, "/eu-west-1/lambda/aws4_request") {
				t.Errorf("Lambda saw %+v", s)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%d calls, want 1 (Invoke never retries)", n)
			}
			switch {
			case tc.wantFE != nil:
				var fe *FunctionError
				if !errors.As(err, &fe) || fe.Type != tc.wantFE.Type || fe.Message != tc.wantFE.Message || string(fe.Payload) != tc.body {
					t.Fatalf("got %v, want %+v", err, tc.wantFE)
				}
			case tc.wantErr != nil:
				var fe *FunctionError
				if err == nil || errors.As(err, &fe) || errors.Is(err, ErrTimeout) {
					t.Fatalf("got %T %v, want a plain error", err, err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
			default:
				if err != nil || string(out) != tc.want {
					t.Fatalf("got %s, %v; want %s", out, err, tc.want)
				}
			}
		})
	}
}

func TestLambdaTimeout(t *testing.T) {
	isolateAWS(t)
	release := make(chan struct{})
	defer close(release)
	uri := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	_, err := newTestLambda(t, Config{Function: "slow", Endpoint: uri, TimeoutMillis: 50}).
		Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
}

// TestLambdaProfile checks that the profile option picks the credentials of
// a named profile in the shared files.
func TestLambdaProfile(t *testing.T) {
	isolateAWS(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("[ops]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	auth := make(chan string, 1)
	uri := backend(t, func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		_, _ = io.WriteString(w, `{}`)
	})
	in := newTestLambda(t, Config{Function: "f", Endpoint: uri, Profile: "ops", Region: "ap-south-1"})
	if _, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if a := <-auth; !strings.Contains(a, "Credential=AKIDPROFILE/") || !strings.Contains(a, "/ap-south-1/lambda/") {
		t.Fatalf("Authorization %q", a)
	}
}

// rieVersion is the aws-lambda-runtime-interface-emulator build the tests run.
const rieVersion = "v0.0.0-20261030222936-bef5c4ba774d"

var (
	rieOnce sync.Once
	riePath string
	rieErr  error
)

// buildRIE installs the emulator's cmd/aws-lambda-rie into the test binary's
// temp dir, once. It is a main package with internal packages, so it cannot
// be imported; go install module@version builds it from the module cache.
func buildRIE(t *testing.T) string {
	t.Helper()
	rieOnce.Do(func() {
		cmd := exec.Command("go", "install", "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@"+rieVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			rieErr = fmt.Errorf("%v: %s", err, out)
			return
		}
		riePath = filepath.Join(bin, "aws-lambda-rie")
	})
	if rieErr != nil {
		testenv.Missing(t, "aws-lambda-rie ("+rieErr.Error()+")", "go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@"+rieVersion)
	}
	return riePath
}

// startRIE runs the emulator with handler behind it and returns its Invoke
// API endpoint. Its two ports are found free and let go (testenv.FreeAddr), so
// another process may take one before the emulator binds it: the emulator
// then exits, and it is started again on other ports.
func startRIE(t *testing.T, handler string) string {
	t.Helper()
	rie := buildRIE(t)
	for attempt := 1; ; attempt++ {
		invokeAddr, runtimeAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
		logFile, err := os.Create(filepath.Join(t.TempDir(), "rie.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(rie, "--runtime-interface-emulator-address", invokeAddr, "--runtime-api-address", runtimeAddr, handler)
		cmd.Dir = t.TempDir()
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_FUNCTION_TIMEOUT=30"}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		setProcessGroup(cmd) // to kill the handler with it
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			killProcessGroup(cmd)
			<-exited
			if t.Failed() {
				b, _ := os.ReadFile(logFile.Name())
				t.Logf("emulator log (start %d):\n%s", attempt, b)
			}
			logFile.Close()
		})
		up := false
		testenv.Eventually(t, 60*time.Second, func() error {
			select {
			case <-exited:
				return nil // its port taken, or it failed: below
			default:
			}
			c, err := net.Dial("tcp", invokeAddr)
			if err == nil {
				c.Close()
				up = true
			}
			return err
		})
		select {
		case <-exited:
			up = false // what answered was another process on its port
		default:
		}
		if up {
			return "http://" + invokeAddr
		}
		b, _ := os.ReadFile(logFile.Name())
		if attempt == 3 {
			t.Fatalf("the emulator exited at each of %d starts; last log:\n%s", attempt, b)
		}
		t.Logf("the emulator exited at start (a port taken?), starting it again on other ports; its log:\n%s", b)
	}
}

// TestLambdaRuntimeInterfaceEmulator invokes a real aws-lambda-go handler
// through the AWS runtime interface emulator.
func TestLambdaRuntimeInterfaceEmulator(t *testing.T) {
	isolateAWS(t)
	endpoint := startRIE(t, handlerPath("handler"))
	// The emulator serves one function, named "function".
	in := newTestLambda(t, Config{Function: "function", Endpoint: endpoint, TimeoutMillis: 20000})
	invoke := func(event string) (string, error) {
		out, err := in.Invoke(context.Background(), &Invocation{Payload: []byte(event)})
		return string(out), err
	}
	out, err := invoke(`{"body":"through rie"}`)
	if err != nil || !strings.Contains(out, `"body":"through rie"`) {
		t.Fatalf("echo: %s, %v", out, err)
	}
	var fe *FunctionError
	if _, err := invoke(`{"op":"error"}`); !errors.As(err, &fe) || fe.Type != "errorString" || fe.Message != "handler failed on purpose" {
		t.Fatalf("handler error: got %v", err)
	}
	if _, err := invoke(`{"op":"panic"}`); !errors.As(err, &fe) || fe.Message != "handler panicked on purpose" {
		t.Fatalf("panic: got %v", err)
	}
	out, err = invoke(`{"body":"after"}`)
	if err != nil || !strings.Contains(out, `"body":"after"`) {
		t.Fatalf("echo after failures: %s, %v", out, err)
	}
}

// TestAWSLambdaNonProxyRIE runs a Lambda non-proxy (AWS) integration
// against a real Invoke API: the runtime interface emulator with an
// aws-lambda-go handler behind it serves
// /2015-03-31/functions/function/invocations, the path of the
// integration's URI. The request template is the payload; the integration
// response is picked by the Lambda error's errorMessage, as API Gateway's
// Lambda custom integrations do. escapeJavaScript's \' is undone with
// AWS's documented replaceAll, without which the payload is not JSON.
func TestAWSLambdaNonProxyRIE(t *testing.T) {
	awsEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", startRIE(t, handlerPath("handler")))
	in, err := New(Config{
		Type:          "aws",
		URI:           "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/function/invocations",
		TimeoutMillis: 20000,
		RequestTemplates: map[string]string{
			"$default": `{"op": "$input.path('$.op')", "body": "$util.escapeJavaScript($context.authorizer.principalId) says $util.escapeJavaScript($input.path('$.text')).replaceAll("\\'","'")"}`,
		},
		IntegrationResponseSelectionExpression: "${integration.response.body.errorMessage}",
		IntegrationResponses: map[string]IntegrationResponse{
			"/.+/":     {ResponseTemplates: map[string]string{"$default": `failed: $input.path('$.errorMessage')`}},
			"$default": {ResponseTemplates: map[string]string{"$default": `$input.path('$.body') ($context.status)`}},
		},
	}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, c := range []struct{ msg, want string }{
		{`{"text":"it's \"quoted\""}`, `{"body":"u1 says it's \"quoted\" (200)","statusCode":200}`},
		{`{"op":"error"}`, `{"body":"failed: handler failed on purpose","statusCode":200}`},
	} {
		out, err := in.Invoke(context.Background(), &Invocation{Payload: messageEvent(c.msg)})
		if err != nil || string(out) != c.want {
			t.Errorf("%s: %s, %v; want %s", c.msg, out, err, c.want)
		}
	}
}
