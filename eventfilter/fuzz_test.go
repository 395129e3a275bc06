package eventfilter

import (
	"encoding/json"
	"testing"
)

// FuzzCompile: any text compiles to a pattern or gives an error, never a
// panic; a compiled pattern matches any JSON without panicking; and for a
// value v that compiles as a rule, a field equal to v matches exactly one
// of [v] and [{"anything-but": v}].
func FuzzCompile(f *testing.F) {
	for _, p := range []string{
		`{"dynamodb":{"NewImage":{"status":{"S":["paid",{"prefix":"ship"}]}}}}`,
		`{"$or":[{"a":[{"numeric":[">",0,"<=",5]}]},{"b":[{"exists":false}]}]}`,
		`{"a":[{"wildcard":"x*y\\*z"},{"cidr":"10.0.0.0/8"},{"anything-but":{"suffix":[".png"]}}]}`,
		`{"a":[{"equals-ignore-case":"X"},null,true,1.5,""]}`,
	} {
		f.Add(p, `{"a":"x","dynamodb":{"NewImage":{"status":{"S":"paid"}}},"b":[1,{"c":2}]}`, `"x"`)
	}
	f.Fuzz(func(t *testing.T, pattern, event, value string) {
		p, err := Compile(pattern)
		if err == nil {
			if ev, err := Decode([]byte(event)); err == nil {
				p.Match(ev)
			}
		}
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return
		}
		switch v.(type) {
		case string, float64:
		default:
			return
		}
		val, _ := json.Marshal(v)
		eq, err1 := Compile(`{"a":[` + string(val) + `]}`)
		but, err2 := Compile(`{"a":[{"anything-but":` + string(val) + `}]}`)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", val, err1, err2)
		}
		ev, err := Decode([]byte(`{"a":` + string(val) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if eq.Match(ev) == but.Match(ev) {
			t.Fatalf("%s: equal %v, anything-but %v", val, eq.Match(ev), but.Match(ev))
		}
	})
}
