package gateway

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/wsgate/wsgate/sigv4"
)

// TestLastPathID: taking the id from the decoded path gives what
// decoding the segment gives, for every spelling of an id and for
// segments the decoded path does not end in.
func TestLastPathID(t *testing.T) {
	for _, c := range []struct{ seg, path string }{
		{"Aa0Bb1Cc2Dd3Ee4=", "/dev/@connections/Aa0Bb1Cc2Dd3Ee4="},
		{"Aa0Bb1Cc2Dd3Ee4%3D", "/dev/@connections/Aa0Bb1Cc2Dd3Ee4="},
		{"Aa0Bb1Cc2Dd3Ee4%3d", "/dev/@connections/Aa0Bb1Cc2Dd3Ee4="},
		{"%41%62", "/dev/@connections/Ab"},
		{"a%2Fb", "/dev/@connections/a/b"},        // the decoded path's last segment is "b"
		{"abc", "/dev/@connections/abd"},          // a path that does not match: decoded anew
		{"abc%3D", "/dev/@connections/abc=x"},     // longer
		{"abc%3Dx", "/dev/@connections/abc="},     // shorter
		{"abc%3", "/dev/@connections/abc%3"},      // a bad escape
		{"abc%zz", "/dev/@connections/abc%zz"},    // a bad escape
		{"", "/dev/@connections/"},                // empty
		{"x", ""},                                 // no decoded path
		{"a+b%20c", "/dev/@connections/a+b c"},    // '+' is itself in a path
		{"a%252F", "/dev/@connections/a%2F"},      // an escaped '%'
		{"%E2%82%AC", "/dev/@connections/\u20ac"}, // bytes past ASCII
	} {
		got, gotOK := lastPathID(c.seg, c.path)
		want, wantOK := pathID(c.seg)
		if got != want || gotOK != wantOK {
			t.Errorf("lastPathID(%q, %q) = %q, %v; pathID gives %q, %v", c.seg, c.path, got, gotOK, want, wantOK)
		}
		if u, err := url.PathUnescape(c.seg); err == nil && c.path != "" && !unescapesTo(c.seg, u) {
			t.Errorf("unescapesTo(%q, %q) false", c.seg, u)
		}
	}
}

// BenchmarkLastPathID: an SDK's escaped id.
func BenchmarkLastPathID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := lastPathID("Aa0Bb1Cc2Dd3Ee4%3D", "/dev/@connections/Aa0Bb1Cc2Dd3Ee4="); !ok {
			b.Fatal("no id")
		}
	}
}

// TestSlots: max slots are taken, the next is refused until one is given
// back.
func TestSlots(t *testing.T) {
	s := &slots{max: 2}
	for i := range 2 {
		if !s.take() {
			t.Fatalf("slot %d of 2 refused", i+1)
		}
	}
	if s.take() {
		t.Fatal("a third slot taken of 2")
	}
	s.release()
	if !s.take() {
		t.Fatal("a slot given back was not taken again")
	}
	if s.take() {
		t.Fatal("a third slot taken of 2")
	}
}

// BenchmarkManagementSlot: a management request's slot taken and given
// back: slots against the buffered channel it replaced.
func BenchmarkManagementSlot(b *testing.B) {
	b.Run("channel", func(b *testing.B) {
		c := make(chan struct{}, 64)
		for b.Loop() {
			select {
			case c <- struct{}{}:
			default:
				b.Fatal("full")
			}
			<-c
		}
	})
	b.Run("slots", func(b *testing.B) {
		s := &slots{max: 64}
		for b.Loop() {
			if !s.take() {
				b.Fatal("full")
			}
			s.release()
		}
	})
}

// TestDedupeKey: an SDK call's key is its access key and invocation id
// only when the invocation id is among the signed headers, matched as a
// whole item of the list; presigned or unsigned calls have none.
func TestDedupeKey(t *testing.T) {
	const inv = "3b3a4c7e-5d4f-4a8e-9a3e-1f2b3c4d5e6f"
	id := &sigv4.Identity{AccessKeyID: "AKID"}
	for _, c := range []struct {
		signed string
		want   bool
	}{
		{"amz-sdk-invocation-id;amz-sdk-request;host;x-amz-date", true},
		{"amz-sdk-request;host;amz-sdk-invocation-id", true},
		{"amz-sdk-invocation-id", true},
		{"host;amz-sdk-invocation-id;x-amz-date", true},
		{"host;x-amz-date", false},
		{"amz-sdk-invocation-idx;host", false},
		{"host;xamz-sdk-invocation-id", false},
		{"x-amz-sdk-invocation-id;amz-sdk-invocation-ids", false},
		{"x-amz-sdk-invocation-id;amz-sdk-invocation-id", true},
		{"amz-sdk-invocation-id-x;amz-sdk-invocation-id", true},
		{"amz-sdk-invocation-idx", false},
		{"amz-sdk-invocation-i", false},
		{"", false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://x/dev/@connections/abc", nil)
		r.Header.Set("Amz-Sdk-Invocation-Id", inv)
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/execute-api/aws4_request, SignedHeaders="+c.signed+", Signature=00")
		want := ""
		if c.want {
			want = "sdk:AKID:" + inv
		}
		if key := dedupeKey(r, id); key.String() != want || key.Empty() != !c.want {
			t.Errorf("SignedHeaders=%s: key %q, want %q", c.signed, key.String(), want)
		}
		if key := dedupeKey(r, &sigv4.Identity{AccessKeyID: "AKID", Presigned: true}); !key.Empty() {
			t.Errorf("presigned: key %q, want none", key.String())
		}
	}
}

// BenchmarkDedupeKey: an SDK call's key from its headers (a cluster's
// keyed POST reads it once), in parts: no allocation.
func BenchmarkDedupeKey(b *testing.B) {
	r, _ := http.NewRequest(http.MethodPost, "http://x/dev/@connections/abc", nil)
	r.Header.Set("Amz-Sdk-Invocation-Id", "3b3a4c7e-5d4f-4a8e-9a3e-1f2b3c4d5e6f")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/execute-api/aws4_request, SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	id := &sigv4.Identity{AccessKeyID: "AKID"}
	b.ReportAllocs()
	for b.Loop() {
		if key := dedupeKey(r, id); key.Empty() {
			b.Fatal("no key")
		}
	}
}
