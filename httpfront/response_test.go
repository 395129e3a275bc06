package httpfront

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// writeCounter is a connection that keeps what is written to it and
// counts the writes.
type writeCounter struct {
	net.Conn
	writes int
	buf    bytes.Buffer
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}

// A response's head and body go out in one write, whatever the body's
// size up to what the front buffers: written apart, a body under the MSS
// (64 KB on loopback) waited in the kernel behind the unacknowledged
// head until the client's delayed ACK, 40 ms.
func TestResponseOneWrite(t *testing.T) {
	for _, n := range []int{0, 10, 2048, 2049, 19056, maxBuffered} {
		wc := &writeCounter{}
		var w response
		w.reset(&conn{nc: wc}, httptest.NewRequest(http.MethodGet, "/", nil))
		body := bytes.Repeat([]byte("a"), n)
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := w.finish(false); err != nil {
			t.Fatal(err)
		}
		if wc.writes != 1 {
			t.Errorf("body of %d bytes: %d writes, want 1", n, wc.writes)
		}
		resp, err := http.ReadResponse(bufio.NewReader(&wc.buf), nil)
		if err != nil {
			t.Fatalf("body of %d bytes: %v", n, err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, body) || resp.ContentLength != int64(n) {
			t.Errorf("body of %d bytes: read %d bytes (Content-Length %d), %v", n, len(got), resp.ContentLength, err)
		}
	}
}

// TestAppendStatus: every code's status line is "HTTP/1.1 code text" as
// net/http writes it (the codes appendStatus spells out whole included),
// after what the buffer held.
func TestAppendStatus(t *testing.T) {
	for code := 100; code <= 999; code++ {
		text := http.StatusText(code)
		if text == "" {
			text = "status code " + strconv.Itoa(code)
		}
		want := "x" + "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		if got := string(appendStatus([]byte("x"), code)); got != want {
			t.Fatalf("%d: %q, want %q", code, got, want)
		}
	}
}
