package testenv

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchPosts sends wire, one whole signed management request, b.N times
// on one keep-alive connection to addr; each time it reads the answer,
// which must be 200, and then frameLen bytes of the frame the request
// made ws's client receive.
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
		r, err := http.ReadResponse(resp, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if r.StatusCode != http.StatusOK {
			b.Fatalf("status %d", r.StatusCode)
		}
		if _, err := io.ReadFull(frames, frame); err != nil {
			b.Fatal(err)
		}
	}
}
