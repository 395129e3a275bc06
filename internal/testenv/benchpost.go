package testenv

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/wsgate/wsgate/internal/httpread"
)

// BenchPosts sends wire, one whole signed management request, b.N times
// on one keep-alive connection to addr; each time it reads the answer,
// which must be 200, and then frameLen bytes of the frame the request
// made ws's client receive. The client allocates nothing in the loop, so
// allocs/op are the server's.
func BenchPosts(b *testing.B, addr string, wire []byte, ws io.Reader, frameLen int) {
	b.Helper()
	p := NewPoster(b, addr, ws, frameLen)
	b.ReportAllocs()
	for b.Loop() {
		p.Post(b, wire)
	}
}

// Poster is BenchPosts's client, for a benchmark that sends other
// requests each time: one keep-alive connection to a server, and the
// WebSocket client whose frames the requests make.
type Poster struct {
	resp, frames *bufio.Reader
	hc           net.Conn
	frame        []byte
}

// NewPoster dials addr (closed at the end of tb) for requests whose
// frames, frameLen bytes each, ws's client receives.
func NewPoster(tb testing.TB, addr string, ws io.Reader, frameLen int) *Poster {
	tb.Helper()
	hc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { hc.Close() })
	return &Poster{resp: bufio.NewReader(hc), frames: bufio.NewReader(ws), hc: hc, frame: make([]byte, frameLen)}
}

// Post sends wire, reads the answer, which must be 200, and then the
// frame. It allocates nothing.
func (p *Poster) Post(tb testing.TB, wire []byte) {
	if _, err := p.hc.Write(wire); err != nil {
		tb.Fatal(err)
	}
	status, err := httpread.Answer(p.resp)
	if err != nil {
		tb.Fatal(err)
	}
	if status != http.StatusOK {
		tb.Fatalf("status %d", status)
	}
	if _, err := io.ReadFull(p.frames, p.frame); err != nil {
		tb.Fatal(err)
	}
}
