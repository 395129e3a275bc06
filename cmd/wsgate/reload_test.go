package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
)

// startLogged starts cmd (a wsgate serve) with its log kept in a buffer,
// and returns the address it prints once listening. The process is
// stopped with SIGTERM at the end of the test.
func startLogged(t *testing.T, cmd *exec.Cmd) (string, *testenv.Buffer) {
	t.Helper()
	logs := &testenv.Buffer{}
	cmd.Stderr = logs
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("wsgate log:\n%s", logs)
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return m[1], logs
		}
	}
	t.Fatalf("wsgate did not start:\n%s", logs)
	return "", nil
}

// askUntil sends msg on c until the answer is want (a reload is applied
// asynchronously), failing after 20 s.
func askUntil(t *testing.T, c *websocket.Conn, msg, want string) {
	t.Helper()
	var got string
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if got = string(b); got != want {
			return fmt.Errorf("%s answered %q, want %q", msg, got, want)
		}
		return nil
	})
}

func contains(logs *testenv.Buffer, s string) func() error {
	return func() error {
		if !strings.Contains(logs.String(), s) {
			return fmt.Errorf("no %q in the log", s)
		}
		return nil
	}
}

// serveEcho starts wsgate serve with cfg, which has a mock echo route on
// stage dev, and a client that got an echo through it.
func serveEcho(t *testing.T, bin, cfg string) (*exec.Cmd, *websocket.Conn, *testenv.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	addr, logs := startLogged(t, cmd)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	askUntil(t, c, `{"action":"echo"}`, `{"action":"echo"}`)
	return cmd, c, logs
}

