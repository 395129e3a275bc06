package vtl

import (
	"context"
	"errors"
	"testing"
)

var fuzzSeeds = []string{
	"Hello $name! ${name}s $!missing $missing.x",
	"#set($x = 1)#if($x == 1)one#elseif($x > 1)more#else none#end",
	"#foreach($i in [1..3])$i#if($foreach.hasNext),#end#end",
	"#define($d)[$v]#end#set($v = 'a')$d",
	"#macro(m $a)<$a>#end#m('x')",
	`#set($s = "a,b")$s.split(',') $s.replaceAll('(a)', '$1$1') $s.substring(1)`,
	`#set($m = {"a": [1, 2.5, true, "x"]})$m $m.a.get(0) $m.keySet()`,
	"## comment\n#* block *#\\$x \\#if #[[raw]]#",
	"#foreach($i in [1..5])#if($i == 3)#break#end$i#end#stop after",
	"#set($l = [])#set($d = $l.add($l))$l",
}

// FuzzRender parses and renders arbitrary templates under small limits:
// no panic, no hang, and a limit error is the only error with ErrLimit.
func FuzzRender(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	lim := Limits{Steps: 20_000, Iterations: 500, Output: 16 << 10, Alloc: 256 << 10, Depth: 16}
	vars := map[string]any{"name": "W", "list": []any{"a", 1}, "map": map[string]any{"k": "v"}}
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse(src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error is not an *Error: %v", err)
			}
			return
		}
		out, err := tmpl.Render(context.Background(), vars, Options{Limits: lim})
		if err == nil && len(out) > lim.Output {
			t.Fatalf("output of %d bytes passed the limit", len(out))
		}
	})
}
