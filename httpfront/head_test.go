package httpfront

import (
	"bufio"
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

var headSeeds = []string{
	"GET /dev HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	"POST /dev/@connections/abc%3D HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nX-Amz-Date: 20261129T000000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=x\r\n\r\nhello",
	"DELETE /dev/@connections/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
	"GET /a?b=c&d HTTP/1.1\r\nHost: [::1]:80\r\nX: 1\r\nx: 2\r\nX-Empty:\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
	"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX:  v \t\r\n\r\n",
	browserHandshake,
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\nCache-Control: max-age=0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: x\r\nPragma: no-cache\r\n\r\n",
	"GET /%41/b%2Fc%20d#e;f HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\tc\x80\r\n\r\n",
}

// browserHandshake is a WebSocket handshake as Chromium sends it.
const browserHandshake = "GET /dev HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade\r\nPragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\nOrigin: https://example.com\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"

// FuzzParseHead: every head parseHead accepts, net/http's ReadRequest
// reads the same way (method, target, URL, Host, header, length, close),
// and the server-level checks net/http adds (one valid Host, valid names
// and values) pass; what parseHead does not accept goes to net/http,
// so its answer is net/http's by construction.
func FuzzParseHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, verdict := parseHead(b)
		if verdict != headOK {
			return
		}
		// A request box a connection reuses parses it the same.
		box := new(reqBox)
		_, _ = parseHeadInto([]byte("POST /x?y HTTP/1.1\r\nHost: h\r\nA: 1\r\nA: 2\r\nB: 3\r\nContent-Length: 1\r\n\r\n"), box)
		if p2, _ := parseHeadInto(b, box); !reflect.DeepEqual(p2.req, p.req) {
			t.Fatalf("%q: parsed into a used box\n got %+v\nwant %+v", b, p2.req, p.req)
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("parseHead accepted %q; net/http: %v", b, err)
		}
		got := p.req
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.URL.String() != want.URL.String() ||
			got.Host != want.Host || got.ContentLength != want.ContentLength || got.Close != want.Close ||
			got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.Proto != want.Proto {
			t.Fatalf("%q:\n got %s %s %q host %q len %d close %v\nwant %s %s %q host %q len %d close %v", b,
				got.Method, got.RequestURI, got.URL, got.Host, got.ContentLength, got.Close,
				want.Method, want.RequestURI, want.URL, want.Host, want.ContentLength, want.Close)
		}
		if *got.URL != *want.URL {
			t.Fatalf("%q: URL\n got %+v\nwant %+v", b, *got.URL, *want.URL)
		}
		if !reflect.DeepEqual(got.Header, want.Header) {
			t.Fatalf("%q: header\n got %q\nwant %q", b, got.Header, want.Header)
		}
		if want.TransferEncoding != nil {
			t.Fatalf("%q: accepted with a transfer coding", b)
		}
		if strings.Contains(string(b[:p.n]), "\n\n") {
			t.Fatalf("%q: accepted a bare LF", b)
		}
	})
}

// TestParseHeadVerdicts: the seeds' verdicts, so a change of the subset
// shows.
func TestParseHeadVerdicts(t *testing.T) {
	ok := map[int]bool{0: true, 1: true, 2: true, 3: true, 22: true, 23: true, 24: true, 25: true, 26: true}
	for i, s := range headSeeds {
		_, v := parseHead([]byte(s))
		if (v == headOK) != ok[i] {
			t.Errorf("seed %d %q: verdict %d", i, s, v)
		}
	}
	p, _ := parseHead([]byte("GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n"))
	if cc := p.req.Header["Cache-Control"]; len(cc) != 1 || cc[0] != "no-cache" {
		t.Errorf("Pragma: no-cache without Cache-Control: Cache-Control %q, want no-cache as net/http", cc)
	}
	if _, v := parseHead([]byte("GET / HTTP/1.1\r\nHost: a\r\n")); v != headMore {
		t.Errorf("incomplete head: verdict %d", v)
	}
	long := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", maxHead) + "\r\n\r\n"
	if _, v := parseHead([]byte(long)); v != headTooLarge {
		t.Errorf("long head: verdict %d", v)
	}
	many := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", maxHeaders+1) + "\r\n"
	if _, v := parseHead([]byte(many)); v != headTooLarge {
		t.Errorf("%d header lines: verdict %d", maxHeaders+1, v)
	}
}

