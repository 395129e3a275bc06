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
	hc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer hc.Close()
	resp := bufio.NewReader(hc)
	frames := bufio.NewReader(ws)
	frame := make([]byte, frameLen)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hc.Write(wire); err != nil {
			b.Fatal(err)
		}
		status, err := httpread.Answer(resp)
		if err != nil {
			b.Fatal(err)
		}
		if status != http.StatusOK {
			b.Fatalf("status %d", status)
		}
		if _, err := io.ReadFull(frames, frame); err != nil {
			b.Fatal(err)
		}
	}
}
