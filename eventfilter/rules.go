package eventfilter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// rule is one element of a field's list of rules. Rules other than exists
// match when one of the field's leaf values satisfies them.
type rule struct {
	exists *bool // {"exists": b}: decided by whether there are leaves at all
	test   func(v any) bool
}

// matchRules reports whether any rule matches the leaves.
func matchRules(rules []rule, leaves []any) bool {
	for _, r := range rules {
		if r.exists != nil {
			if *r.exists == (len(leaves) > 0) {
				return true
			}
			continue
		}
		for _, v := range leaves {
			if r.test(v) {
				return true
			}
		}
	}
	return false
}

// Numeric bounds: EventBridge compares numbers between -5e9 and 5e9.
const maxNumeric = 5e9

func compileRule(r any) (rule, error) {
	m, ok := r.(map[string]any)
	if !ok {
		if _, isList := r.([]any); isList {
			return rule{}, errors.New("a rule is a value or an operator object, not a list")
		}
		return rule{test: exact(r)}, nil
	}
	if len(m) != 1 {
		return rule{}, fmt.Errorf("an operator object has exactly one key, this has %d", len(m))
	}
	for op, arg := range m {
		return compileOperator(op, arg)
	}
	panic("unreachable")
}

func compileOperator(op string, arg any) (rule, error) {
	switch op {
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return rule{}, fmt.Errorf("exists: want true or false, got %s", describe(arg))
		}
		return rule{exists: &b}, nil
	case "prefix", "suffix":
		t, err := affix(op, arg)
		return rule{test: t}, err
	case "equals-ignore-case", "wildcard":
		s, ok := arg.(string)
		if !ok {
			return rule{}, fmt.Errorf("%s: want a string, got %s", op, describe(arg))
		}
		t, err := stringTest(op, s)
		return rule{test: onString(t)}, err
	case "anything-but":
		return anythingBut(arg)
	case "numeric":
		t, err := numeric(arg)
		return rule{test: t}, err
	case "cidr":
		s, ok := arg.(string)
		if !ok {
			return rule{}, fmt.Errorf("cidr: want a string, got %s", describe(arg))
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return rule{}, fmt.Errorf("cidr: %v", err)
		}
		p = p.Masked()
		return rule{test: onString(func(v string) bool {
			a, err := netip.ParseAddr(v)
			return err == nil && p.Contains(a)
		})}, nil
	}
	return rule{}, fmt.Errorf("unknown operator %q", op)
}

// exact matches a value of the same JSON type and the same text: numbers
// by their text, as Lambda documents (300 is not 300.0).
func exact(want any) func(any) bool {
	switch w := want.(type) {
	case nil:
		return func(v any) bool { return v == nil }
	case string:
		return func(v any) bool { s, ok := v.(string); return ok && s == w }
	case json.Number:
		return func(v any) bool { n, ok := v.(json.Number); return ok && n == w }
	case bool:
		return func(v any) bool { b, ok := v.(bool); return ok && b == w }
	}
	return func(any) bool { return false }
}

func onString(t func(string) bool) func(any) bool {
	return func(v any) bool {
		s, ok := v.(string)
		return ok && t(s)
	}
}

// affix compiles prefix and suffix, whose argument is a string or
// {"equals-ignore-case": string}.
func affix(op string, arg any) (func(any) bool, error) {
	fold := false
	if m, ok := arg.(map[string]any); ok {
		inner, ok := m["equals-ignore-case"]
		if len(m) != 1 || !ok {
			return nil, fmt.Errorf("%s: want a string or {\"equals-ignore-case\": string}", op)
		}
		arg, fold = inner, true
	}
	s, ok := arg.(string)
	if !ok {
		return nil, fmt.Errorf("%s: want a string, got %s", op, describe(arg))
	}
	if fold {
		s = strings.ToLower(s)
	}
	return onString(func(v string) bool {
		if fold {
			v = strings.ToLower(v)
		}
		if op == "prefix" {
			return strings.HasPrefix(v, s)
		}
		return strings.HasSuffix(v, s)
	}), nil
}

// stringTest compiles the operators that take one string and test one:
// prefix, suffix, equals-ignore-case and wildcard.
func stringTest(op, s string) (func(string) bool, error) {
	switch op {
	case "prefix":
		return func(v string) bool { return strings.HasPrefix(v, s) }, nil
	case "suffix":
		return func(v string) bool { return strings.HasSuffix(v, s) }, nil
	case "equals-ignore-case":
		return func(v string) bool { return strings.EqualFold(v, s) }, nil
	case "wildcard":
		segs, err := wildcard(s)
		if err != nil {
			return nil, err
		}
		return func(v string) bool { return globMatch(segs, v) }, nil
	}
	panic("eventfilter: stringTest of " + op)
}

