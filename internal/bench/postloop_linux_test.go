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
