package apigw

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/vtl"
)

// FuzzTemplate renders arbitrary templates on arbitrary bodies with API
// Gateway's variables: no panic and no hang under small limits.
func FuzzTemplate(f *testing.F) {
	f.Add(`$input.json('$.a') $input.path('$..b') $util.escapeJavaScript($input.body)`, `{"a":[1,{"b":2}]}`)
	f.Add(`#set($o = $util.parseJson($input.path('$.s')))$o.k[0] $util.urlDecode($input.params('q'))`, `{"s":"{\"k\":[1]}"}`)
	f.Add(`$util.base64Decode($util.base64Encode($input.body)) $input.path('$.a[1:]') $context.authorizer`, `{"a":[1,2,3]}`)
	lim := vtl.Limits{Steps: 20_000, Iterations: 500, Output: 16 << 10, Alloc: 256 << 10, Depth: 16}
	f.Fuzz(func(t *testing.T, src, body string) {
		tmpl, err := vtl.Parse(src)
		if err != nil {
			return
		}
		r := testRequest()
		r.Body = body
		out, err := Render(context.Background(), tmpl, r, lim)
		if err == nil && len(out) > lim.Output {
			t.Fatalf("output of %d bytes passed the limit", len(out))
		}
	})
}

// FuzzParseJSON checks the body parser against encoding/json: the same
// documents are valid, and they decode to the same values.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,"x\u00e9\n",true,null,{}]}`, `"s"`, `0`, `-0.1`, `[01]`, `{"a":1,}`, `1e400`, " [ ] "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseJSON(s)
		var want any
		werr := json.Unmarshal([]byte(s), &want)
		if werr != nil && strings.Contains(werr.Error(), "cannot unmarshal number") {
			return // 1e400: Java and we take Infinity, encoding/json refuses
		}
		if (err == nil) != (werr == nil) {
			if err != nil && strings.Contains(err.Error(), "deeper") {
				return
			}
			t.Fatalf("parseJSON(%q) error %v, encoding/json error %v", s, err, werr)
		}
		if err != nil {
			return
		}
		var got any
		if err := json.Unmarshal([]byte(vtl.JSON(v)), &got); err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", vtl.JSON(v), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseJSON(%q) = %#v, want %#v", s, got, want)
		}
	})
}
