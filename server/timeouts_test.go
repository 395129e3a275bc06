package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/sigwire"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/sigv4"
)

const timeoutsConfig = `
listen: "127.0.0.1:0"
stage: dev
credentials: [{ accessKeyId: AKIDLOCAL, secretAccessKey: change-me }]
readHeaderTimeoutSeconds: 1
readBodyTimeoutSeconds: 1
maxManagementRequests: 2
routes:
  echo: { integration: { type: mock }, routeResponseSelectionExpression: $default }
`

// stalledPost opens a raw TCP connection and sends a correctly signed
// PostToConnection whose body stops after its first bytes.
func stalledPost(t *testing.T, srv *server.Server) net.Conn {
	t.Helper()
	raw := signedWire(t, http.MethodPost, "http://"+srv.Addr()+"/dev/@connections/abc", bytes.Repeat([]byte("x"), 1000))
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(raw[:len(raw)-990]); err != nil { // headers and 10 body bytes
		t.Fatal(err)
	}
	return c
}

// TestStalledManagementBodyIsCutOff: a management request whose body stops
// arriving is answered and its connection closed once readBodyTimeoutSeconds
// passed, instead of being held forever.
func TestStalledManagementBodyIsCutOff(t *testing.T) {
	srv := startServer(t, timeoutsConfig)
	c := stalledPost(t, srv)
	// The client waits far longer than the server's 1 s body deadline; a
	// server without one never answers and this read times out.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server still waits for the stalled body")
		}
		return // closed without an answer: cut off too
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("a truncated body was accepted")
	}
	// The connection is closed after the answer.
	var buf [1]byte
	if _, err := c.Read(buf[:]); err == nil {
		t.Fatal("connection still open after the deadline")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection still open after the deadline")
	}
}

// TestManagementRequestsBounded: past maxManagementRequests in progress, a
// management request is answered 429 LimitExceededException at once.
//
// The probes start only once both stalled POSTs hold their slots (their
// bodies are being read): a probe in progress when a stalled POST comes
// would take the slot it needed, and that POST's 429 is withheld until
// its body comes or its deadline passes (the front, as net/http, reads
// a refused request's body before it answers), so from then on one slot
// stays free and every probe gets 200. A stalled POST whose head comes
// after the front parked its connection (on a loaded machine) used to
// lose that race now and then.
func TestManagementRequestsBounded(t *testing.T) {
	// Patient timeouts: on a starved machine (the suite under -race at load
	// 20-40) a stalled POST's head can be read after a 1 s header timeout,
	// and the connection is closed before its request holds a slot.
	cfg := strings.Replace(timeoutsConfig, "readBodyTimeoutSeconds: 1", "readBodyTimeoutSeconds: 60", 1)
	cfg = strings.Replace(cfg, "readHeaderTimeoutSeconds: 1", "readHeaderTimeoutSeconds: 60", 1)
	// reading gets a stalled POST's first body read: the gateway takes a
	// management slot before it reads a body.
	reading := make(chan struct{}, 2)
	srv := startServerWrapped(t, cfg, io.Discard, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				r.Body = &signalBody{ReadCloser: r.Body, first: reading}
			}
			h.ServeHTTP(w, r)
		})
	})
	stalled := []net.Conn{stalledPost(t, srv), stalledPost(t, srv)}
	defer func() {
		if t.Failed() {
			t.Logf("the front's state:\n%s", server.FrontState(srv))
			for i, c := range stalled {
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				b := make([]byte, 4096)
				n, err := c.Read(b)
				t.Logf("stalled %d (%s): %q %v", i, c.LocalAddr(), b[:n], err)
			}
		}
	}()
	for i := range stalled {
		select {
		case <-reading:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of the stalled POSTs reached their handler after 10 s", i)
		}
	}
	if resp, _ := signedRequest(t, http.MethodGet, "http://"+srv.Addr()+"/dev/@connections"); resp.StatusCode != http.StatusTooManyRequests ||
		resp.Header.Get("x-amzn-ErrorType") != "LimitExceededException" {
		t.Fatalf("status %d %s, want 429 LimitExceededException", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	for _, c := range stalled {
		c.Close()
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if resp, _ := signedRequest(t, http.MethodGet, "http://"+srv.Addr()+"/dev/@connections"); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d after the stalled requests went away", resp.StatusCode)
		}
		return nil
	})
}

