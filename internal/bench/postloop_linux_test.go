//go:build linux

package bench

import (
	"strings"
	"testing"
)

func TestParseFrame(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		in      string
		payload string
		size    int
		err     bool
	}{
		{in: "", size: 0},
		{in: "\x81", size: 0},
		{in: "\x81\x05hel", size: 0},
		{in: "\x81\x05hello\x81", payload: "hello", size: 7},
		{in: "\x81\x7e\x01", size: 0},
		{in: "\x81\x7e\x01\x2c" + long, payload: long, size: 304},
		{in: "\x88\x02\x03\xe8", err: true},  // close
		{in: "\x81\x85abcdhello", err: true}, // masked
		{in: "\xc1\x05hello", err: true},     // RSV1
		{in: "\x81\x7f" + long, err: true},   // 64-bit length
	} {
		p, n, err := parseFrame([]byte(tc.in))
		if (err != nil) != tc.err || n != tc.size || string(p) != tc.payload {
			t.Errorf("parseFrame(%q) = %q, %d, %v; want %q, %d, error %v", tc.in, p, n, err, tc.payload, tc.size, tc.err)
		}
	}
}

func TestParseAnswer(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nDate: Sun, 29 Nov 2026 20:00:00 GMT\r\nContent-Length: 0\r\n\r\n"
	const gone = "HTTP/1.1 410 Gone\r\ncontent-length: 2\r\n\r\n{}"
	for _, tc := range []struct {
		in           string
		status, size int
		err          bool
	}{
		{in: ok[:20]},
		{in: ok, status: 200, size: len(ok)},
		{in: ok + "HTTP/1.1", status: 200, size: len(ok)},
		{in: gone[:len(gone)-1]},
		{in: gone, status: 410, size: len(gone)},
		{in: "HTTP/1.0 200 OK\r\n\r\n", err: true},
		{in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", err: true},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", err: true},
	} {
		status, size, err := parseAnswer([]byte(tc.in))
		if (err != nil) != tc.err || status != tc.status || size != tc.size {
			t.Errorf("parseAnswer(%q) = %d, %d, %v; want %d, %d, error %v", tc.in, status, size, err, tc.status, tc.size, tc.err)
		}
	}
}
