package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenGateway and goldenSession are fixed inputs, so events are stable.
func goldenGateway() *Gateway {
	cfg := Config{APIID: "dl7ptocha9", Stage: "prod", Region: "ap-northeast-1", StageVariables: map[string]string{"env": "prod"}}
	cfg.SetDefaults()
	g := &Gateway{cfg: cfg}
	g.cur.Store(&live{cfg: cfg})
	return g
}

func goldenSession() *session {
	return &session{
		connectionID: "R1kmxc2VNjMCFIA=",
		connectedAt:  time.UnixMilli(1705751697419),
		identity:     Identity{SourceIP: "49.105.91.154", UserAgent: "Mozilla/5.0"},
		domainName:   "dl7ptocha9.execute-api.ap-northeast-1.amazonaws.com",
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", "events", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./gateway -run Golden -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("%s differs from the golden file:\n%s\nwant:\n%s", name, buf.Bytes(), want)
	}
	// Every event decodes into aws-lambda-go's type.
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(got, &ev); err != nil {
		t.Fatalf("aws-lambda-go cannot decode %s: %v", name, err)
	}
}

func TestGoldenEvents(t *testing.T) {
	g, s := goldenGateway(), goldenSession()
	now := time.UnixMilli(1705751700453)

	r := httptest.NewRequest("GET", "http://dl7ptocha9.execute-api.ap-northeast-1.amazonaws.com/prod?token=abc&x=1&x=2", nil)
	r.RemoteAddr = "49.105.91.154:50000"
	r.Header.Set("User-Agent", "Mozilla/5.0")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
	r.Header.Set("Origin", "https://example.com")

	for _, tc := range []struct {
		name string
		ev   any
	}{
		{"connect.json", g.connectEvent(s, r, "R1knPH17NjMFftw=", s.connectedAt)},
		{"message.json", g.messageEvent(s, "sendmessage", "R1knPH17NjMFftw=", "R1knPc2ntjMCFIA=", `{"action":"sendmessage","data":"hi <b>&</b>"}`, false, now)},
		{"disconnect.json", g.disconnectEvent(s, "R1koeHsUtjMFbRw=", 1001, "Going away", now)},
		{"disconnect-1005.json", g.disconnectEvent(s, "R1koeHsUtjMFbRw=", 1005, "Client-side close frame status not set", now)},
		{"authorizer.json", g.authorizerEvent(s, r, "FDmBIG3EoAMEqYA=", "arn:aws:execute-api:ap-northeast-1:000000000000:dl7ptocha9/prod/$connect", s.connectedAt)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			var err error
			if ev, ok := tc.ev.(*Event); ok {
				b, err = marshalEvent(ev)
			} else {
				b, err = json.Marshal(tc.ev)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, b)
		})
	}
	// With an authorizer's context attached, every event carries it.
	s.authorizer = json.RawMessage(`{"integrationLatency":42,"n":1,"principalId":"alice","user":"alice"}`)
	b, _ := marshalEvent(g.messageEvent(s, "$default", "R1knPH17NjMFftw=", "R1knPc2ntjMCFIA=", "not json", false, now))
	checkGolden(t, "message-authorized.json", b)
}

func BenchmarkMessageEvent(b *testing.B) {
	g, s := goldenGateway(), goldenSession()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = marshalEvent(g.messageEvent(s, "sendmessage", "R1knPH17NjMFftw=", "R1knPc2ntjMCFIA=", `{"action":"sendmessage","data":"hello"}`, false, now))
	}
}

func BenchmarkTextFrame(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 100)
	b.ReportAllocs()
	for b.Loop() {
		_ = textFrame(payload)
	}
}
