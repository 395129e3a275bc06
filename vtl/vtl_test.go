package vtl

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func render(t *testing.T, src string, vars map[string]any, opts Options) (string, error) {
	t.Helper()
	tmpl, err := Parse(src)
	if err != nil {
		return "", err
	}
	out, err := tmpl.Render(context.Background(), vars, opts)
	return string(out), err
}

func TestRender(t *testing.T) {
	vars := map[string]any{
		"name":  "World",
		"n":     3,
		"list":  []any{"a", "b", "c"},
		"map":   map[string]any{"k": "v", "num": 1},
		"empty": "",
		"tf":    true,
	}
	cases := []struct {
		name, src, want string
	}{
		{"text", "hello", "hello"},
		{"reference", "Hello $name!", "Hello World!"},
		{"formal", "${name}s", "Worlds"},
		{"quiet null", "[$!missing]", "[]"},
		{"loud null", "[$missing]", "[$missing]"},
		{"loud null chain", "[$map.nope.deeper]", "[$map.nope.deeper]"},
		{"property of map", "$map.k", "v"},
		{"map get", "$map.get('k') $map.get(\"num\")", "v 1"},
		{"map render", "$map", "{k=v, num=1}"},
		{"list render", "$list", "[a, b, c]"},
		{"list size", "$list.size() $list.isEmpty()", "3 false"},
		{"index", "$list[1] $list[-1]", "b c"},
		{"dot at end of sentence", "$name.", "World."},
		{"dollar amount", "$5.00", "$5.00"},
		{"hyphen identifier", "$name-x", "$name-x"},
		{"escaped reference", `\$name \\$name \\\$name`, `$name \World \$name`},
		{"escaped null reference", `\$woogie`, `\$woogie`},
		{"escaped directive", `\#if(true) \#foo \$5`, `#if(true) \#foo \$5`},
		{"line comment", "a## comment\nb", "ab"},
		{"block comment", "a#* x\ny *#b", "ab"},
		{"unparsed", "#[[$name #if]]#", "$name #if"},
		{"hash text", "color #fff", "color #fff"},
		{"set", "#set($x = 1)$x", "1"},
		{"set spaces", "#set ( $x = \"a\" )$x", "a"},
		{"set gobbles line", "a\n  #set($x = 1)\nb$x", "a\nb1"},
		{"set null keeps", "#set($x = 1)#set($x = $nothing)$x", "1"},
		{"set map property", "#set($m = {})#set($m.a = 2)#set($m['b'] = 3)$m", "{a=2, b=3}"},
		{"set list index", "#set($l = [1,2])#set($l[0] = 5)$l", "[5, 2]"},
		{"if", "#if($tf)yes#end", "yes"},
		{"if else", "#if(!$tf)yes#{else}no#end", "no"},
		{"elseif", "#if($n == 1)one#elseif($n == 3)three#else other#end", "three"},
		{"if gobbles newlines", "#if($tf)\nyes\n#end\n", "yes\n"},
		{"empty string is true", "#if($empty)t#end", "t"},
		{"null is false", "#if($missing)t#else f#end", " f"},
		{"and or not", "#if($tf && !false || false)a#end#if($tf and not $tf or true)b#end", "ab"},
		{"comparisons", "#if(1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3 && 1 != 2 && 'a' == 'a' && 1 == 1.0)ok#end", "ok"},
		{"word comparisons", "#if(1 lt 2 && 2 le 2 && 3 gt 2 && 3 ge 3 && 1 ne 2 && 2 eq 2)ok#end", "ok"},
		{"string compare", "#if('a' < 'b')ok#end", "ok"},
		{"equality across kinds", "#if($n == '3')eq#end", "eq"},
		{"arithmetic", "#set($a = 7)$math #set($r = $a + 2 * 3 - 4 / 2 % 3)$r", "$math 11"},
		{"integer division", "#set($r = 7 / 2)$r", "3"},
		{"float arithmetic", "#set($r = 7.0 / 2)$r", "3.5"},
		{"division by zero", "#set($r = 1)#set($r = 1 / 0)$r", "1"},
		{"unary minus", "#set($r = -$n)$r", "-3"},
		{"string concat", "#set($s = $name + '!' + 1)$s", "World!1"},
		{"double", "#set($d = 1.0)$d #set($e = 10000000.0)$e", "1.0 1.0E7"},
		{"foreach", "#foreach($x in $list)$x#if($foreach.hasNext),#end#end", "a,b,c"},
		{"foreach count", "#foreach($x in $list)$velocityCount$foreach.count$foreach.index #end", "110 221 332 "},
		{"foreach first last", "#foreach($x in $list)#if($foreach.first)[#end$x#if($foreach.last)]#end#end", "[abc]"},
		{"foreach map values", "#foreach($v in $map)$v;#end", "v;1;"},
		{"foreach keySet", "#foreach($k in $map.keySet())$k=$map.get($k);#end", "k=v;num=1;"},
		{"foreach range", "#foreach($i in [1..3])$i#end", "123"},
		{"foreach range down", "#foreach($i in [3..1])$i#end", "321"},
		{"foreach null", "#foreach($i in $nothing)x#end", ""},
		{"foreach restores var", "#set($x = 'o')#foreach($x in [1])#end$x", "o"},
		{"nested foreach", "#foreach($a in [1,2])#foreach($b in ['x','y'])$a$b #end#end", "1x 1y 2x 2y "},
		{"break", "#foreach($i in [1..5])#if($i == 3)#break#end$i#end", "12"},
		{"stop", "a#stop b", "a"},
		{"interpolation", "#set($s = \"Hi $name, ${n}x\")$s", "Hi World, 3x"},
		{"single quotes literal", "#set($s = 'Hi $name')$s", "Hi $name"},
		{"doubled quotes", "#set($s = \"say \"\"hi\"\"\")$s #set($t = 'it''s')$t", `say "hi" it's`},
		{"backslash kept in strings", `#set($s = "a\nb")$s`, `a\nb`},
		{"directive in string", `#set($s = "#if($tf)y#end")$s`, "y"},
		{"map literal", `#set($m = {"a": 1, "b": [1, "x"]})$m $m.b.get(1)`, "{a=1, b=[1, x]} x"},
		{"list literal methods", "#set($l = [])#set($d = $l.add('x'))$l $d", "[x] true"},
		{"define", "#define($greet)Hi $name#end$greet / $greet", "Hi World / Hi World"},
		{"define late binding", "#define($d)[$v]#end#set($v = 1)$d#set($v = 2)$d", "[1][2]"},
		{"macro", "#macro(tag $n $v)<$n>$v</$n>#end#tag('a' 'b')#tag('c', 1)", "<a>b</a><c>1</c>"},
		{"string methods", "$name.length() $name.toLowerCase() $name.toUpperCase() $name.substring(1) $name.substring(1, 3) $name.indexOf('o') $name.indexOf('z')", "5 world WORLD orld or 1 -1"},
		{"string methods 2", "$name.contains('orl') $name.startsWith('W') $name.endsWith('d') $name.charAt(0) $name.isEmpty() $empty.isEmpty()", "true true true W false true"},
		{"replace", "$name.replace('o', '0') $name.replaceAll('[aeiou]', '_') $name.replaceFirst('(W)(o)', '$2$1')", "W0rld W_rld oWrld"},
		{"replaceAll escaped quote", `#set($s = "it\'s")$s.replaceAll("\\'","'")`, "it's"},
		{"split", "#set($s = 'a,b,,c,,')#foreach($p in $s.split(','))[$p]#end", "[a][b][][c]"},
		{"split no match", "#set($s = '')$s.split(',').size() #set($s = ',')$s.split(',').size()", "1 0"},
		{"split regex ref", "#set($s = 'a1b22c')$s.split('[0-9]+')", "[a, b, c]"},
		{"trim matches", "#set($s = '  ab1 ')[$s.trim()] $s.trim().matches('[a-z]+[0-9]')", "[ab1] true"},
		{"utf16 length", "#set($s = 'a😀b')$s.length() $s.substring(3) $s.indexOf('b')", "4 b 3"},
		{"equals", "#if($name.equals('World'))eq#end $name.equalsIgnoreCase('world')", "eq true"},
		{"toString", "$n.toString()$list.toString()", "3[a, b, c]"},
		{"unknown method is null", "[$name.nope()]", "[$name.nope()]"},
		{"getter property", "$name.empty $list.empty", "false false"},
		{"map methods", "#set($m = {})#set($d = $m.put('a', 1))$m.containsKey('a') $m.size() $m.keySet() $m.values() #set($d = $m.remove('a'))$m.isEmpty()", "true 1 [a] [1] true"},
		{"entrySet", "#foreach($e in $map.entrySet())$e.key:$e.value #end", "k:v num:1 "},
		{"velocity count in nested", "#foreach($a in [1,2])#foreach($b in [1])#end$velocityCount#end", "12"},
		{"braced directive", "#{if}(true)x#{end}", "x"},
		{"bool render", "$tf", "true"},
		{"list equality", "#if([1,2] == [1,2])eq#end", "eq"},
		{"index on map", "$map['k']", "v"},
		{"negative number literal", "#set($x = -5)$x", "-5"},
		{"parens", "#set($x = (1 + 2) * 3)$x", "9"},
		{"overflow promotes", "#set($x = 9223372036854775807 + 1)$x", "9.223372036854776E18"},
		{"crlf gobble", "#set($x = 1)\r\n$x", "1"},
		{"hash at end", "a#", "a#"},
		{"dollar at end", "a$", "a$"},
		{"formal unclosed", "${name", "${name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := render(t, c.src, vars, Options{})
			if err != nil {
				t.Fatalf("render %q: %v", c.src, err)
			}
			if got != c.want {
				t.Errorf("render %q\n got %q\nwant %q", c.src, got, c.want)
			}
		})
	}
}

