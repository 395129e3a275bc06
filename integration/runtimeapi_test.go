package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runtimeClient drives a runtimeAPI over real HTTP, as a runtime would.
type runtimeClient struct {
	t    *testing.T
	rt   *runtimeAPI
	base string
}

func newRuntimeClient(t *testing.T) *runtimeClient {
	rt := newRuntimeAPI(slog.New(slog.DiscardHandler), "arn:aws:lambda:us-east-1:000000000000:function:f")
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return &runtimeClient{t: t, rt: rt, base: srv.URL + "/2018-06-01/runtime"}
}

// do sends a request and returns the status and the decoded JSON answer.
func (c *runtimeClient) do(req *http.Request) (int, map[string]string) {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (c *runtimeClient) post(path string, body io.Reader, header http.Header) (int, map[string]string) {
	c.t.Helper()
	req, err := http.NewRequest("POST", c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return c.do(req)
}

// next offers in and takes it with GET /next, returning the response.
func (c *runtimeClient) next(in *invocation) *http.Response {
	c.t.Helper()
	go func() { c.rt.offers <- in }()
	resp, err := http.Get(c.base + "/invocation/next")
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func wantStatus(t *testing.T, what string, got int, body map[string]string, want int, wantType string) {
	t.Helper()
	if got != want || body["errorType"] != wantType {
		t.Fatalf("%s: status %d %v, want %d %q", what, got, body, want, wantType)
	}
}

func TestRuntimeAPIInvocationCycle(t *testing.T) {
	c := newRuntimeClient(t)
	status, body := c.post("/invocation/nope/response", strings.NewReader(`{}`), nil)
	wantStatus(t, "response with nothing running", status, body, 403, "InvalidStateTransition")

	deadline := time.Now().Add(time.Minute)
	in := newInvocation("req-1", []byte(`{"k":"v"}`), deadline, time.Hour)
	resp := c.next(in)
	payload, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(payload) != `{"k":"v"}` {
		t.Fatalf("next: %d %s", resp.StatusCode, payload)
	}
	for k, want := range map[string]string{
		"Lambda-Runtime-Aws-Request-Id":       "req-1",
		"Lambda-Runtime-Deadline-Ms":          strconv.FormatInt(deadline.UnixMilli(), 10),
		"Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
		"Content-Type":                        "application/json",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(resp.Header.Get("Lambda-Runtime-Trace-Id"), "Root=1-") {
		t.Errorf("trace id %q", resp.Header.Get("Lambda-Runtime-Trace-Id"))
	}

	status, body = c.post("/invocation/req-2/response", strings.NewReader(`{}`), nil)
	wantStatus(t, "response for another id", status, body, 400, "InvalidRequestID")
	getResp, err := http.Get(c.base + "/invocation/next")
	if err != nil {
		t.Fatal(err)
	}
	getResp.Body.Close()
	if getResp.StatusCode != 403 {
		t.Fatalf("next while running: %d, want 403", getResp.StatusCode)
	}
	status, body = c.post("/init/error", strings.NewReader(`{}`), nil)
	wantStatus(t, "init error after init", status, body, 403, "InvalidStateTransition")

	// A chunked body, as aws-lambda-go always sends.
	status, body = c.post("/invocation/req-1/response", io.MultiReader(strings.NewReader(`{"statusCode":`), strings.NewReader(`200}`)), nil)
	if status != 202 || body["status"] != "OK" {
		t.Fatalf("response: %d %v", status, body)
	}
	<-in.done
	if in.err != nil || string(in.result) != `{"statusCode":200}` {
		t.Fatalf("result %s, %v", in.result, in.err)
	}
	status, body = c.post("/invocation/req-1/response", strings.NewReader(`{}`), nil)
	wantStatus(t, "second response", status, body, 403, "InvalidStateTransition")
}

func TestRuntimeAPIErrors(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		body       io.Reader
		header     http.Header
		trailer    http.Header
		wantStatus int
		wantType   string // of the FunctionError
		wantMsg    string
	}{
		{
			name: "invocation error", path: "error",
			body:       strings.NewReader(`{"errorMessage":"boom","errorType":"errorString","stackTrace":[]}`),
			wantStatus: 202, wantType: "errorString", wantMsg: "boom",
		},
		{
			name: "error type header", path: "error",
			body:       strings.NewReader(`{"errorMessage":"no handler"}`),
			header:     http.Header{"Lambda-Runtime-Function-Error-Type": {"Runtime.NoSuchHandler"}},
			wantStatus: 202, wantType: "Runtime.NoSuchHandler", wantMsg: "no handler",
		},
		{
			name: "error without body", path: "error", body: http.NoBody,
			wantStatus: 202, wantType: "Function.Unknown",
		},
		{
			name: "streamed error in trailers", path: "response",
			body:   io.MultiReader(strings.NewReader(`{"partial":`)),
			header: http.Header{"Lambda-Runtime-Function-Response-Mode": {"streaming"}},
			trailer: http.Header{
				"Lambda-Runtime-Function-Error-Type": {"Function.StreamFailed"},
				"Lambda-Runtime-Function-Error-Body": {base64.StdEncoding.EncodeToString([]byte(`{"errorMessage":"reader failed","errorType":"Function.StreamFailed"}`))},
			},
			wantStatus: 202, wantType: "Function.StreamFailed", wantMsg: "reader failed",
		},
		{
			name: "bad response mode", path: "response", body: strings.NewReader(`{}`),
			header:     http.Header{"Lambda-Runtime-Function-Response-Mode": {"buffered"}},
			wantStatus: 400, wantType: "Runtime.InvalidResponseModeHeader",
		},
		{
			name: "response too large", path: "response",
			body:       io.MultiReader(bytes.NewReader(make([]byte, MaxPayload)), strings.NewReader("x")),
			wantStatus: 413, wantType: "Function.ResponseSizeTooLarge",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newRuntimeClient(t)
			in := newInvocation("req-e", []byte(`{}`), time.Now().Add(time.Minute), time.Hour)
			c.next(in)
			req, err := http.NewRequest("POST", c.base+"/invocation/req-e/"+tc.path, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			req.Trailer = tc.trailer
			status, _ := c.do(req)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d", status, tc.wantStatus)
			}
			<-in.done
			var fe *FunctionError
			if !errors.As(in.err, &fe) {
				t.Fatalf("result %s, %v; want a function error", in.result, in.err)
			}
			if fe.Type != tc.wantType || !strings.Contains(fe.Message, tc.wantMsg) {
				t.Fatalf("got %q %q, want %q containing %q", fe.Type, fe.Message, tc.wantType, tc.wantMsg)
			}
		})
	}
}

func TestRuntimeAPIInitError(t *testing.T) {
	c := newRuntimeClient(t)
	status, body := c.post("/init/error", strings.NewReader(`{"errorMessage":"cannot load","errorType":"Runtime.ImportModuleError"}`),
		http.Header{"Lambda-Runtime-Function-Error-Type": {"Runtime.Unknown"}})
	if status != 202 || body["status"] != "OK" {
		t.Fatalf("init error: %d %v", status, body)
	}
	fe := <-c.rt.initErr
	if fe.Type != "Runtime.ImportModuleError" || fe.Message != "cannot load" {
		t.Fatalf("got %+v", fe)
	}
	status, body = c.post("/init/error", strings.NewReader(`{}`), nil)
	wantStatus(t, "second init error", status, body, 403, "InvalidStateTransition")
	resp, err := http.Get(c.base + "/invocation/next")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("next after init error: %d, want 403", resp.StatusCode)
	}
}

// TestRuntimeAPIStalledBody: a post whose body stops arriving is cut off
// after bodyTimeout instead of holding its connection and buffer forever.
func TestRuntimeAPIStalledBody(t *testing.T) {
	c := newRuntimeClient(t)
	c.rt.bodyTimeout = 200 * time.Millisecond
	conn, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(c.base, "/2018-06-01/runtime"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"err")
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(conn) // the answer, if any, then the server's close
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the runtime api still waits for the stalled body")
	}
}
