package bench

import (
	"slices"
	"testing"
	"time"
)

// TestSlowEpisodes: slow POSTs within episodeGap of the one before are one
// episode, further apart two; the worst are the largest, in time order.
func TestSlowEpisodes(t *testing.T) {
	ms := int64(time.Millisecond)
	for _, c := range []struct {
		name string
		slow [][3]int64 // scheduled time, delay, write to socket
		want []episode
	}{
		{"none", nil, nil},
		{"one", [][3]int64{{5 * ms, 3 * ms, 3*ms - ms}}, []episode{{5 * ms, 5 * ms, 3 * ms, 1, 2 * ms}}},
		{"unsorted, one stall", [][3]int64{{3 * ms, 4 * ms, 4*ms - ms}, {1 * ms, 9 * ms, 9*ms - ms}, {2 * ms, 5 * ms, 8*ms + 1}, {11 * ms, 3 * ms, 3*ms - ms}}, []episode{{1 * ms, 11 * ms, 9 * ms, 4, 8*ms + 1}}},
		{"gap just over", [][3]int64{{1 * ms, 3 * ms, 3*ms - ms}, {11*ms + 1, 4 * ms, 4*ms - ms}}, []episode{{1 * ms, 1 * ms, 3 * ms, 1, 2 * ms}, {11*ms + 1, 11*ms + 1, 4 * ms, 1, 3 * ms}}},
		{"two stalls", [][3]int64{{100 * ms, 3 * ms, 3*ms - ms}, {101 * ms, 7 * ms, 7*ms - ms}, {102 * ms, 3 * ms, 3*ms - ms}, {900 * ms, 2 * ms, 2*ms - ms}, {905 * ms, 3 * ms, 3*ms - ms}},
			[]episode{{100 * ms, 102 * ms, 7 * ms, 3, 6 * ms}, {900 * ms, 905 * ms, 3 * ms, 2, 2 * ms}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := slowEpisodes(slices.Clone(c.slow))
			if !slices.Equal(got, c.want) {
				t.Fatalf("slowEpisodes(%v) = %v, want %v", c.slow, got, c.want)
			}
			m := episodeMetrics("5000/s: ", len(c.slow), got)
			if m[0].Value != float64(len(c.slow)) || m[1].Value != float64(len(c.want)) {
				t.Fatalf("metrics %v", m)
			}
		})
	}
	eps := []episode{{0, 0, 1, 2, 0}, {20, 20, 1, 9, 0}, {40, 40, 1, 1, 0}, {60, 60, 1, 9, 0}, {80, 80, 1, 5, 0}}
	want := []episode{{20, 20, 1, 9, 0}, {60, 60, 1, 9, 0}, {80, 80, 1, 5, 0}}
	if got := worstEpisodes(eps, 3); !slices.Equal(got, want) {
		t.Fatalf("worstEpisodes = %v, want %v", got, want)
	}
	if got := worstEpisodes(eps[:1], 3); !slices.Equal(got, eps[:1]) {
		t.Fatalf("worstEpisodes of one = %v", got)
	}
}

// TestMarkEpisodes: an episode is marked with the dials and the probe's
// late wake-ups from slowFrame before its first POST's time to its last
// POST's time plus its worst delay, real-time and ordinary apart; the
// stall metrics count the window's late wake-ups over slowFrame, and the
// worst delay and write-to-socket time of the episodes without a machine
// stall and of those without either.
func TestMarkEpisodes(t *testing.T) {
	ms := int64(time.Millisecond)
	start := int64(1_000_000) * ms // unix ns of the window's start
	eps := []episode{{100 * ms, 110 * ms, 5 * ms, 30, 4 * ms}, {500 * ms, 500 * ms, 3 * ms, 1, 3 * ms}, {900 * ms, 905 * ms, 9 * ms, 4, 2 * ms}}
	dialAt := []int64{97 * ms, 98*ms - 1, 98 * ms, 115 * ms, 116 * ms, 503 * ms, 700 * ms}
	stalls := []stall{
		{at: start + 90*ms, late: 8 * ms, cpu: 0},                       // ends at 98 ms: in the first (from 98 ms)
		{at: start + 114*ms, late: 4 * ms, cpu: 1},                      // in the first
		{at: start + 115*ms + 1, late: 9 * ms, cpu: 1},                  // just after the first (ends 115 ms)
		{at: start + 480*ms, late: 1500 * 1000, cpu: 0},                 // 1.5 ms, ends 481.5: before the second
		{at: start + 902*ms, late: 1500 * 1000, cpu: 1},                 // in the third, under slowFrame
		{at: start + 903*ms, late: 6 * ms, cpu: 0, ordinary: true},      // the third's CPU contention
		{at: start + 499*ms, late: 1500 * 1000, cpu: 1, ordinary: true}, // in the second, under slowFrame
		{at: start - 50*ms, late: 5 * ms, cpu: 0},                       // in the warm-up
		{at: start + 6000*ms, late: 5 * ms, cpu: 0, ordinary: true},     // after the window
	}
	got := markEpisodes(eps, dialAt, stalls, start)
	want := []episodeMark{{dials: 2, stall: 8 * ms, cpus: 2}, {dials: 1, busy: 1500 * 1000}, {stall: 1500 * 1000, cpus: 1, busy: 6 * ms}}
	if !slices.Equal(got, want) {
		t.Fatalf("markEpisodes = %+v, want %+v", got, want)
	}
	m := stallMetrics("5000/s: ", eps, got, stalls, start, 5000*ms)
	var vals []float64
	for _, x := range m {
		vals = append(vals, x.Value)
	}
	// real-time 3 (longest 9), ordinary 1 (6), episodes with a machine
	// stall 1; without: the second and third (worst 9, write 3); with no
	// late probe thread: the second (3, 3).
	if w := []float64{3, 9, 1, 6, 1, 9, 3, 3, 3}; !slices.Equal(vals, w) {
		t.Fatalf("stallMetrics = %v, want %v (%v)", vals, w, m)
	}
	if got := worstEpisodeIndexes(eps, 2); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("worstEpisodeIndexes = %v", got)
	}
}
