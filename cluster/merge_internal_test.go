package cluster

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wsgate/wsgate/hub"
)

// TestMergeOrder: merge's first limit+1 items are those of the lists'
// union sorted bytewise, for ids and for keys shorter than 8 bytes, keys
// equal in their first 8 bytes and keys with bytes above 0x7f (the
// prefix comparison must agree with Go's string order).
func TestMergeOrder(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []string{"", "a", "ab", "abcdefgh", "abcdefghA", "abcdefghB", "abcdefg\x00", "abcdefg", "\xff", "\x80z", "zz"}
	for round := range 500 {
		lists := make([][]string, 1+r.IntN(4))
		var all []string
		for i := range lists {
			seen := map[string]bool{}
			for range r.IntN(40) {
				var k string
				if r.IntN(2) == 0 {
					k = alphabet[r.IntN(len(alphabet))] + alphabet[r.IntN(len(alphabet))]
				} else {
					k = hub.NewID(byte(1 + i))
				}
				if !seen[k] {
					seen[k] = true
					lists[i] = append(lists[i], k)
				}
			}
			slices.Sort(lists[i])
			all = append(all, lists[i]...)
		}
		slices.Sort(all)
		limit := r.IntN(50)
		want := all
		if limit > 0 && len(want) > limit+1 {
			want = want[:limit+1]
		}
		got := merge(lists, limit, func(s string) string { return s })
		if !slices.Equal(got, want) {
			t.Fatalf("round %d, limit %d: merged %q, want %q", round, limit, got, want)
		}
	}
}

// TestKeyPrefixOrder: a smaller prefix means a smaller key.
func TestKeyPrefixOrder(t *testing.T) {
	t.Parallel()
	keys := []string{"", "\x00", "a", "a\x00", "ab", "abcdefgh", "abcdefgha", "abcdefgi", "b", "\xff\xff\xff\xff\xff\xff\xff\xff\xff"}
	for _, a := range keys {
		for _, b := range keys {
			if keyPrefix(a) < keyPrefix(b) && !(a < b) {
				t.Errorf("keyPrefix(%q) < keyPrefix(%q) but %q >= %q", a, b, a, b)
			}
		}
	}
}

// TestDecodeIDs: a members reply splits into its ids; malformed replies,
// and one that ends right after its flag's newline, are answered without
// a panic (the ids share the reply's bytes).
func TestDecodeIDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		ids  []string
		more bool
		bad  bool
	}{
		{in: "0"},
		{in: "1", more: true},
		{in: "0\nab", ids: []string{"ab"}},
		{in: "1\nab\ncd", ids: []string{"ab", "cd"}, more: true},
		{in: "0\n", ids: []string{""}},
		{in: "", bad: true},
		{in: "2\nab", bad: true},
		{in: "0ab", bad: true},
	} {
		ids, more, err := decodeIDs([]byte(c.in))
		if (err != nil) != c.bad || more != c.more || !slices.Equal(ids, c.ids) {
			t.Errorf("decodeIDs(%q) = %q, %v, %v; want %q, %v, bad %v", c.in, ids, more, err, c.ids, c.more, c.bad)
		}
	}
}