// BenchmarkParseHeadHandshake: a WebSocket handshake head as a browser
// sends it (Pragma, the Sec-WebSocket-* names in RFC 6455's case) and a
// bare one (wsgate-bench's clients), parsed into a connection's box.
func BenchmarkParseHeadHandshake(b *testing.B) {
	for _, c := range []struct{ name, head string }{{"browser", browserHandshake}, {"bare", headSeeds[0]}} {
		b.Run(c.name, func(b *testing.B) {
			head := []byte(c.head)
			b.ReportAllocs()
			for b.Loop() {
				if _, v := parseHeadInto(head, new(reqBox)); v != headOK {
					b.Fatal(v)
				}
			}
		})
	}
}

// BenchmarkParseHead: a signed management POST's head.
func BenchmarkParseHead(b *testing.B) {
	head := []byte(benchHead)
	b.ReportAllocs()
	for b.Loop() {
		if _, v := parseHead(head); v != headOK {
			b.Fatal(v)
		}
	}
}

// TestPlainBytes: the word-at-a-time test agrees with the byte test for
// every byte value at every place in a word and in the tail.
func TestPlainBytes(t *testing.T) {
	for c := 0; c < 256; c++ {
		for i := 0; i < 19; i++ {
			b := []byte(strings.Repeat("Aa: 1\x80~ ", 3)[:19])
			b[i] = byte(c)
			if got, want := plainBytes(b), plainByte(byte(c)); got != want {
				t.Fatalf("byte %#x at %d: %v, want %v", c, i, got, want)
			}
		}
	}
}

// BenchmarkParseHeadInto: the same head into a connection's reused box,
// as every request after a connection's first.
func BenchmarkParseHeadInto(b *testing.B) {
	head := []byte(benchHead)
	box := new(reqBox)
	b.ReportAllocs()
	for b.Loop() {
		if _, v := parseHeadInto(head, box); v != headOK {
			b.Fatal(v)
		}
	}
}

// benchHead is a signed management POST's head as the Go SDK sends it.
const benchHead = "POST /dev/@connections/Aa0Bb1Cc2Dd3Ee4%3D HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: aws-sdk-go-v2/1.30\r\n" +
	"Content-Length: 52\r\nAmz-Sdk-Invocation-Id: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/execute-api/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n" +
	"Content-Type: application/octet-stream\r\nX-Amz-Content-Sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\nX-Amz-Date: 20261129T000000Z\r\nAccept-Encoding: gzip\r\n\r\n"

// FuzzCutCRLF: cutCRLF (two strings.IndexByte) cuts as a loop over the
// bytes does: at the first CRLF, and not at all when a lone CR or LF
// comes first.
func FuzzCutCRLF(f *testing.F) {
	for _, s := range []string{"", "\r\n", "a\r\nb", "a\nb\r\n", "a\rb\r\n", "ab\r", "\r\r\n", "a\r\n\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		line, rest, ok := cutCRLF(s)
		wl, wr, wok := cutCRLFBytewise(s)
		if line != wl || rest != wr || ok != wok {
			t.Fatalf("cutCRLF(%q) = %q, %q, %v; want %q, %q, %v", s, line, rest, ok, wl, wr, wok)
		}
	})
}

// cutCRLFBytewise is cutCRLF as a loop over the bytes (its first form).
func cutCRLFBytewise(s string) (line, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				return s[:i], s[i+2:], true
			}
			return "", "", false
		case '\n':
			return "", "", false
		}
	}
	return "", "", false
}

// TestTokenByte: the table agrees with RFC 9110's tchar for every byte.
func TestTokenByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
		if got := tokenByte(byte(c)); got != want {
			t.Errorf("tokenByte(%#x) = %v, want %v", c, got, want)
		}
	}
}
