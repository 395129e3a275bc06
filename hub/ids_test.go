package hub

import "testing"

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		a, b := NewIDPair(7)
		for _, id := range []string{NewID(7), a, b} {
			checkID(t, id, seen)
		}
	}
	if _, ok := NodeOf("not-an-id"); ok {
		t.Fatal("NodeOf accepted a bad id")
	}
}

// checkID checks id's form and node, and that it was not seen before.
func checkID(t *testing.T, id string, seen map[string]bool) {
	t.Helper()
	if len(id) != 16 || id[15] != '=' {
		t.Fatalf("id %q: want 15 base64url characters and '='", id)
	}
	for _, c := range id[:15] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			t.Fatalf("id %q has %q", id, c)
		}
	}
	if n, ok := NodeOf(id); !ok || n != 7 {
		t.Fatalf("NodeOf(%q) = %d, %v", id, n, ok)
	}
	if seen[id] {
		t.Fatalf("duplicate id %q", id)
	}
	seen[id] = true
}
