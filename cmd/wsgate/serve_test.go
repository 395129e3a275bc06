package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// wsgateBinary builds the real binary once per test run.
func wsgateBinary(t *testing.T) string {
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wsgate-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "wsgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func writeConfig(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "wsgate.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeCheck(t *testing.T) {
	bin := wsgateBinary(t)
	good := writeConfig(t, "stage: dev\nroutes:\n  echo: { integration: { type: mock }, routeResponseSelectionExpression: $default }\n")
	out, err := exec.Command(bin, "serve", "--config", good, "--check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Fatalf("--check of a good config: %v\n%s", err, out)
	}
	bad := writeConfig(t, "stage: dev\nroutes:\n  $nope: { integration: { type: mock } }\n  x: { integration: { type: http } }\n")
	out, err = exec.Command(bin, "serve", "--config", bad, "--check").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "may not start with '$'") || !strings.Contains(string(out), `routes["x"].integration.uri: required for an http integration`) {
		t.Fatalf("--check of a bad config: %v\n%s", err, out)
	}
}

// startServe starts cmd (a wsgate serve) and returns the address it prints
// once listening.
func startServe(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(line)
	if addr == nil {
		t.Fatalf("no address in %q", line)
	}
	return addr[1]
}

// TestServeSignal runs the real binary: it prints its address, serves a
// client, and on SIGTERM closes it with 1001, fires $disconnect and exits 0.
func TestServeSignal(t *testing.T) {
	bin := wsgateBinary(t)
	var mu sync.Mutex
	var disconnects []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		disconnects = append(disconnects, string(b))
		mu.Unlock()
	}))
	defer backend.Close()
	cfg := writeConfig(t, fmt.Sprintf(`
listen: "127.0.0.1:0"
stage: dev
log: { format: json, level: debug }
routes:
  "$disconnect": { integration: { type: http, uri: "%s/disconnect" } }
  "echo": { integration: { type: mock }, routeResponseSelectionExpression: "$default" }
`, backend.URL))
	cmd := exec.Command(bin, "serve", "--config", cfg)
	stderr, _ := cmd.StderrPipe()
	addr := startServe(t, cmd)
	defer cmd.Process.Kill()
	logs := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"echo"}`))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || string(b) != `{"action":"echo"}` {
		t.Fatalf("echo: %q %v", b, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1001 {
		t.Fatalf("at SIGTERM the client got %v, want close 1001", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	mu.Lock()
	n := len(disconnects)
	mu.Unlock()
	if n != 1 || !strings.Contains(disconnects[0], `"disconnectStatusCode":1001`) {
		t.Fatalf("$disconnect events: %v", disconnects)
	}
	// Every log line of the connection carries its id; JSON as configured.
	sawID := false
	for l := range logs {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if rec["msg"] == "connected" && rec["connectionId"] != nil && rec["requestId"] != nil && rec["routeKey"] == "$connect" {
			sawID = true
		}
	}
	if !sawID {
		t.Fatal("no connection log line with connectionId, requestId and routeKey")
	}
}

// TestServeWatch runs the real binary with --watch and a Python function
// whose codeUri is relative to the config file: after its handler file
// changes, the next message runs the new code.
func TestServeWatch(t *testing.T) {
	bin := wsgateBinary(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not available (install: apt-get install -y python3)")
	}
	dir := t.TempDir()
	code := filepath.Join(dir, "fn")
	if err := os.MkdirAll(code, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(body string) {
		src := "def handler(event, context):\n    return {'statusCode': 200, 'body': '" + body + "'}\n"
		if err := os.WriteFile(filepath.Join(code, "app.py"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("before")
	cfg := filepath.Join(dir, "wsgate.yaml")
	err := os.WriteFile(cfg, []byte(`
listen: "127.0.0.1:0"
stage: dev
functions:
  Fn: { runtime: python3.11, handler: app.handler, codeUri: ./fn }
globals: { cacheDir: ./cache }
routes:
  $default: { integration: { type: lambda, function: Fn }, routeResponseSelectionExpression: $default }
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--watch", "--config", cfg)
	cmd.Dir = t.TempDir() // not the config's directory: codeUri is relative to the file
	addr := startServe(t, cmd)
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func() string {
		_ = c.WriteMessage(websocket.TextMessage, []byte(`x`))
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := ask(); got != "before" {
		t.Fatalf("got %q", got)
	}
	write("after")
	deadline := time.Now().Add(20 * time.Second)
	for got := ask(); got != "after"; got = ask() {
		if time.Now().After(deadline) {
			t.Fatalf("still %q after the change", got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cache")); err != nil {
		t.Errorf("cacheDir relative to the config file: %v", err)
	}
}
