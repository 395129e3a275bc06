package bench

import (
	"bufio"
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestPostWireInvocationID: with InvocationID a POST carries an
// Amz-Sdk-Invocation-Id, a UUID v4 of its own, among its signed headers
// (the gateway's dedupe key needs it signed); without, none.
func TestPostWireInvocationID(t *testing.T) {
	urls := []string{"http://127.0.0.1:1/dev/@connections/abc"}
	seen := map[string]bool{}
	for _, on := range []bool{true, true, true, false} {
		c := command{Key: benchKey, Secret: benchSecret, Region: benchRegion, InvocationID: on}
		wire, err := postWire(c, urls, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
		if err != nil {
			t.Fatal(err)
		}
		inv := r.Header.Get("Amz-Sdk-Invocation-Id")
		signed := strings.Contains(r.Header.Get("Authorization"), "amz-sdk-invocation-id")
		switch {
		case !on && (inv != "" || signed):
			t.Fatalf("off: invocation id %q, signed %v", inv, signed)
		case on && (!uuidV4.MatchString(inv) || !signed || seen[inv]):
			t.Fatalf("on: invocation id %q (seen before %v), signed %v", inv, seen[inv], signed)
		}
		seen[inv] = true
	}
}

// BenchmarkInvocationID: one POST's invocation id (the signing around it
// takes microseconds).
func BenchmarkInvocationID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if len(invocationID()) != 36 {
			b.Fatal("length")
		}
	}
}
