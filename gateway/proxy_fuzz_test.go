package gateway

import (
	"bytes"
	"fmt"
	"reflect"
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

// proxyScanSeeds are answers that take every branch of the scanner and of
// its fall-back to encoding/json.
var proxyScanSeeds = []string{
	`{"statusCode":200,"body":"{\"action\":\"sendmessage\",\"data\":\"hello\"}"}`,
	`{"statusCode":201,"body":"plain","isBase64Encoded":false,"headers":{"Content-Type":"text/plain","X-A":null}}`,
	`{"body":"\ud83d\ude00 \ud83d \ude00x \u00e9\u0000\b\f\n\r\t\/\\\""}`, "{\"body\":\"bad \xff utf-8 \xed\xa0\x80\"}",
	`{"body":"\ud800\u0041"}`, `{"body":"\udc00\ud800"}`, `{"body":"\uD83D\uDE00"}`, `{"body":"\ud83d\\u0041"}`,
	`{"statusCode":200,"StatusCode":500}`, `{"STATUSCODE":404}`, `{"statuscode":404}`, `{"status\u0043ode":404}`,
	"{\"\u017ftatusCode\":404}", "{\"\xe2\x84\xaaey\":1}", `{"body":null,"body":"b","body":null}`,
	`{"statusCode":null}`, `{"statusCode":-0}`, `{"statusCode":9223372036854775808}`, `{"statusCode":true}`,
	`{"headers":{"a":"1"},"headers":{"b":"2","a":"3"}}`, `{"headers":{"a":"1"},"headers":null,"headers":{"b":"2"}}`,
	`{"headers":[]}`, `{"headers":{"a":["x"]}}`, `{"headers":{"a\u0041":"\u00e9"}}`,
	`{"multiValueHeaders":{"a":["1",null,"2"],"b":null,"c":[]}}`, `{"multiValueHeaders":{"a":[1]}}`,
	`{"multiValueHeaders":{"a":"x"}}`, `{"groups":["a","b"],"groups":["c"]}`, `{"groups":["a","b"],"groups":[null]}`,
	`{"groups":[]}`, `{"groups":null}`, `{"groups":"a"}`, `{"isBase64Encoded":null}`, `{"isBase64Encoded":1}`,
	`{"other":{"deep":[1,2,{"x":null}]},"statusCode":302}`, `{"statusCode":200,}`, `{"statusCode":200} x`,
	" \t{\"statusCode\" : 404 , \"body\" : \"nf\" }\n", "{\"body\":\"a\"}\u00a0",
}

// decodeProxyResponse is parseProxyResponse with encoding/json alone, as
// it was before the scanner: the reference the scanner is checked against.
func decodeProxyResponse(out []byte) (*proxyResponse, error) {
	return readProxyResponse(out, func(string, *proxyResponse) bool { return false })
}

// FuzzProxyResponseScan holds parseProxyResponse (the scanner) to
// decodeProxyResponse (encoding/json): the same response, or the same
// error, for every answer.
func FuzzProxyResponseScan(f *testing.F) {
	for _, s := range proxyScanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		got, gotErr := parseProxyResponse(bytes.Clone(out))
		want, wantErr := decodeProxyResponse(out)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("%q: error %v, encoding/json %v", out, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: scanned %#v, encoding/json %#v", out, got, want)
		}
	})
}

// TestProxyResponseScanSeeds runs the differential check on the seeds in
// every test run (the fuzzer's corpus is only run with -fuzz).
func TestProxyResponseScanSeeds(t *testing.T) {
	deep := func(n int) string { return `{"x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}` }
	for _, s := range append(proxyScanSeeds, deep(9999), deep(10000)) {
		got, gotErr := parseProxyResponse([]byte(s))
		want, wantErr := decodeProxyResponse([]byte(s))
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: scanned %#v, %v; encoding/json %#v, %v", s, got, gotErr, want, wantErr)
		}
	}
}

var benchAnswer = []byte(`{"statusCode":200,"body":"{\"action\":\"sendmessage\",\"data\":\"hello world, this is a chat message\"}"}`)

func BenchmarkParseProxyResponse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseProxyResponse(benchAnswer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseProxyResponseByDecoding(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeProxyResponse(benchAnswer); err != nil {
			b.Fatal(err)
		}
	}
}
