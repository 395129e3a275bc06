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

// gcMetrics reads the pauses of the cycles between two readings from the
// runtime's ring of 256 (cycle n at (n+255)%256).
func TestGCMetrics(t *testing.T) {
	var s0, s1 Stats
	s0.NumGC, s1.NumGC = 300, 303
	s1.PauseNs[(301+255)%256] = 1e6
	s1.PauseNs[(302+255)%256] = 3e6
	s1.PauseNs[(303+255)%256] = 2e6
	s1.PauseNs[(300+255)%256] = 9e6 // before the first reading
	want := []float64{3, 6, 3}
	for i, m := range gcMetrics("p: ", s0, s1) {
		if m.Value != want[i] {
			t.Errorf("%s = %v, want %v", m.Name, m.Value, want[i])
		}
	}
}
