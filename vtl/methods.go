package vtl

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// call runs $v.name(args) with Java's String, List, Map, Number and
// Boolean methods, or an Object's own. A method that does not exist is
// null, as Velocity makes it; what Java would throw is an error.
func (s *state) call(v any, name string, args []any) (any, error) {
	var (
		r   any
		ok  bool
		err error
	)
	switch x := v.(type) {
	case string:
		r, ok, err = s.stringMethod(x, name, args)
	case *List:
		r, ok, err = s.listMethod(x, name, args)
	case *Map:
		r, ok, err = s.mapMethod(x, name, args)
	case Object:
		// A #define'd block is the template's own: an Object gets its text.
		for i, a := range args {
			if b, isBlock := a.(*block); isBlock {
				if args[i], err = s.str(b); err != nil {
					return nil, err
				}
			}
		}
		r, ok, err = x.Call(name, args)
	case int64, float64:
		r, ok = numberMethod(x, name, args)
	case bool:
		if name == "booleanValue" && len(args) == 0 {
			r, ok = x, true
		}
	}
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, err
		}
		e = s.errorf("%s.%s: %v", typeName(v), name, err).(*Error)
		e.err = err // errors.Is(err, ErrLimit) holds for an Object's limits
		return nil, e
	}
	if !ok {
		switch {
		case name == "toString" && len(args) == 0:
			r, err = s.str(v)
			return r, err
		case name == "equals" && len(args) == 1:
			return s.equal(v, args[0])
		}
		return nil, nil
	}
	if str, isStr := r.(string); isStr {
		if err := s.charge(len(str)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

type methodError string

func (e methodError) Error() string { return string(e) }

func argInt(args []any, i int) (int, bool) {
	if i >= len(args) {
		return 0, false
	}
	switch x := args[i].(type) {
	case int64:
		if x >= -1<<31 && x < 1<<31 {
			return int(x), true
		}
	case float64:
		if x == float64(int(x)) && x >= -1<<31 && x < 1<<31 {
			return int(x), true
		}
	}
	return 0, false
}

func argStr(args []any, i int) (string, bool) {
	if i >= len(args) {
		return "", false
	}
	str, ok := args[i].(string)
	return str, ok
}

// Java strings count UTF-16 code units; these helpers index that way and
// take a fast path for ASCII.

func isASCII(str string) bool {
	for i := 0; i < len(str); i++ {
		if str[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func u16len(str string) int {
	if isASCII(str) {
		return len(str)
	}
	n := 0
	for _, r := range str {
		n += utf16.RuneLen(r)
	}
	return n
}

// byteOffset converts a UTF-16 index into a byte offset of str; -1 when it
// is past the end.
func byteOffset(str string, idx int) int {
	if isASCII(str) {
		if idx > len(str) {
			return -1
		}
		return idx
	}
	n := 0
	for i, r := range str {
		if n >= idx {
			return i
		}
		n += utf16.RuneLen(r)
	}
	if n >= idx {
		return len(str)
	}
	return -1
}

// u16index converts a byte offset into a UTF-16 index.
func u16index(str string, off int) int {
	if off < 0 {
		return -1
	}
	return u16len(str[:off])
}

func javaTrim(str string) string {
	return strings.TrimFunc(str, func(r rune) bool { return r <= ' ' })
}

func (s *state) stringMethod(str, name string, args []any) (any, bool, error) {
	n := len(args)
	switch name {
	case "length":
		return int64(u16len(str)), true, nil
	case "isEmpty":
		return str == "", true, nil
	case "isBlank":
		return javaTrim(str) == "", true, nil
	case "trim":
		return javaTrim(str), true, nil
	case "toLowerCase":
		return strings.ToLower(str), true, nil
	case "toUpperCase":
		return strings.ToUpper(str), true, nil
	case "toString", "intern":
		return str, true, nil
	case "substring":
		a, ok := argInt(args, 0)
		if !ok {
			return nil, false, nil
		}
		length := u16len(str)
		b := length
		if n > 1 {
			if b, ok = argInt(args, 1); !ok {
				return nil, false, nil
			}
		}
		if a < 0 || b > length || a > b {
			return nil, true, methodError("begin " + strconv.Itoa(a) + ", end " + strconv.Itoa(b) + ", length " + strconv.Itoa(length))
		}
		return str[byteOffset(str, a):byteOffset(str, b)], true, nil
	case "charAt":
		i, ok := argInt(args, 0)
		if !ok {
			return nil, false, nil
		}
		length := u16len(str)
		if i < 0 || i >= length {
			return nil, true, methodError("index " + strconv.Itoa(i) + ", length " + strconv.Itoa(length))
		}
		a := byteOffset(str, i)
		_, size := utf8.DecodeRuneInString(str[a:])
		return str[a : a+size], true, nil
	case "indexOf", "lastIndexOf":
		sub, ok := argStr(args, 0)
		if !ok {
			return nil, false, nil
		}
		if name == "lastIndexOf" {
			return int64(u16index(str, strings.LastIndex(str, sub))), true, nil
		}
		from := 0
		if n > 1 {
			if from, ok = argInt(args, 1); !ok {
				return nil, false, nil
			}
		}
		from = max(from, 0)
		off := byteOffset(str, from)
		if off < 0 {
			return int64(-1), true, nil
		}
		k := strings.Index(str[off:], sub)
		if k < 0 {
			return int64(-1), true, nil
		}
		return int64(u16index(str, off+k)), true, nil
	case "contains", "startsWith", "endsWith", "equalsIgnoreCase", "concat", "compareTo":
		sub, ok := argStr(args, 0)
		if !ok {
			return nil, false, nil
		}
		switch name {
		case "contains":
			return strings.Contains(str, sub), true, nil
		case "startsWith":
			return strings.HasPrefix(str, sub), true, nil
		case "endsWith":
			return strings.HasSuffix(str, sub), true, nil
		case "equalsIgnoreCase":
			return strings.EqualFold(str, sub), true, nil
		case "compareTo":
			return int64(strings.Compare(str, sub)), true, nil
		}
		if err := s.charge(len(str) + len(sub)); err != nil {
			return nil, true, err
		}
		return str + sub, true, nil
	case "replace":
		old, ok1 := argStr(args, 0)
		repl, ok2 := argStr(args, 1)
		if !ok1 || !ok2 {
			return nil, false, nil
		}
		if c := strings.Count(str, old); c > 0 {
			grow := len(str) + c*len(repl)
			if old == "" {
				grow = len(str) + (u16len(str)+1)*len(repl)
			}
			if err := s.charge(grow); err != nil {
				return nil, true, err
			}
		}
		return strings.ReplaceAll(str, old, repl), true, nil
	case "replaceAll", "replaceFirst":
		pattern, ok1 := argStr(args, 0)
		repl, ok2 := argStr(args, 1)
		if !ok1 || !ok2 {
			return nil, false, nil
		}
		re, err := s.t.re.get(pattern)
		if err != nil {
			return nil, true, err
		}
		tmpl, err := goReplacement(repl, re.NumSubexp())
		if err != nil {
			return nil, true, err
		}
		return s.replaceRegex(re, str, tmpl, name == "replaceFirst")
	case "matches":
		pattern, ok := argStr(args, 0)
		if !ok {
			return nil, false, nil
		}
		re, err := s.t.re.get("^(?:" + pattern + ")$")
		if err != nil {
			return nil, true, err
		}
		return re.MatchString(str), true, nil
	case "split":
		pattern, ok := argStr(args, 0)
		if !ok {
			return nil, false, nil
		}
		parts, err := s.split(str, pattern)
		if err != nil {
			return nil, true, err
		}
		if err := s.charge(len(str)); err != nil {
			return nil, true, err
		}
		l := &List{Items: make([]any, len(parts))}
		for i, p := range parts {
			l.Items[i] = p
		}
		return l, true, nil
	}
	return nil, false, nil
}

// replaceRegex replaces matches of re in str, bounded by Limits.Alloc.
func (s *state) replaceRegex(re *regexp.Regexp, str, tmpl string, first bool) (any, bool, error) {
	var b []byte
	last := 0
	// Each match is a step: find no more than the steps left.
	for _, m := range re.FindAllStringSubmatchIndex(str, s.lim.Steps-s.steps+1) {
		if err := s.step(); err != nil {
			return nil, true, err
		}
		b = append(b, str[last:m[0]]...)
		b = re.ExpandString(b, tmpl, str, m)
		last = m[1]
		if len(b) > s.lim.Alloc-s.alloc {
			return nil, true, s.limitErr("values took more than %d bytes", s.lim.Alloc)
		}
		if first {
			break
		}
	}
	if b == nil && last == 0 {
		return str, true, nil
	}
	b = append(b, str[last:]...)
	return string(b), true, nil
}

// split is Java's String.split(regex): trailing empty strings dropped, and
// the input itself when nothing matches. The pieces are charged before
// they are made.
func (s *state) split(str, pattern string) ([]string, error) {
	var parts []string
	if len(pattern) == 1 && !strings.ContainsAny(pattern, `.$|()[{^?*+\`) {
		if err := s.charge(16 * (strings.Count(str, pattern) + 1)); err != nil {
			return nil, err
		}
		parts = strings.Split(str, pattern)
	} else {
		re, err := s.t.re.get(pattern)
		if err != nil {
			return nil, err
		}
		// At most as many matches as the allocation budget has room for.
		room := (s.lim.Alloc - s.alloc) / 16
		locs := re.FindAllStringIndex(str, room+1)
		if len(locs) > room {
			return nil, s.limitErr("values took more than %d bytes", s.lim.Alloc)
		}
		if err := s.charge(16 * (len(locs) + 1)); err != nil {
			return nil, err
		}
		if len(locs) == 0 {
			return []string{str}, nil
		}
		last := 0
		for i, loc := range locs {
			if i == 0 && loc[0] == 0 && loc[1] == 0 {
				continue // Java drops the empty string a zero-width match at the start makes
			}
			parts = append(parts, str[last:loc[0]])
			last = loc[1]
		}
		parts = append(parts, str[last:])
	}
	if len(parts) == 1 {
		return parts, nil
	}
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts, nil
}

// goReplacement turns a Java replacement ($1, ${name}, \$) into a
// regexp.Expand template.
func goReplacement(repl string, groups int) (string, error) {
	if !strings.ContainsAny(repl, `$\`) {
		return repl, nil
	}
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		switch c {
		case '\\':
			i++
			if i == len(repl) {
				return "", methodError("character to be escaped is missing")
			}
			if repl[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(repl[i])
			}
		case '$':
			i++
			if i == len(repl) {
				return "", methodError("illegal group reference: group index is missing")
			}
			if repl[i] == '{' {
				end := strings.IndexByte(repl[i:], '}')
				if end < 0 {
					return "", methodError("named capturing group is missing trailing '}'")
				}
				b.WriteString("${" + repl[i+1:i+end] + "}")
				i += end
				continue
			}
			if !isDigit(repl[i]) {
				return "", methodError("illegal group reference")
			}
			g := int(repl[i] - '0')
			for i+1 < len(repl) && isDigit(repl[i+1]) {
				next := g*10 + int(repl[i+1]-'0')
				if next > groups {
					break
				}
				g = next
				i++
			}
			if g > groups {
				return "", methodError("no group " + strconv.Itoa(g))
			}
			b.WriteString("${" + strconv.Itoa(g) + "}")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// regexCache keeps a template's compiled regular expressions (Java syntax
// as far as RE2 has it). It holds at most 64; past that it compiles anew.
type regexCache struct {
	mu sync.Mutex
	m  map[string]*regexp.Regexp
}

func newRegexCache() *regexCache { return &regexCache{m: map[string]*regexp.Regexp{}} }

func (c *regexCache) get(pattern string) (*regexp.Regexp, error) {
	c.mu.Lock()
	re, ok := c.m[pattern]
	c.mu.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, methodError("regular expression " + strconv.Quote(pattern) + " is not supported: " + err.Error())
	}
	c.mu.Lock()
	if len(c.m) < 64 {
		c.m[pattern] = re
	}
	c.mu.Unlock()
	return re, nil
}

func (s *state) listMethod(l *List, name string, args []any) (any, bool, error) {
	n := len(l.Items)
	switch name {
	case "size":
		return int64(n), true, nil
	case "isEmpty":
		return n == 0, true, nil
	case "get":
		i, ok := argInt(args, 0)
		if !ok {
			return nil, false, nil
		}
		if i < 0 || i >= n {
			return nil, true, methodError("index " + strconv.Itoa(i) + " out of bounds for length " + strconv.Itoa(n))
		}
		return l.Items[i], true, nil
	case "contains", "indexOf":
		if len(args) != 1 {
			return nil, false, nil
		}
		for i, it := range l.Items {
			eq, err := s.deepEqual(it, args[0], 0)
			if err != nil {
				return nil, true, err
			}
			if eq {
				if name == "contains" {
					return true, true, nil
				}
				return int64(i), true, nil
			}
		}
		if name == "contains" {
			return false, true, nil
		}
		return int64(-1), true, nil
	case "add":
		if err := s.charge(16); err != nil {
			return nil, true, err
		}
		switch len(args) {
		case 1:
			l.Items = append(l.Items, args[0])
			return true, true, nil
		case 2:
			i, ok := argInt(args, 0)
			if !ok {
				return nil, false, nil
			}
			if i < 0 || i > n {
				return nil, true, methodError("index " + strconv.Itoa(i) + " out of bounds for length " + strconv.Itoa(n))
			}
			l.Items = append(l.Items, nil)
			copy(l.Items[i+1:], l.Items[i:])
			l.Items[i] = args[1]
			return nil, true, nil
		}
	case "addAll":
		other, ok := listArg(args)
		if !ok {
			return nil, false, nil
		}
		if err := s.charge(16 * len(other)); err != nil {
			return nil, true, err
		}
		l.Items = append(l.Items, other...)
		return len(other) > 0, true, nil
	case "set":
		i, ok := argInt(args, 0)
		if !ok || len(args) != 2 {
			return nil, false, nil
		}
		if i < 0 || i >= n {
			return nil, true, methodError("index " + strconv.Itoa(i) + " out of bounds for length " + strconv.Itoa(n))
		}
		old := l.Items[i]
		l.Items[i] = args[1]
		return old, true, nil
	case "remove":
		if len(args) != 1 {
			return nil, false, nil
		}
		if i, ok := argInt(args, 0); ok {
			if i < 0 || i >= n {
				return nil, true, methodError("index " + strconv.Itoa(i) + " out of bounds for length " + strconv.Itoa(n))
			}
			old := l.Items[i]
			l.Items = append(l.Items[:i], l.Items[i+1:]...)
			return old, true, nil
		}
		for i, it := range l.Items {
			if eq, err := s.deepEqual(it, args[0], 0); err != nil || eq {
				if err == nil {
					l.Items = append(l.Items[:i], l.Items[i+1:]...)
				}
				return eq, true, err
			}
		}
		return false, true, nil
	case "clear":
		l.Items = l.Items[:0]
		return nil, true, nil
	case "subList":
		a, ok1 := argInt(args, 0)
		b, ok2 := argInt(args, 1)
		if !ok1 || !ok2 {
			return nil, false, nil
		}
		if a < 0 || b > n || a > b {
			return nil, true, methodError("fromIndex " + strconv.Itoa(a) + ", toIndex " + strconv.Itoa(b) + ", size " + strconv.Itoa(n))
		}
		if err := s.charge(16 * (b - a)); err != nil {
			return nil, true, err
		}
		return &List{Items: append([]any(nil), l.Items[a:b]...), JSON: l.JSON}, true, nil
	}
	return nil, false, nil
}

func listArg(args []any) ([]any, bool) {
	if len(args) != 1 {
		return nil, false
	}
	switch x := args[0].(type) {
	case *List:
		return x.Items, true
	}
	return nil, false
}

// entry is a Map.Entry from entrySet().
type entry struct {
	key string
	val any
}

func (e *entry) Property(name string) (any, bool) {
	switch name {
	case "key":
		return e.key, true
	case "value":
		return e.val, true
	}
	return nil, false
}

func (e *entry) Call(name string, args []any) (any, bool, error) {
	switch name {
	case "getKey":
		return e.key, true, nil
	case "getValue":
		return e.val, true, nil
	}
	return nil, false, nil
}

func (s *state) mapMethod(m *Map, name string, args []any) (any, bool, error) {
	key := func() (string, bool) {
		if len(args) == 0 {
			return "", false
		}
		if args[0] == nil {
			return "", false
		}
		k, err := s.str(args[0])
		return k, err == nil
	}
	switch name {
	case "size":
		return int64(m.Len()), true, nil
	case "isEmpty":
		return m.Len() == 0, true, nil
	case "get", "containsKey", "remove", "getOrDefault":
		k, ok := key()
		if !ok {
			if name == "containsKey" {
				return false, true, nil
			}
			return nil, true, nil
		}
		switch name {
		case "get":
			return m.vals[k], true, nil
		case "containsKey":
			_, has := m.vals[k]
			return has, true, nil
		case "getOrDefault":
			if v, has := m.vals[k]; has {
				return v, true, nil
			}
			if len(args) > 1 {
				return args[1], true, nil
			}
			return nil, true, nil
		}
		return m.Remove(k), true, nil
	case "put":
		k, ok := key()
		if !ok || len(args) != 2 {
			return nil, false, nil
		}
		if err := s.charge(16 + len(k)); err != nil {
			return nil, true, err
		}
		return m.Put(k, args[1]), true, nil
	case "putAll":
		if len(args) != 1 {
			return nil, false, nil
		}
		other, ok := args[0].(*Map)
		if !ok {
			return nil, false, nil
		}
		if err := s.charge(16 * other.Len()); err != nil {
			return nil, true, err
		}
		for _, k := range append([]string(nil), other.keys...) {
			m.Put(k, other.vals[k])
		}
		return nil, true, nil
	case "containsValue":
		if len(args) != 1 {
			return nil, false, nil
		}
		for _, k := range m.keys {
			eq, err := s.deepEqual(m.vals[k], args[0], 0)
			if err != nil || eq {
				return eq, true, err
			}
		}
		return false, true, nil
	case "keySet", "values", "entrySet":
		if err := s.charge(16 * m.Len()); err != nil {
			return nil, true, err
		}
		l := &List{Items: make([]any, m.Len())}
		for i, k := range m.keys {
			switch name {
			case "keySet":
				l.Items[i] = k
			case "values":
				l.Items[i] = m.vals[k]
			default:
				l.Items[i] = &entry{k, m.vals[k]}
			}
		}
		return l, true, nil
	case "clear":
		m.keys = m.keys[:0]
		clear(m.vals)
		return nil, true, nil
	}
	return nil, false, nil
}

func (e *entry) String() string {
	return e.key + "=" + plain(e.val)
}

// plain renders scalars for an entry's String (collections by JSON).
func plain(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return FormatDouble(x)
	}
	return JSON(v)
}

func numberMethod(v any, name string, args []any) (any, bool) {
	if len(args) != 0 {
		return nil, false
	}
	f, _ := number(v)
	switch name {
	case "intValue", "longValue", "shortValue", "byteValue":
		if i, ok := v.(int64); ok {
			if name == "intValue" {
				return int64(int32(i)), true
			}
			return i, true
		}
		if i, ok := toInt(f); ok {
			return i, true
		}
	case "doubleValue", "floatValue":
		return f, true
	}
	return nil, false
}
