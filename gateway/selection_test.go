package gateway

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestSelectionExpression(t *testing.T) {
	tests := []struct {
		name, expr, body string
		want             string
		wantOK           bool
	}{
		{"dotted", "$request.body.action", `{"action":"join"}`, "join", true},
		{"nested", "$request.body.a.b", `{"a":{"b":"deep"}}`, "deep", true},
		{"braced", "${request.body.action}", `{"action":"x"}`, "x", true},
		{"mixed static", "${request.body.service}/${request.body.action}", `{"service":"chat","action":"join"}`, "chat/join", true},
		{"missing path is empty", "${request.body.action}-${request.body.invalidPath}", `{"action":"join"}`, "join-", true},
		{"missing top", "$request.body.action", `{"other":1}`, "", true},
		{"static only", "action", `{"action":"join"}`, "action", true},
		{"escaped default", `\$default`, `{"action":"join"}`, "$default", true},
		{"number stringified", "$request.body.n", `{"n":1}`, "1", true},
		{"float text kept", "$request.body.n", `{"n":1.50}`, "1.50", true},
		{"bool", "$request.body.b", `{"b":true}`, "true", true},
		{"null is empty", "$request.body.v", `{"v":null}`, "", true},
		{"array stringified", "$request.body.a", `{"a":["item1","item2"]}`, "[item1, item2]", true},
		{"object stringified", "$request.body.o", `{"o":{"b":2,"a":"x"}}`, "{a=x, b=2}", true},
		{"array index", "$request.body.a[1]", `{"a":["x","y"]}`, "y", true},
		{"not json", "$request.body.action", `hello`, "", false},
		{"broken json", "$request.body.action", `{"action":`, "", false},
		{"scalar json is not routable", "$request.body.action", `"action"`, "", false},
		{"trailing garbage", "$request.body.action", `{"action":"a"} x`, "", false},
		{"case sensitive value kept", "$request.body.action", `{"action":"Join"}`, "Join", true},
		{"unicode", "$request.body.action", `{"action":"héllo"}`, "héllo", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseSelectionExpression(tt.expr)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.expr, err)
			}
			got, ok := e.Evaluate(tt.body)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("Evaluate(%s) = %q, %v; want %q, %v", tt.body, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSelectionExpressionErrors(t *testing.T) {
	for _, expr := range []string{"", "$request.header.x", "${request.body.a", "$default", "$request.body.a[x]", "$context.routeKey"} {
		if _, err := ParseSelectionExpression(expr); err == nil {
			t.Errorf("ParseSelectionExpression(%q) succeeded; want an error", expr)
		}
	}
}

func BenchmarkSelectionEvaluate(b *testing.B) {
	e, _ := ParseSelectionExpression("$request.body.action")
	body := `{"action":"sendmessage","data":"hello world, this is a chat message"}`
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(body)
	}
}

// evaluateByDecoding is how Evaluate worked before it scanned: decode the
// whole body, then look the paths up. FuzzRouteSelection holds Evaluate to
// its answers.
func evaluateByDecoding(e *SelectionExpression, body string) (key string, ok bool) {
	trimmed := bytes.TrimSpace([]byte(body))
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return "", false
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return "", false
	}
	if !e.hasVars && len(e.parts) == 1 {
		return e.parts[0].text, true
	}
	var b strings.Builder
	for _, p := range e.parts {
		if p.path == nil {
			b.WriteString(p.text)
			continue
		}
		writeScalar(&b, lookupDecoded(doc, p.path))
	}
	return b.String(), true
}

func lookupDecoded(v any, path []string) any {
	for _, seg := range path {
		if strings.HasPrefix(seg, "[") {
			arr, ok := v.([]any)
			n, _ := strconv.Atoi(seg[1 : len(seg)-1])
			if !ok || n < 0 || n >= len(arr) {
				return nil
			}
			v = arr[n]
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[seg]
	}
	return v
}

func BenchmarkSelectionEvaluateByDecoding(b *testing.B) {
	e, _ := ParseSelectionExpression("$request.body.action")
	body := `{"action":"sendmessage","data":"hello world, this is a chat message"}`
	b.ReportAllocs()
	for b.Loop() {
		evaluateByDecoding(e, body)
	}
}

// FuzzRouteSelection: any expression either fails to parse or evaluates
// any message body without panicking to what decoding the body gives, and
// a body that is not a JSON object or array is never routable.
func FuzzRouteSelection(f *testing.F) {
	f.Add("$request.body.action", `{"action":"join"}`)
	f.Add("${request.body.service}/${request.body.action}", `{"service":"chat","action":"join"}`)
	f.Add("$request.body.a[1].b", `{"a":[0,{"b":[1,{"c":null}]}]}`)
	f.Add("$request.body.a[-1]", `{"a":[1]}`)
	f.Add("$request.body", `[[[[[]]]]]`)
	f.Add(`\$default`, `{"action":1e999}`)
	f.Add("${request.body.o}", `{"o":{"b":2,"a":"x","c":[true,false]}}`)
	f.Add("$request.body.action", "\xff{")
	f.Add("$request.body.action", `{"action":"a"} ]x`)
	f.Add("$request.body.action", `{"action":"a","action":"b"}`)
	f.Add("${request.body.a\u00e9}", `{"a\u00e9":"\ud83d\ude00\ud800x\xff","n":-0.5e+7}`)
	f.Add("$request.body.a[0]", `[{"a":[01]}]`)
	f.Add("$request.body.x", `{"x":"\t"}`)
	f.Add("$request.body", "{\"a\":[1,{\"b\":null}],\"a\":tru}")
	f.Add("$request.body.a", strings.Repeat("[", 10000)+strings.Repeat("]", 10000))
	f.Add("$request.body.a", strings.Repeat("[", 10001)+strings.Repeat("]", 10001))
	f.Fuzz(func(t *testing.T, expr, body string) {
		e, err := ParseSelectionExpression(expr)
		if err != nil {
			return
		}
		key, ok := e.Evaluate(body)
		if wantKey, wantOK := evaluateByDecoding(e, body); key != wantKey || ok != wantOK {
			t.Fatalf("Evaluate(%q) by %q = %q, %v; decoding gives %q, %v", body, expr, key, ok, wantKey, wantOK)
		}
		if trimmed := strings.TrimSpace(body); ok && trimmed[0] != '{' && trimmed[0] != '[' {
			t.Fatalf("body %q routed by %q", body, expr)
		}
		if e.String() != expr {
			t.Fatalf("String() = %q, want %q", e.String(), expr)
		}
	})
}
