package hub

import "testing"

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := NewID(7)
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
	if _, ok := NodeOf("not-an-id"); ok {
		t.Fatal("NodeOf accepted a bad id")
	}
}
