//go:build linux

package bench

import "testing"

// TestStallProbeEnds: the probe starts a real-time thread per CPU (or
// reports that it cannot) and end stops them; what it noted are late
// wake-ups, each on a CPU of the machine; a second end returns them again.
func TestStallProbeEnds(t *testing.T) {
	p := startStallProbe()
	if p == nil {
		t.Skip("no real-time threads here (CAP_SYS_NICE)")
	}
	stalls := p.end()
	for _, s := range stalls {
		if s.late <= int64(probeLate) || s.cpu < 0 {
			t.Fatalf("stall %+v", s)
		}
	}
	if got := p.end(); len(got) != len(stalls) {
		t.Fatalf("a second end: %d stalls, the first %d", len(got), len(stalls))
	}
}
