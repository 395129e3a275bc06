package gateway

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
		connectedAt:  stampOf(time.UnixMilli(1705751697419)),
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
		{"connect.json", g.connectEvent(s, r, "R1knPH17NjMFftw=", s.connected())},
		{"message.json", g.messageEvent(s, "sendmessage", "R1knPH17NjMFftw=", "R1knPc2ntjMCFIA=", `{"action":"sendmessage","data":"hi <b>&</b>"}`, false, now)},
		{"disconnect.json", g.disconnectEvent(s, "R1koeHsUtjMFbRw=", 1001, "Going away", now)},
		{"disconnect-1005.json", g.disconnectEvent(s, "R1koeHsUtjMFbRw=", 1005, "Client-side close frame status not set", now)},
		{"authorizer.json", g.authorizerEvent(s, r, "FDmBIG3EoAMEqYA=", "arn:aws:execute-api:ap-northeast-1:000000000000:dl7ptocha9/prod/$connect", s.connected())},
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

// BenchmarkConnectEvent: the CONNECT event of a browser's handshake, built
// and encoded, as a $connect integration gets it.
func BenchmarkConnectEvent(b *testing.B) {
	g, s := goldenGateway(), goldenSession()
	r := httptest.NewRequest("GET", "http://dl7ptocha9.execute-api.ap-northeast-1.amazonaws.com/prod", nil)
	r.RemoteAddr = "49.105.91.154:50000"
	for k, v := range map[string]string{
		"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Connection": "Upgrade", "Upgrade": "websocket", "Pragma": "no-cache", "Cache-Control": "no-cache",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
		"Origin":                   "https://example.com", "Accept-Encoding": "gzip, deflate, br", "Accept-Language": "en-US,en;q=0.9",
	} {
		r.Header.Set(k, v)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = marshalEvent(g.connectEvent(s, r, "R1knPH17NjMFftw=", s.connected()))
	}
}

func BenchmarkTextFrame(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 100)
	b.ReportAllocs()
	for b.Loop() {
		_ = textFrame(payload)
	}
}