// TestRefusedManagementPostAnsweredAfterItsBody: a POST refused at the
// maxManagementRequests limit gets its 429 once the rest of its body came
// (read and dropped first, as net/http does), while the slot it did not
// get serves others meanwhile. That is how a probe that took a slot at the
// wrong moment used to leave TestManagementRequestsBounded with one slot
// free and both stalled POSTs unanswered.
func TestRefusedManagementPostAnsweredAfterItsBody(t *testing.T) {
	cfg := strings.Replace(timeoutsConfig, "readBodyTimeoutSeconds: 1", "readBodyTimeoutSeconds: 60", 1)
	cfg = strings.Replace(cfg, "readHeaderTimeoutSeconds: 1", "readHeaderTimeoutSeconds: 60", 1)
	reading, returned := make(chan struct{}, 3), make(chan struct{}, 3)
	srv := startServerWrapped(t, cfg, io.Discard, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				h.ServeHTTP(w, r)
				return
			}
			r.Body = &signalBody{ReadCloser: r.Body, first: reading}
			h.ServeHTTP(w, r)
			returned <- struct{}{}
		})
	})
	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s after 10 s", what)
		}
	}
	holding := []net.Conn{stalledPost(t, srv), stalledPost(t, srv)}
	wait(reading, "first body read")
	wait(reading, "second body read")
	refused := stalledPost(t, srv)
	wait(returned, "refused handler's return")
	// The refused POST's answer waits for its body; the slots serve on.
	holding[1].Close()
	wait(returned, "handler's return after its client left")
	testenv.Eventually(t, 10*time.Second, func() error {
		if resp, _ := signedRequest(t, http.MethodGet, "http://"+srv.Addr()+"/dev/@connections"); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d with a slot free", resp.StatusCode)
		}
		return nil
	})
	if _, err := refused.Write(bytes.Repeat([]byte("x"), 990)); err != nil { // the rest of its body
		t.Fatal(err)
	}
	_ = refused.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(refused), nil)
	if err != nil {
		t.Fatalf("the refused POST after its body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("x-amzn-ErrorType") != "LimitExceededException" {
		t.Fatalf("the refused POST: status %d %s, want 429 LimitExceededException", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
}

// signalBody is a request body that sends on first at its first Read.
type signalBody struct {
	io.ReadCloser
	first chan<- struct{}
	once  sync.Once
}

func (b *signalBody) Read(p []byte) (int, error) {
	b.once.Do(func() {
		select {
		case b.first <- struct{}{}:
		default:
		}
	})
	return b.ReadCloser.Read(p)
}

// signedRequest sends a bodiless management request signed for AKIDLOCAL
// and returns the response (its body already read) and the body.
func signedRequest(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(signed(t, method, url, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// signed is a request of body to url, signed for AKIDLOCAL.
func signed(tb testing.TB, method, url string, body []byte) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDLOCAL", SecretAccessKey: "change-me"},
		req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", time.Now()); err != nil {
		tb.Fatal(err)
	}
	return req
}

// signedWire is a request signed with the test key, as sent on the wire.
func signedWire(tb testing.TB, method, url string, body []byte) []byte {
	tb.Helper()
	wire, err := sigwire.Request(method, url, body, sigv4.Credentials{AccessKeyID: "AKIDLOCAL", SecretAccessKey: "change-me"}, "us-east-1", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return wire
}

// TestWebSocketOutlivesServerTimeouts: a hijacked WebSocket connection is
// not subject to the HTTP server's header, body and idle timeouts.
func TestWebSocketOutlivesServerTimeouts(t *testing.T) {
	srv := startServer(t, timeoutsConfig)
	c := dial(t, srv)
	// Let every server timeout (1 s here) pass with the connection idle;
	// there is nothing to poll for, only time to let pass.
	<-time.After(2500 * time.Millisecond)
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"echo","n":1}`)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != `{"action":"echo","n":1}` {
		t.Fatalf("echo %q", got)
	}
}
