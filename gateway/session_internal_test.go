package gateway

import (
	"net/http"
	"strings"
	"testing"
	"unsafe"
)

// TestSessionKeepsNoHead: the strings a connection keeps for its
// lifetime (its Host, User-Agent, forwarded source IP, API key) are not
// substrings of the request head the front parsed them from, which they
// would keep alive; a second connection with the same Host and
// User-Agent shares the first one's copies.
func TestSessionKeepsNoHead(t *testing.T) {
	head := "GET /dev HTTP/1.1\r\nHost: example.com\r\nUser-Agent: agent/1.0\r\n" +
		"X-Api-Key: abcdefghijklmnopqrstuvwxyz\r\nX-Forwarded-For: 203.0.113.9\r\n"
	sub := func(v string) string {
		i := strings.Index(head, v)
		return head[i : i+len(v)]
	}
	within := func(s string) bool {
		if s == "" {
			return false
		}
		p, h := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(head)))
		return p >= h && p < h+uintptr(len(head))
	}
	r := &http.Request{Host: sub("example.com"), Header: http.Header{
		"User-Agent": {sub("agent/1.0")},
		"X-Api-Key":  {sub("abcdefghijklmnopqrstuvwxyz")},
	}}
	g := &Gateway{}
	cfg := Config{APIKeys: []APIKey{{Name: "k", Value: "abcdefghijklmnopqrstuvwxyz"}}}
	var first session
	for i := range 2 {
		cl := client{sourceIP: sub("203.0.113.9"), viaProxy: true}
		s := g.newSession(r, &cl, "id", stamp(), false)
		cfg.apiKey(r, "", &s.identity)
		for name, v := range map[string]string{"domainName": s.domainName, "userAgent": s.identity.UserAgent,
			"sourceIp": s.identity.SourceIP, "apiKey": s.identity.APIKey} {
			if v == "" || within(v) {
				t.Fatalf("connection %d: %s %q is in the request head", i, name, v)
			}
		}
		if i == 0 {
			first = s
			continue
		}
		if unsafe.StringData(s.domainName) != unsafe.StringData(first.domainName) ||
			unsafe.StringData(s.identity.UserAgent) != unsafe.StringData(first.identity.UserAgent) {
			t.Fatal("the second connection copied its Host or User-Agent again")
		}
	}
}