// encodeEventWithEncodingJSON is how events were encoded before
// appendEvent: encoding/json, HTML escaping off.
func encodeEventWithEncodingJSON(ev *Event) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// TestAppendEventMatchesEncodingJSON: random events, with strings full of
// what JSON escapes (quotes, controls, <>&, U+2028, bad UTF-8), encode to
// the same bytes as encoding/json gives.
func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "Z", " ", `"`, `\`, "/", "<", ">", "&", "\x00", "\x1f", "\b", "\f", "\n", "\r", "\t", "\x7f",
		"é", "😀", "\u2028", "\u2029", "\xff", "\xe2\x80", "\xed\xa0\x80", "\ufffd"}
	str := func() string {
		var s strings.Builder
		for range rng.IntN(6) {
			s.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return s.String()
	}
	strMap := func() map[string]string {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return map[string]string{}
		}
		m := map[string]string{}
		for range 1 + rng.IntN(40) {
			m[str()] = str()
		}
		return m
	}
	multiMap := func() map[string][]string {
		if rng.IntN(3) == 0 {
			return nil
		}
		m := map[string][]string{}
		for range rng.IntN(5) {
			var vs []string
			if rng.IntN(4) > 0 {
				vs = []string{}
				for range rng.IntN(3) {
					vs = append(vs, str())
				}
			}
			m[str()] = vs
		}
		return m
	}
	for i := range 5000 {
		ev := &Event{
			Headers: strMap(), MultiValueHeaders: multiMap(),
			QueryStringParameters: strMap(), MultiValueQueryStringParameters: multiMap(),
			StageVariables:  strMap(),
			IsBase64Encoded: rng.IntN(2) == 0,
			RequestContext: RequestContext{
				RouteKey: str(), MessageID: str(), EventType: str(), ExtendedRequestID: str(),
				RequestTime: str(), MessageDirection: str(), Stage: str(),
				ConnectedAt: rng.Int64() - rng.Int64(), RequestTimeEpoch: rng.Int64(),
				Identity:  Identity{SourceIP: str(), UserAgent: str(), APIKey: str(), APIKeyID: str()},
				RequestID: str(), DomainName: str(), ConnectionID: str(), APIID: str(),
			},
		}
		if rng.IntN(2) == 0 {
			body := str()
			ev.Body = &body
		}
		if rng.IntN(3) == 0 {
			code, reason := rng.IntN(5000)-100, str()
			ev.RequestContext.DisconnectStatusCode, ev.RequestContext.DisconnectReason = &code, &reason
		}
		switch rng.IntN(4) {
		case 0:
			ev.RequestContext.Authorizer = json.RawMessage(`{ "principalId" : "a<b>",` + "\n" + `"n":[1, 2.5e3, null, true] }`)
		case 1:
			ev.RequestContext.Authorizer = json.RawMessage(`{}`)
		}
		want, err := encodeEventWithEncodingJSON(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEvent(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d:\nappendEvent:   %s\nencoding/json: %s", i, got, want)
		}
	}
	// Every field set, found by reflection: a field added to the event
	// types that appendEvent does not write fails here.
	full := &Event{}
	fillEvery(reflect.ValueOf(full).Elem())
	full.RequestContext.Authorizer = json.RawMessage(`{"k":"v"}`)
	want, err := encodeEventWithEncodingJSON(full)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := appendEvent(nil, full); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("every field set:\nappendEvent:   %s (%v)\nencoding/json: %s", got, err, want)
	}
	// A broken authorizer context is an error, as with encoding/json.
	bad := &Event{RequestContext: RequestContext{Authorizer: json.RawMessage(`{"a":`)}}
	if _, err := appendEvent(nil, bad); err == nil {
		t.Fatal("appendEvent accepted a broken authorizer context")
	}
}

func BenchmarkMessageEventEncodingJSON(b *testing.B) {
	g, s := goldenGateway(), goldenSession()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = encodeEventWithEncodingJSON(g.messageEvent(s, "sendmessage", "R1knPH17NjMFftw=", "R1knPc2ntjMCFIA=", `{"action":"sendmessage","data":"hello"}`, false, now))
	}
}

// fillEvery gives every string, integer, bool, pointer, slice and map
// field of v a non-zero value, recursively.
func fillEvery(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + v.Type().Name())
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillEvery(p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillEvery(v.Field(i))
			}
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillEvery(k)
		fillEvery(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // RawMessage: set by the caller
		}
		sl := reflect.MakeSlice(v.Type(), 1, 1)
		fillEvery(sl.Index(0))
		v.Set(sl)
	}
}

// mapEventHeaders is how the CONNECT event's headers were built before
// headerList: two maps, a later add replacing an earlier one. It is the
// reference eventHeaders is held to.
func mapEventHeaders(r *http.Request, s *session, cl *client, authorizer bool) (map[string]string, map[string][]string) {
	single := map[string]string{}
	multi := map[string][]string{}
	add := func(k string, vs ...string) {
		single[k] = vs[len(vs)-1]
		multi[k] = vs
	}
	host := cmp.Or(cl.host, r.Host)
	add("Host", host)
	for k, vs := range r.Header {
		if k, ok := eventHeaderName(k, cl, authorizer); ok {
			add(k, vs...)
		}
	}
	if authorizer {
		if _, ok := single["content-length"]; !ok {
			add("content-length", "0")
		}
	}
	add("X-Amzn-Trace-Id", traceID(s))
	add("X-Forwarded-For", cl.forwardedFor)
	proto, port := forwardedProto(r, cl, host)
	add("X-Forwarded-Port", port)
	add("X-Forwarded-Proto", proto)
	return single, multi
}

// checkConnectEvent compares the CONNECT and authorizer events' headers for
// r with the map-built reference, encoded by encoding/json.
func checkConnectEvent(t *testing.T, g *Gateway, s *session, r *http.Request) {
	t.Helper()
	cl := new(g.client(r))
	ev := g.connectEvent(s, r, "R1knPH17NjMFftw=", s.connected())
	got, err := marshalEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	ref := *ev
	ref.headers = nil
	ref.Headers, ref.MultiValueHeaders = mapEventHeaders(r, s, cl, false)
	want, err := encodeEventWithEncodingJSON(&ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("headers %q:\nconnectEvent:  %s\nreference:     %s", r.Header, got, want)
	}
	single, multi := eventHeaders(r, s, cl, true).maps()
	wantSingle, wantMulti := mapEventHeaders(r, s, cl, true)
	if !reflect.DeepEqual(single, wantSingle) || !reflect.DeepEqual(multi, wantMulti) {
		t.Fatalf("authorizer headers %q:\n%q %q\nwant %q %q", r.Header, single, multi, wantSingle, wantMulti)
	}
}

// connectRequest is a handshake request with the headers in spec: lines of
// "Name:value", names canonicalised as every front does (two spellings of
// one name, which no front delivers, would make the reference's choice
// between them depend on map order).
func connectRequest(host, remote string, https bool, spec string) *http.Request {
	r := httptest.NewRequest("GET", "http://example.com/prod", nil)
	r.Host, r.RemoteAddr = host, remote
	if https {
		r.TLS = &tls.ConnectionState{}
	}
	for line := range strings.SplitSeq(spec, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			r.Header.Add(k, v)
		}
	}
	return r
}

func TestConnectEventMatchesMaps(t *testing.T) {
	g, s := goldenGateway(), goldenSession()
	proxied := goldenGateway()
	proxied.proxies, _ = ParseProxies([]string{"10.0.0.0/8"})
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"Host", "Connection", "Upgrade", "Content-Length", "content-length", "X-Forwarded-For",
		"X-Forwarded-Port", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Amzn-Trace-Id", "Forwarded", "X-Real-Ip",
		"Sec-Websocket-Key", "Sec-WebSocket-Key", "Sec-Websocket-Protocol", "Www-Authenticate", "WWW-Authenticate",
		"User-Agent", "Origin", "A", "a", "Z\"<&>", "\xff", "é", "X\u2028"}
	values := []string{"", "v", "1", "10.1.2.3", "203.0.113.7, 10.0.0.2", "https", "443", "<b>&\"\\", "\x00\x1f", "\xed\xa0\x80", "😀"}
	for i := range 3000 {
		var spec strings.Builder
		for range rng.IntN(12) {
			fmt.Fprintf(&spec, "%s:%s\n", names[rng.IntN(len(names))], values[rng.IntN(len(values))])
		}
		host := []string{"example.com", "example.com:8443", "", "h\"ost"}[rng.IntN(4)]
		remote := []string{"49.105.91.154:50000", "10.0.0.1:40000", "[::1]:1"}[rng.IntN(3)]
		gw := g
		if i%2 == 1 {
			gw = proxied
		}
		checkConnectEvent(t, gw, s, connectRequest(host, remote, rng.IntN(3) == 0, spec.String()))
	}
}

func FuzzConnectEvent(f *testing.F) {
	f.Add("example.com", "10.0.0.1:1", false, "Origin:https://example.com\nX-Forwarded-For:1.2.3.4\nSec-Websocket-Key:k\nSec-WebSocket-Key:K")
	f.Add("example.com:8443", "49.105.91.154:50000", true, "Host:other\ncontent-length:3\nX-Forwarded-Proto:https\nA:1\nA:2")
	g, s := goldenGateway(), goldenSession()
	g.proxies, _ = ParseProxies([]string{"10.0.0.0/8"})
	f.Fuzz(func(t *testing.T, host, remote string, https bool, spec string) {
		checkConnectEvent(t, g, s, connectRequest(host, remote, https, spec))
	})
}

func TestRequestTimeMatchesFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	check := func(tm time.Time) {
		if got, want := requestTime(tm), tm.UTC().Format(requestTimeLayout); got != want {
			t.Fatalf("%v: %q, Format gives %q", tm, got, want)
		}
	}
	for range 100000 {
		check(time.Unix(rng.Int64N(1<<36)-1<<35, rng.Int64N(1e9)).In(time.FixedZone("x", rng.IntN(100000)-50000)))
	}
	check(time.Time{})
	check(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
	check(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	check(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC))
}