// anythingBut compiles {"anything-but": x}: x is a string, a number, a
// non-empty list of strings or of numbers, or an object with one of
// prefix, suffix, equals-ignore-case and wildcard whose value is a string
// or a list of strings. The field must be present; a value matches when it
// is none of the excluded ones.
func anythingBut(arg any) (rule, error) {
	if m, ok := arg.(map[string]any); ok {
		if len(m) != 1 {
			return rule{}, errors.New("anything-but: an operator object has exactly one key")
		}
		for op, v := range m {
			if !slices.Contains([]string{"prefix", "suffix", "equals-ignore-case", "wildcard"}, op) {
				return rule{}, fmt.Errorf("anything-but: unknown operator %q (want prefix, suffix, equals-ignore-case or wildcard)", op)
			}
			var args []string
			switch v := v.(type) {
			case string:
				args = []string{v}
			case []any:
				for _, e := range v {
					s, ok := e.(string)
					if !ok {
						return rule{}, fmt.Errorf("anything-but: %s: want strings, got %s", op, describe(e))
					}
					args = append(args, s)
				}
			}
			if len(args) == 0 {
				return rule{}, fmt.Errorf("anything-but: %s: want a string or a non-empty list of strings", op)
			}
			var tests []func(string) bool
			for _, s := range args {
				t, err := stringTest(op, s)
				if err != nil {
					return rule{}, fmt.Errorf("anything-but: %w", err)
				}
				tests = append(tests, t)
			}
			return rule{test: onString(func(v string) bool {
				return !slices.ContainsFunc(tests, func(t func(string) bool) bool { return t(v) })
			})}, nil
		}
	}
	vals, ok := arg.([]any)
	if !ok {
		vals = []any{arg}
	}
	if len(vals) == 0 {
		return rule{}, errors.New("anything-but: an empty list")
	}
	var kind string
	for _, v := range vals {
		k := ""
		switch v.(type) {
		case string:
			k = "string"
		case json.Number:
			k = "number"
		default:
			return rule{}, fmt.Errorf("anything-but: want strings or numbers, got %s", describe(v))
		}
		if kind != "" && k != kind {
			return rule{}, errors.New("anything-but: a list of strings or of numbers, not both")
		}
		kind = k
	}
	return rule{test: func(v any) bool {
		return !slices.ContainsFunc(vals, func(w any) bool { return exact(w)(v) })
	}}, nil
}

// numeric compiles {"numeric": [op, n]} and {"numeric": [op, n, op, n]}
// (a lower and an upper bound). It matches JSON numbers only.
func numeric(arg any) (func(any) bool, error) {
	l, ok := arg.([]any)
	if !ok || (len(l) != 2 && len(l) != 4) {
		return nil, errors.New(`numeric: want [op, number] or [op, number, op, number]`)
	}
	type cmp struct {
		op string
		n  float64
	}
	var cs []cmp
	for i := 0; i < len(l); i += 2 {
		op, ok := l[i].(string)
		if !ok || !slices.Contains([]string{"=", "<", "<=", ">", ">="}, op) {
			return nil, fmt.Errorf("numeric: operator %s (want =, <, <=, > or >=)", describe(l[i]))
		}
		num, ok := l[i+1].(json.Number)
		if !ok {
			return nil, fmt.Errorf("numeric: want a number after %q, got %s", op, describe(l[i+1]))
		}
		f, err := num.Float64()
		if err != nil || math.Abs(f) > maxNumeric {
			return nil, fmt.Errorf("numeric: %s is outside -5e9..5e9", num)
		}
		cs = append(cs, cmp{op, f})
	}
	if len(cs) == 2 {
		lower := func(op string) bool { return op == ">" || op == ">=" }
		upper := func(op string) bool { return op == "<" || op == "<=" }
		sort.Slice(cs, func(i, j int) bool { return lower(cs[i].op) && !lower(cs[j].op) })
		if !lower(cs[0].op) || !upper(cs[1].op) {
			return nil, errors.New("numeric: two comparisons must be a lower bound (>, >=) and an upper bound (<, <=)")
		}
		if cs[0].n > cs[1].n {
			return nil, errors.New("numeric: the lower bound is above the upper bound")
		}
	}
	return func(v any) bool {
		num, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return false
		}
		for _, c := range cs {
			var ok bool
			switch c.op {
			case "=":
				ok = f == c.n
			case "<":
				ok = f < c.n
			case "<=":
				ok = f <= c.n
			case ">":
				ok = f > c.n
			case ">=":
				ok = f >= c.n
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

// wildcard splits a wildcard pattern at its unescaped stars: the literal
// segments between them. \* is a literal star and \\ a backslash; any
// other backslash and two stars in a row are errors, as in EventBridge.
func wildcard(p string) ([]string, error) {
	var segs []string
	var cur strings.Builder
	prevStar := false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 >= len(p) || (p[i+1] != '*' && p[i+1] != '\\') {
				return nil, errors.New(`wildcard: a backslash escapes only * and \`)
			}
			i++
			cur.WriteByte(p[i])
			prevStar = false
		case '*':
			if prevStar {
				return nil, errors.New("wildcard: two stars in a row")
			}
			segs = append(segs, cur.String())
			cur.Reset()
			prevStar = true
		default:
			cur.WriteByte(c)
			prevStar = false
		}
	}
	return append(segs, cur.String()), nil
}

// globMatch reports whether s is segs[0] * segs[1] * ... * segs[n-1]:
// the first segment a prefix, the last a suffix, the ones between found
// in order, leftmost first (which is enough for stars, and linear).
func globMatch(segs []string, s string) bool {
	if len(segs) == 1 {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	mid := s[len(first) : len(s)-len(last)]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(mid, seg)
		if i < 0 {
			return false
		}
		mid = mid[i+len(seg):]
	}
	return true
}