func TestQuietNull(t *testing.T) {
	got, err := render(t, "[$missing][$map.x.y][$s.nope()]", map[string]any{"map": map[string]any{}, "s": "x"}, Options{QuietNull: true})
	if err != nil {
		t.Fatal(err)
	}
	if got != "[][][]" {
		t.Errorf("got %q", got)
	}
}

func TestJSONList(t *testing.T) {
	m := NewMap(2)
	m.Put("c", int64(5))
	m.Put("s", "x/\"y")
	inner := &List{Items: []any{m, "str", nil, 1.5}, JSON: true}
	top := NewMap(2)
	top.Put("a", int64(1))
	top.Put("b", inner)
	got, err := render(t, "$top|$top.b|$top.b[0]", map[string]any{"top": top}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{a=1, b=[{"c":5,"s":"x/\"y"},"str",null,1.5]}|[{"c":5,"s":"x/\"y"},"str",null,1.5]|{c=5, s=x/"y}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unclosed if", "#if(true)x", "line 1:1: #if has no #end"},
		{"stray end", "x\n#end", "line 2:1: #end without"},
		{"bad set", "#set(x = 1)", "#set needs a reference"},
		{"unclosed string", "#set($x = 'abc)", "string is not closed"},
		{"unclosed comment", "#* abc", "not closed"},
		{"bad expression", "#if($a ==)x#end", "line 1:10: unexpected ')'"},
		{"word without dollar", "#if(foo)x#end", "references start with $"},
		{"include", "#include('x')", "not supported"},
		{"foreach without in", "#foreach($a $b)#end", "expected 'in'"},
		{"too deep", strings.Repeat("#if(true)", 100) + strings.Repeat("#end", 100), "nested deeper than 64"},
		{"too deep parens", "#set($a = " + strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200) + ")", "nested deeper"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.src)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse(%q) = %v, want an error with %q", c.src, err, c.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	cases := []struct {
		name, src string
		lim       Limits
		want      string
	}{
		{"iterations", "#foreach($i in [1..100])#foreach($j in [1..100])x#end#end", Limits{Iterations: 1000}, "#foreach iterations"},
		{"range", "#foreach($i in [1..1000000000])x#end", Limits{}, "range"},
		{"output", "#foreach($i in [1..1000])xxxxxxxxxx#end", Limits{Output: 5000}, "output is over 5000"},
		{"doubling string", "#set($s = 'xxxxxxxx')#foreach($i in [1..40])#set($s = \"$s$s\")#end", Limits{}, "over"},
		{"doubling concat", "#set($s = 'xxxxxxxx')#foreach($i in [1..40])#set($s = $s + $s)#end", Limits{}, "bytes"},
		{"list growth", "#set($l = [])#foreach($i in [1..9000])#set($d = $l.add($l))#end$l", Limits{Alloc: 100000}, ""},
		{"steps", "#foreach($i in [1..10000])#set($x = $i + $i + $i)#end", Limits{Steps: 5000}, "evaluation steps"},
		{"recursive define", "#define($d)$d#end$d", Limits{}, "nested deeper"},
		{"recursive macro", "#macro(m)#m()#end#m()", Limits{}, "nested deeper"},
		{"self containing list", "#set($l = [])#set($d = $l.add($l))$l", Limits{}, "nested deeper"},
		{"replace growth", "#set($s = 'ab')#foreach($i in [1..30])#set($s = $s.replace('a', 'aa'))#end", Limits{Alloc: 1 << 20}, "bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, c.src, nil, Options{Limits: c.lim})
			if err == nil {
				t.Fatal("rendered without an error")
			}
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("error %v does not wrap ErrLimit", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q in it", err, c.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"substring out of range", "$s.substring(5)", "line 1:1: String.substring: begin 5, end 3, length 3"},
		{"get out of range", "#set($l = [1])$l.get(3)", "index 3 out of bounds"},
		{"unsupported regex", "$s.replaceAll('(?<=a)b', 'x')", "not supported"},
		{"bad replacement", "$s.replaceAll('a', '$')", "group index is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, c.src, map[string]any{"s": "abc"}, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	tmpl, err := Parse("#foreach($i in [1..10000])#foreach($j in [1..10000])x#end#end")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = tmpl.Render(ctx, nil, Options{Limits: Limits{Iterations: 1 << 30, Output: 1 << 30}})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("got %v, want the context's error", err)
	}
}

func TestFormatDouble(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", 249.99: "249.99", 0.001: "0.001", 0.0001: "1.0E-4", 1e7: "1.0E7", 1234567.5: "1234567.5",
		-2.5: "-2.5", 1.5e300: "1.5E300", 0: "0.0",
	} {
		if got := FormatDouble(f); got != want {
			t.Errorf("FormatDouble(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestSplitIsBoundedBeforeItAllocates(t *testing.T) {
	for _, pattern := range []string{",", "[,]", ""} {
		_, err := render(t, "$s.split('"+pattern+"').size()", map[string]any{"s": strings.Repeat(",", 100000)}, Options{Limits: Limits{Alloc: 64 << 10}})
		if !errors.Is(err, ErrLimit) {
			t.Errorf("split(%q) of 100000 separators with a 64 KB budget: %v, want a limit error", pattern, err)
		}
	}
}

// TestConcurrentRender renders one template from many goroutines (run
// with -race): the parsed tree and the regex cache are shared.
func TestConcurrentRender(t *testing.T) {
	tmpl, err := Parse(`#set($m = {})#foreach($i in [1..20])#set($d = $m.put("k$i", $s.replaceAll('(b)', '[$1]')))#end$m.size() $m.k3`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	for i := range 8 {
		go func() {
			out, err := tmpl.Render(context.Background(), map[string]any{"s": strings.Repeat("ab", i+1)}, Options{})
			if err != nil {
				done <- err.Error()
				return
			}
			done <- string(out)
		}()
	}
	for range 8 {
		if got := <-done; !strings.HasPrefix(got, "20 a[b]") {
			t.Errorf("got %q", got)
		}
	}
}
