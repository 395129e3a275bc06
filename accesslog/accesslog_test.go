package accesslog_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/accesslog"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testenv"
)

var st = accesslog.Static{APIID: "abc123", Stage: "dev"}

func record() *gateway.Record {
	return &gateway.Record{
		EventType: gateway.EventMessage, RequestID: "req-1", MessageID: "msg-1", ConnectionID: "conn-1=",
		RouteKey: "sendmessage", RequestTime: time.Date(2024, 1, 20, 11, 55, 0, 0, time.UTC),
		ConnectedAt: time.UnixMilli(1705751600000), SourceIP: "192.0.2.1", UserAgent: `agent "quoted"` + "\n",
		Status: 500, Outcome: gateway.OutcomeExecutionError, ErrorMessage: "Internal server error",
		Integrated: true, IntegrationLatency: 42 * time.Millisecond, IntegrationError: "dial tcp: refused",
	}
}

func TestFormat(t *testing.T) {
	cases := []struct{ name, format, want string }{
		{"text (CLF-like)", `$context.identity.sourceIp - - [$context.requestTime] "$context.eventType $context.routeKey" $context.status $context.requestId.`,
			`192.0.2.1 - - [20/Jan/2024:11:55:00 +0000] "MESSAGE sendmessage" 500 req-1.`},
		{"json escapes", `{"ua":"$context.identity.userAgent","err":"$context.integration.error"}`,
			`{"ua":"agent \"quoted\"\n","err":"dial tcp: refused"}`},
		{"text escapes control characters only", `$context.identity.userAgent|`, `agent "quoted"\n|`},
		{"missing values are -", `$context.authorizer.principalId $context.integration.status $context.waf.status $context.authorizer.role`, `- - - -`},
		{"numbers", `$context.integrationLatency $context.requestTimeEpoch $context.connectedAt`, `42 1705751700000 1705751600000`},
		{"error fields", `$context.error.message|$context.error.messageString|$context.error.responseType`,
			`Internal server error|"Internal server error"|INTEGRATION_FAILURE`},
		{"static", `$context.apiId/$context.stage`, `abc123/dev`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := accesslog.ParseFormat(tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.Append(nil, record(), &st)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseFormatErrors(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"", "empty format"},
		{"$context.requestId\n", "line break"},
		{"$context.requestid $context.foo.bar", "unknown variable $context.requestid, $context.foo.bar"},
		{"$context.authorizer.a.b", "unknown variable $context.authorizer.a.b"},
	} {
		if _, err := accesslog.ParseFormat(tc.format); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.format, err, tc.want)
		}
	}
}

// blockedWriter blocks every Write until released.
type blockedWriter struct {
	entered chan struct{} // receives once per Write
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestFullBufferDrops: a destination that does not take writes never
// blocks the gateway: past bufferLines the lines are dropped and counted,
// and what was buffered is written once it drains.
func TestFullBufferDrops(t *testing.T) {
	w := &blockedWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l, err := accesslog.NewWriter(w, "$context.requestId", 4, st)
	if err != nil {
		t.Fatal(err)
	}
	l.Request(*record())
	select { // the writer flushed the first line and is stuck in Write
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first line was not written")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 99 {
			l.Request(*record())
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Request blocked on a stalled destination")
	}
	// The writer holds one line in its blocked Write, four wait: 95 dropped.
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, dropped := l.Counts(); dropped != 95 {
			return io.ErrShortWrite
		}
		return nil
	})
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	written, dropped := l.Counts()
	if written != 5 || dropped != 95 {
		t.Errorf("written %d, dropped %d; want 5 and 95", written, dropped)
	}
	if got := w.buf.String(); got != strings.Repeat("req-1\n", 5) {
		t.Errorf("wrote %q", got)
	}
	l.Request(*record()) // after Close: ignored, no panic
}

// BenchmarkRequest is what the access log costs the gateway per record:
// formatting a JSON line of six variables and queueing it.
func BenchmarkRequest(b *testing.B) {
	l, err := accesslog.NewWriter(io.Discard, `{"requestId":"$context.requestId","routeKey":"$context.routeKey","status":"$context.status","latency":"$context.integrationLatency","ip":"$context.identity.sourceIp","time":"$context.requestTime"}`, 4096, st)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := *record()
	b.ReportAllocs()
	for b.Loop() {
		l.Request(rec)
	}
}

// TestReopen: after the file is renamed (logrotate), Reopen sends the
// lines that follow to a new file at the path; the renamed file has
// every line before, none lost.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := accesslog.Open(accesslog.Config{Format: "$context.requestId", Destination: path, BufferLines: 100}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := record()
	for range 3 {
		l.Request(*r)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	r.RequestID = "req-2"
	l.Request(*r)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{path + ".1": "req-1\nreq-1\nreq-1\n", path: "req-2\n"} {
		if b, err := os.ReadFile(file); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", file, b, err, want)
		}
	}
	if err := l.Reopen(); err == nil {
		t.Error("Reopen after Close: no error")
	}
}

// TestReopenFails: a path that cannot be opened again leaves the old
// file in use.
func TestReopenFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "access.log")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := accesslog.Open(accesslog.Config{Format: "$context.requestId", Destination: path, BufferLines: 100}, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Dir(path), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil || !strings.Contains(err.Error(), "access log") {
		t.Errorf("Reopen into a missing directory: %v", err)
	}
	l.Request(*record())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "moved", "access.log")); string(b) != "req-1\n" {
		t.Errorf("old file: %q", b)
	}
}
