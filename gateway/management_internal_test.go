package gateway

import (
	"net/url"
	"testing"
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
