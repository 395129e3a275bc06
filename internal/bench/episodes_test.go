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
		slow [][2]int64 // scheduled time, delay
		want []episode
	}{
		{"none", nil, nil},
		{"one", [][2]int64{{5 * ms, 3 * ms}}, []episode{{5 * ms, 5 * ms, 3 * ms, 1}}},
		{"unsorted, one stall", [][2]int64{{3 * ms, 4 * ms}, {1 * ms, 9 * ms}, {2 * ms, 5 * ms}, {11 * ms, 3 * ms}}, []episode{{1 * ms, 11 * ms, 9 * ms, 4}}},
		{"gap just over", [][2]int64{{1 * ms, 3 * ms}, {11*ms + 1, 4 * ms}}, []episode{{1 * ms, 1 * ms, 3 * ms, 1}, {11*ms + 1, 11*ms + 1, 4 * ms, 1}}},
		{"two stalls", [][2]int64{{100 * ms, 3 * ms}, {101 * ms, 7 * ms}, {102 * ms, 3 * ms}, {900 * ms, 2 * ms}, {905 * ms, 3 * ms}},
			[]episode{{100 * ms, 102 * ms, 7 * ms, 3}, {900 * ms, 905 * ms, 3 * ms, 2}}},
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
	eps := []episode{{0, 0, 1, 2}, {20, 20, 1, 9}, {40, 40, 1, 1}, {60, 60, 1, 9}, {80, 80, 1, 5}}
	want := []episode{{20, 20, 1, 9}, {60, 60, 1, 9}, {80, 80, 1, 5}}
	if got := worstEpisodes(eps, 3); !slices.Equal(got, want) {
		t.Fatalf("worstEpisodes = %v, want %v", got, want)
	}
	if got := worstEpisodes(eps[:1], 3); !slices.Equal(got, eps[:1]) {
		t.Fatalf("worstEpisodes of one = %v", got)
	}
}