// TestServeSIGHUP runs the built binary: SIGHUP reloads the rewritten
// config file (a new route) without dropping the connected client; a
// broken file, then SIGHUP, changes nothing and logs why; SIGTERM still
// exits 0.
func TestServeSIGHUP(t *testing.T) {
	bin := wsgateBinary(t)
	base := `
listen: "127.0.0.1:0"
stage: dev
routes:
  echo: { integration: { type: mock }, routeResponseSelectionExpression: "$default" }
`
	cfg := writeConfig(t, base)
	cmd, c, logs := serveEcho(t, bin, cfg)

	added := base + `  hello: { integration: { type: mock, response: { statusCode: 200, body: hi } }, routeResponseSelectionExpression: "$default" }` + "\n"
	if err := os.WriteFile(cfg, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	askUntil(t, c, `{"action":"hello"}`, "hi")
	testenv.Eventually(t, 10*time.Second, contains(logs, `msg="config reloaded" routesAdded=[hello]`))

	if err := os.WriteFile(cfg, []byte(added+"  broken: { integration: { type: http } }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, contains(logs, `config reload refused, the running config stays`))
	if !strings.Contains(logs.String(), `routes[\"broken\"].integration.uri: required`) {
		t.Errorf("the refusal does not say why:\n%s", logs)
	}
	askUntil(t, c, `{"action":"hello"}`, "hi")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after reloads: %v", err)
	}
}

// TestServeSIGHUPReopensAccessLog: after logrotate renames the access log
// file, SIGHUP makes the built binary write the next lines to a new file
// at the configured path; the renamed file keeps the lines before.
func TestServeSIGHUPReopensAccessLog(t *testing.T) {
	bin := wsgateBinary(t)
	cfg := writeConfig(t, `
listen: "127.0.0.1:0"
stage: dev
accessLog: { format: "$context.eventType $context.routeKey", destination: access.log, bufferLines: 10 }
routes:
  echo: { integration: { type: mock }, routeResponseSelectionExpression: "$default" }
`)
	path := filepath.Join(filepath.Dir(cfg), "access.log")
	cmd, c, logs := serveEcho(t, bin, cfg)
	read := func(file string) string { b, _ := os.ReadFile(file); return string(b) }
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := read(path); !strings.Contains(got, "MESSAGE echo") {
			return fmt.Errorf("access log before rotation: %q", got)
		}
		return nil
	})
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, contains(logs, `msg="config reloaded, nothing changed"`))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no new access log after SIGHUP: %v", err)
	}
	askUntil(t, c, `{"action":"echo"}`, `{"action":"echo"}`)
	_ = c.Close()
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := read(path); !strings.Contains(got, "MESSAGE echo") || !strings.Contains(got, "DISCONNECT $disconnect") || strings.Contains(got, "CONNECT $connect") {
			return fmt.Errorf("new access log: %q", got)
		}
		return nil
	})
	if old := read(path + ".1"); !strings.HasPrefix(old, "CONNECT $connect\nMESSAGE echo\n") || strings.Contains(old, "DISCONNECT") {
		t.Errorf("rotated access log: %q", old)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// watchTemplate is a CloudFormation WebSocket API with MOCK routes, one
// per entry of routes (route key → static answer).
func watchTemplate(routes map[string]string) string {
	var b strings.Builder
	b.WriteString(`AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting: { Type: String, Default: hello }
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: { Name: w, ProtocolType: WEBSOCKET, RouteSelectionExpression: "$request.body.action" }
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: { ApiId: !Ref Api, StageName: dev }
`)
	for key, answer := range routes {
		fmt.Fprintf(&b, `  %[1]sRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: %[1]s, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${%[1]sIntegration}" }
  %[1]sRouteResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: { ApiId: !Ref Api, RouteId: !Ref %[1]sRoute, RouteResponseKey: $default }
  %[1]sIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: MOCK, RequestTemplates: { $default: '{"statusCode": 200}' } }
  %[1]sIntegrationResponse:
    Type: AWS::ApiGatewayV2::IntegrationResponse
    Properties: { ApiId: !Ref Api, IntegrationId: !Ref %[1]sIntegration, IntegrationResponseKey: $default, ResponseTemplates: { $default: %[2]s } }
`, key, answer)
	}
	return b.String()
}

// TestServeTemplateWatch: serve --template --watch re-translates the
// template when it changes (with the same --parameter-overrides) and
// applies it without dropping the connected client: a route added to the
// template answers.
func TestServeTemplateWatch(t *testing.T) {
	bin := wsgateBinary(t)
	dir := t.TempDir()
	tpl := filepath.Join(dir, "template.yaml")
	if err := os.WriteFile(tpl, []byte(watchTemplate(map[string]string{"ping": "pong"})), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--watch", "--template", tpl, "--parameter-overrides", "Greeting=bonjour")
	cmd.Dir = dir
	addr, logs := startLogged(t, cmd)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	askUntil(t, c, `{"action":"ping"}`, "pong")

	// The new route's answer comes from the overridden parameter.
	next := watchTemplate(map[string]string{"ping": "pong", "greet": "!Ref Greeting"})
	if err := os.WriteFile(tpl, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	askUntil(t, c, `{"action":"greet"}`, "bonjour")
	askUntil(t, c, `{"action":"ping"}`, "pong")
	testenv.Eventually(t, 10*time.Second, contains(logs, `msg="config reloaded" routesAdded=[greet]`))
}

// TestServeWatchConfig: serve --watch reloads the config file when its
// content changes, without a signal and without dropping the client.
func TestServeWatchConfig(t *testing.T) {
	bin := wsgateBinary(t)
	base := "listen: \"127.0.0.1:0\"\nstage: dev\nroutes:\n  echo: { integration: { type: mock }, routeResponseSelectionExpression: \"$default\" }\n"
	cfg := writeConfig(t, base)
	addr, logs := startLogged(t, exec.Command(bin, "serve", "--watch", "--config", cfg))
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	askUntil(t, c, `{"action":"echo"}`, `{"action":"echo"}`)
	changed := strings.Replace(base, "echo:", "ping: { integration: { type: mock, response: { statusCode: 200, body: pong } }, routeResponseSelectionExpression: \"$default\" }\n  echo:", 1)
	if err := os.WriteFile(cfg, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	askUntil(t, c, `{"action":"ping"}`, "pong")
	testenv.Eventually(t, 10*time.Second, contains(logs, `msg="config reloaded" routesAdded=[ping]`))
}
