//go:build linux

package httpfront

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// refuse answers 413 or 403 without reading the body; with
// "close" in the path it asks for the connection to close.
func refuse(w http.ResponseWriter, r *http.Request) {
	if _, ok := w.(*response); !ok {
		http.Error(w, "not the front", http.StatusInternalServerError)
		return
	}
	if strings.Contains(r.URL.Path, "close") {
		w.Header().Set("Connection", "close")
	}
	status := http.StatusRequestEntityTooLarge
	if strings.Contains(r.URL.Path, "forbidden") {
		status = http.StatusForbidden
	}
	http.Error(w, "refused", status)
}

// tracked is how many connections the front tracks.
func tracked(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// A refused request whose connection closes after its answer (the client
// or the handler said Connection: close, or its body is past maxDrain) is
// answered without waiting for its body: a real client that sent 1 KB of
// it and sends no more until it has the answer gets the answer, and the
// connection then closes.
func TestRefusalAnswersBeforeBody(t *testing.T) {
	for _, tc := range []struct {
		name        string
		path        string
		size        int64
		clientClose bool
		status      int
	}{
		{"client Connection: close", "/too-large", 200 << 10, true, 413},
		{"handler Connection: close", "/forbidden/close", 200 << 10, false, 403},
		{"body past maxDrain", "/too-large", 4 << 20, false, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := startFront(t, func(s *Server) { s.Fallback.Handler = http.HandlerFunc(refuse) })
			pr, pw := io.Pipe()
			defer pw.Close()
			req, err := http.NewRequest("POST", "http://"+tf.addr+tc.path, pr)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength, req.Close = tc.size, tc.clientClose
			client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
			defer client.CloseIdleConnections()
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := client.Do(req)
				done <- result{resp, err}
			}()
			// The first KB of the body; the rest only once the answer came.
			if _, err := pw.Write(bytes.Repeat([]byte("b"), 1024)); err != nil {
				t.Fatal(err)
			}
			var res result
			select {
			case res = <-done:
			case <-time.After(30 * time.Second): // only a front that waits for the body gets here
				pw.CloseWithError(errors.New("no answer"))
				t.Fatal("no answer before the body")
			}
			if res.err != nil {
				t.Fatalf("no answer before the body: %v", res.err)
			}
			body, _ := io.ReadAll(res.resp.Body)
			res.resp.Body.Close()
			if res.resp.StatusCode != tc.status || strings.TrimSpace(string(body)) != "refused" {
				t.Fatalf("%d %q, want %d refused", res.resp.StatusCode, body, tc.status)
			}
			pw.CloseWithError(errors.New("the client gives up its body"))
			waitFor(t, "the connection closed", func() bool { return tracked(tf.Server) == 0 })
		})
	}
}

// The answer to a refused request that closes its connection is
// followed by the server's FIN while the client still sends its body,
// not by a reset: the client reads the whole answer, then EOF.
func TestRefusalClosesWriteFirst(t *testing.T) {
	tf := startFront(t, func(s *Server) { s.Fallback.Handler = http.HandlerFunc(refuse) })
	nc, br := dial(t, tf.addr)
	head := "POST /too-large HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 204800\r\n\r\n"
	if _, err := io.WriteString(nc, head+strings.Repeat("b", 1024)); err != nil {
		t.Fatal(err)
	}
	resp, body := readBody(t, br)
	if resp.StatusCode != 413 || strings.TrimSpace(body) != "refused" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if _, err := nc.Write(bytes.Repeat([]byte("b"), 4096)); err != nil { // the body goes on
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the answer: %q, %v; want EOF", rest, err)
	}
	nc.Close()
	waitFor(t, "the connection closed", func() bool { return tracked(tf.Server) == 0 })
}

// A refused request whose connection stays open has its body (up to
// maxDrain) read and dropped before the answer, as net/http: the next
// request on the connection is served.
func TestRefusalKeepAliveDrains(t *testing.T) {
	tf := startFront(t, func(s *Server) { s.Fallback.Handler = http.HandlerFunc(refuse) })
	nc, br := dial(t, tf.addr)
	body := strings.Repeat("b", 100<<10)
	for i := 0; i < len(body); i += 10 << 10 { // in pieces
		if i == 0 {
			_, _ = io.WriteString(nc, "POST /too-large HTTP/1.1\r\nHost: h\r\nContent-Length: 102400\r\n\r\n")
		}
		if _, err := io.WriteString(nc, body[i:i+10<<10]); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if resp, got := readBody(t, br); resp.StatusCode != 413 || resp.Close || strings.TrimSpace(got) != "refused" {
			t.Fatalf("%d close %v %q", resp.StatusCode, resp.Close, got)
		}
		_, _ = io.WriteString(nc, post("/too-large", "small"))
	}
}
