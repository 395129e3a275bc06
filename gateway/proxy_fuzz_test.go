package gateway

import (
	"strings"
	"testing"
)

// FuzzParseProxyResponse: whatever an integration answers, the parser of
// Lambda proxy responses never panics; it either yields a response with a
// valid HTTP status or a clear "malformed Lambda proxy response" error, and
// decoding the body of an accepted response fails cleanly too.
func FuzzParseProxyResponse(f *testing.F) {
	for _, s := range []string{
		``, `null`, ` {} `, `{"statusCode":200,"body":"pong"}`,
		`{"statusCode":401,"headers":{"A":"b"},"multiValueHeaders":{"A":["b","c"]},"body":"no"}`,
		`{"statusCode":200,"body":"aGk=","isBase64Encoded":true}`,
		`{"statusCode":200,"body":"not base64!","isBase64Encoded":true}`,
		`{"statusCode":"200"}`, `{"statusCode":99}`, `{"statusCode":600}`, `{"statusCode":2e2}`,
		`{"statusCode":200.5}`, `{"statusCode":-1}`, `{"statusCode":1e40}`, `{"groups":["a",1]}`,
		`{"headers":{"A":1}}`, `{"body":{}}`, `{"isBase64Encoded":"yes"}`, `{`, `[1,2]`, `"text"`, `42`,
		"\xff\xfe", `{"statusCode":200}{"statusCode":500}`, `{"statusCode":200,"statusCode":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		res, err := parseProxyResponse(out)
		if err != nil {
			if res != nil {
				t.Fatalf("error %v with a response %+v", err, res)
			}
			if !strings.HasPrefix(err.Error(), "malformed Lambda proxy response: ") {
				t.Fatalf("unclear error %q for %q", err, out)
			}
			return
		}
		if res.StatusCode < 100 || res.StatusCode > 599 {
			t.Fatalf("accepted status %d from %q", res.StatusCode, out)
		}
		if _, err := res.bytes(); err != nil && !res.IsBase64Encoded {
			t.Fatalf("plain body failed to decode: %v", err)
		}
	})
}
