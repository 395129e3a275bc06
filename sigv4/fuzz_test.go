package sigv4

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseAuthorization: the Authorization parser never panics, and what
// it accepts is well formed.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f,SignedHeaders=host,Signature=00",
		"Bearer x", "AWS4-HMAC-SHA256 ,,,=,", "AWS4-HMAC-SHA256 Credential=////",
	} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, h string, hasDate bool) {
		in, e := parseAuthorization(h, hasDate)
		if e != nil {
			if e.StatusCode != 403 || e.ErrorType == "" || e.Message == "" {
				t.Fatalf("malformed error %+v", e)
			}
			return
		}
		if in.accessKey == "" || !strings.Contains(";"+in.signedHeaders+";", ";host;") || !hasDate {
			t.Fatalf("accepted %q as %+v", h, in)
		}
	})
}

// FuzzCanonicalQuery: never panics, and the canonical form is a fixed point
// (canonicalizing it again changes nothing), contains only unreserved bytes,
// escapes, '=' and '&', and is sorted.
func FuzzCanonicalQuery(f *testing.F) {
	for _, s := range []string{"", "a=b&c", "Param1=value2&Param1=Value1", "%E1%88%B4=bar&a+b=%2", "&&=&=x", "X-Amz-Signature=1&b=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var q queryBuilder
		out := string(q.appendCanonicalQuery(nil, raw, false, false))
		again := string(q.appendCanonicalQuery(nil, out, false, false))
		if out != again {
			t.Fatalf("not a fixed point: %q -> %q -> %q", raw, out, again)
		}
		checkEscaped(t, out, "=&")
		pairs := strings.Split(out, "&")
		for i := 1; i < len(pairs) && out != ""; i++ {
			a, b := strings.SplitN(pairs[i-1], "=", 2), strings.SplitN(pairs[i], "=", 2)
			if a[0] > b[0] || a[0] == b[0] && a[1] > b[1] {
				t.Fatalf("not sorted: %q", out)
			}
		}
		p := scanPresignParams(raw)
		if _, e := parsePresigned(&p); e != nil && e.Message == "" {
			t.Fatalf("empty message")
		}
	})
}

// FuzzCanonicalURI: never panics; the non-S3 form decodes back to the
// (normalized) wire path, and the S3 form is a fixed point.
func FuzzCanonicalURI(f *testing.F) {
	for _, s := range []string{"/", "", "/dev/@connections/abc%3D", "//a/./b/../c/", "/example space/", "/%zz%2F%41", "a/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out := string(appendCanonicalURI(nil, p, false, true))
		checkEscaped(t, out, "/")
		want := p
		if pathNeedsNormalizing(p) {
			want = normalizePath(p)
		}
		if want == "" {
			want = "/"
		}
		if got := unescape(out, false); got != want {
			t.Fatalf("%q -> %q decodes to %q, want %q", p, out, got, want)
		}
		if !pathNeedsNormalizing(p) && normalizePath(p) != p && p != "" {
			t.Fatalf("%q said clean but normalizes to %q", p, normalizePath(p))
		}
		s3 := string(appendCanonicalURI(nil, p, true, false))
		checkEscaped(t, s3, "/")
		if again := string(appendCanonicalURI(nil, s3, true, false)); again != s3 {
			t.Fatalf("S3 form not a fixed point: %q -> %q -> %q", p, s3, again)
		}
	})
}

// checkEscaped fails unless s holds only unreserved bytes, upper-case %XX
// escapes and the extra bytes allowed.
func checkEscaped(t *testing.T, s, extra string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved[c] || strings.IndexByte(extra, c) >= 0:
		case c == '%' && i+2 < len(s) && strings.IndexByte(upperHex, s[i+1]) >= 0 && strings.IndexByte(upperHex, s[i+2]) >= 0:
			i += 2
		default:
			t.Fatalf("byte %q at %d not escaped in %q", c, i, s)
		}
	}
}

// countingReader counts how much of a body was read.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return nil }

// FuzzVerify feeds whole HTTP requests (seeded with every signed request of
// the test suites) to Verify: it never panics, never reads more than
// MaxBodyBytes (+1 to notice the excess), and returns either an identity or
// an *Error.
func FuzzVerify(f *testing.F) {
	_ = filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(path, ".sreq") || strings.HasSuffix(path, "signed-request.txt")) {
			if b, err := os.ReadFile(path); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	const limit = 64
	f.Fuzz(func(t *testing.T, raw []byte) {
		rr, err := parseRaw(raw)
		if err != nil {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(rr.bytes())))
		if err != nil {
			return
		}
		body := &countingReader{r: io.MultiReader(req.Body, bytes.NewReader(rr.body))}
		req.Body = body
		v := suiteVerifier(vectorCase{creds: Credentials{AccessKeyID: suiteAccessKey, SecretAccessKey: suiteSecret}, normalize: true})
		v.MaxBodyBytes = limit
		id, err := v.Verify(req)
		if (id == nil) == (err == nil) {
			t.Fatalf("identity %v with error %v", id, err)
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T", err)
			}
		}
		if body.n > limit+1 {
			t.Fatalf("read %d body bytes with a cap of %d", body.n, limit)
		}
	})
}

// FuzzHeaderValue: the in-place trimming and collapsing equals the plain
// definition (split on ASCII whitespace, join with one space).
func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"", " a  b ", "\"a   b   c\"", "x\t\ty", "é \v z "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want := strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r < 0x80 && headerSpace[r] }), " ")
		if got := string(appendHeaderValue(nil, v)); got != want {
			t.Fatalf("%q -> %q, want %q", v, got, want)
		}
	})
}
