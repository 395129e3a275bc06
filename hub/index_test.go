package hub

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// check verifies the index's invariants and that it holds exactly want.
func (x *index[V]) check(t *testing.T, want map[string]V) {
	t.Helper()
	n := 0
	for i, l := range x.leaves {
		if len(l.keys) == 0 || len(l.keys) > leafMax || len(l.keys) != len(l.vals) {
			t.Fatalf("leaf %d has %d keys, %d values", i, len(l.keys), len(l.vals))
		}
		for j, k := range l.keys {
			if k.pre != prefix(k.s) {
				t.Fatalf("leaf %d: prefix %x of %q, want %x", i, k.pre, k.s, prefix(k.s))
			}
			if j > 0 && l.keys[j-1].s >= k.s || j == 0 && i > 0 && x.leaves[i-1].keys[len(x.leaves[i-1].keys)-1].s >= k.s {
				t.Fatalf("leaf %d out of order", i)
			}
		}
		n += len(l.keys)
	}
	if n != x.n || n != len(want) {
		t.Fatalf("index holds %d (n %d), want %d", n, x.n, len(want))
	}
}

// TestIndex runs random puts and deletes against a map and checks every
// listing, page by page, against the sorted map: keys shorter than a
// prefix, keys as long as ids, and keys whose first 8 bytes (or all but
// NULs) are equal, which the prefixes cannot order.
func TestIndex(t *testing.T) {
	for name, key := range map[string]func(int) string{
		"short":  func(i int) string { return fmt.Sprintf("k%05d", i) },
		"ids":    func(i int) string { return fmt.Sprintf("%08x%08x", uint32(i)*2654435761, i) },
		"shared": func(i int) string { return fmt.Sprintf("shared-prefix-%05d", i) },
		"nuls":   func(i int) string { return "ab" + strings.Repeat("\x00", i%11) + fmt.Sprint(i%7) },
	} {
		t.Run(name, func(t *testing.T) { testIndex(t, key) })
	}
}

func testIndex(t *testing.T, key func(int) string) {
	r := rand.New(rand.NewPCG(1, 2))
	var x index[int]
	want := map[string]int{}
	for round := range 40 {
		for range 500 {
			k := key(r.IntN(3000))
			if r.IntN(3) < 1+round%2 { // rounds alternate between growing and shrinking
				_, had := want[k]
				if x.Put(k, round) == had {
					t.Fatalf("Put(%q) new = %v, had %v", k, !had, had)
				}
				want[k] = round
			} else {
				_, had := want[k]
				if x.Delete(k) != had {
					t.Fatalf("Delete(%q) = %v, had %v", k, !had, had)
				}
				delete(want, k)
			}
		}
		x.check(t, want)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range want {
				if !yield(k) {
					return
				}
			}
		})
		var got []string
		limit := 1 + r.IntN(200)
		after := ""
		for {
			pageKeys := 0
			next := x.page(Page{After: after, Limit: limit}, func(k string, v int) {
				if v != want[k] {
					t.Fatalf("%q = %d, want %d", k, v, want[k])
				}
				got = append(got, k)
				pageKeys++
			})
			if next == "" {
				break
			}
			if pageKeys != limit || next != got[len(got)-1] {
				t.Fatalf("page of %d keys, next %q, last %q", pageKeys, next, got[len(got)-1])
			}
			after = next
		}
		if !slices.Equal(got, keys) {
			t.Fatalf("round %d: listing has %d keys, want %d", round, len(got), len(keys))
		}
		for _, k := range []string{key(0), key(1500), "zzz", ""} {
			v, ok := x.Get(k)
			if w, had := want[k]; ok != had || v != w {
				t.Fatalf("Get(%q) = %d, %v; want %d, %v", k, v, ok, w, had)
			}
		}
	}
	for k := range want {
		x.Delete(k)
	}
	if x.Len() != 0 || x.leaves != nil {
		t.Fatalf("emptied index keeps %d entries, %d leaves", x.Len(), len(x.leaves))
	}
}

// TestIndexShrinks: after deleting most of a large index, the leaves that
// are left stay more than a quarter full on average.
func TestIndexShrinks(t *testing.T) {
	var x index[struct{}]
	for i := range 100000 {
		x.Put(fmt.Sprintf("%08d", i), struct{}{})
	}
	for i := range 100000 {
		if i%10 != 0 {
			x.Delete(fmt.Sprintf("%08d", i))
		}
	}
	if x.Len() != 10000 || len(x.leaves) > 4*10000/leafMax+1 {
		t.Fatalf("%d entries in %d leaves", x.Len(), len(x.leaves))
	}
}

// TestPrefixOrder: a prefix never orders two keys against their order
// as strings.
func TestPrefixOrder(t *testing.T) {
	keys := []string{"", "\x00", "a", "a\x00", "ab", "abcdefg", "abcdefgh", "abcdefgh\x00", "abcdefgi", "b", "\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff"}
	for _, a := range keys {
		for _, b := range keys {
			if a < b && prefix(a) > prefix(b) {
				t.Errorf("prefix(%q) %x > prefix(%q) %x", a, prefix(a), b, prefix(b))
			}
		}
	}
}
