package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SelectionExpression is a parsed route selection expression, such as
// "$request.body.action", "${request.body.service}/${request.body.action}"
// or "\$default" (the escaped literal that sends everything to $default).
//
// Syntax, as API Gateway documents it: variables are $request.body.PATH or
// ${request.body.PATH}; PATH is dotted member names, with [N] for an array
// element; anything else is static text; "\$" is a literal '$'. A variable
// that resolves to nothing gives "". Strings give their text, numbers their
// JSON text, booleans true/false, null "", arrays "[a, b]" and objects
// "{k=v, k2=w}" (Java's toString style, which AWS uses [unverified]).
type SelectionExpression struct {
	parts []exprPart
	// hasVars is false for a pure static expression.
	hasVars bool
	src     string
}

type exprPart struct {
	text string   // static text, when path is nil
	path []string // body path: member names; "[N]" elements index arrays
}

// ParseSelectionExpression parses a route selection expression.
func ParseSelectionExpression(s string) (*SelectionExpression, error) {
	if s == "" {
		return nil, errors.New("empty expression")
	}
	e := &SelectionExpression{src: s}
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			e.parts = append(e.parts, exprPart{text: text.String()})
			text.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], `\$`):
			text.WriteByte('$')
			i += 2
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("%q: unclosed ${", s)
			}
			path, err := parseVariable(s[i+2 : i+end])
			if err != nil {
				return nil, fmt.Errorf("%q: %v", s, err)
			}
			flush()
			e.parts = append(e.parts, exprPart{path: path})
			e.hasVars = true
			i += end + 1
		case s[i] == '$':
			j := i + 1
			for j < len(s) && isPathByte(s[j]) {
				j++
			}
			path, err := parseVariable(s[i+1 : j])
			if err != nil {
				return nil, fmt.Errorf("%q: %v (write \\$ for a literal '$')", s, err)
			}
			flush()
			e.parts = append(e.parts, exprPart{path: path})
			e.hasVars = true
			i = j
		default:
			text.WriteByte(s[i])
			i++
		}
	}
	flush()
	return e, nil
}

func isPathByte(c byte) bool {
	return c == '.' || c == '_' || c == '[' || c == ']' ||
		('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// parseVariable parses "request.body.a.b[0]" into its path below the body.
func parseVariable(v string) ([]string, error) {
	const prefix = "request.body"
	if v == prefix {
		return []string{}, nil // the whole body
	}
	if !strings.HasPrefix(v, prefix+".") {
		return nil, fmt.Errorf("unsupported variable $%s: only $request.body.* is available to WebSocket route selection", v)
	}
	var path []string
	for _, seg := range strings.Split(v[len(prefix)+1:], ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			path = append(path, name)
		}
		if rest != "" {
			for _, idx := range strings.Split("["+rest, "[")[1:] {
				n, ok := strings.CutSuffix(idx, "]")
				if _, err := strconv.Atoi(n); !ok || err != nil {
					return nil, fmt.Errorf("bad array index in $%s", v)
				}
				path = append(path, "["+n+"]")
			}
		} else if name == "" {
			return nil, fmt.Errorf("empty member name in $%s", v)
		}
	}
	return path, nil
}

// String returns the expression as written.
func (e *SelectionExpression) String() string { return e.src }

// Evaluate computes the route key for a message body. ok is false when the
// body is not JSON (or not a JSON object or array), which API Gateway sends
// straight to $default whatever the expression says.
//
// The body is scanned, not decoded: it is checked as strictly as
// encoding/json's Decoder checks it, and only the values the expression
// names are read (FuzzRouteSelection holds the two to the same answers).
func (e *SelectionExpression) Evaluate(body string) (key string, ok bool) {
	body = strings.TrimSpace(body)
	if len(body) == 0 || (body[0] != '{' && body[0] != '[') {
		return "", false
	}
	end, ok := skipValue(body, 0)
	if !ok || !endsDocument(body[end:]) {
		return "", false
	}
	doc := body[:end]
	if !e.hasVars && len(e.parts) == 1 {
		return e.parts[0].text, true
	}
	if len(e.parts) == 1 {
		// The usual $request.body.action: a string value is the key as it
		// is (copied: group names outlive the message).
		if v, found := lookupRaw(doc, e.parts[0].path); found && isPlainString(v) {
			return strings.Clone(v[1 : len(v)-1]), true
		}
	}
	var b strings.Builder
	for _, p := range e.parts {
		if p.path == nil {
			b.WriteString(p.text)
			continue
		}
		if v, found := lookupRaw(doc, p.path); found {
			writeRaw(&b, v)
		}
	}
	return b.String(), true
}

// endsDocument reports whether what follows the first value is what
// encoding/json's Decoder.More reports as the end: nothing but whitespace,
// or whitespace and a closing bracket (the Decoder does not look further).
func endsDocument(rest string) bool {
	rest = rest[skipSpace(rest, 0):]
	return rest == "" || rest[0] == ']' || rest[0] == '}'
}

// maxDepth is encoding/json's nesting limit: deeper documents are invalid.
const maxDepth = 10000

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
		i++
	}
	return i
}

// skipValue checks the JSON value starting at s[i] (no leading space) and
// returns where it ends. It accepts exactly what encoding/json's scanner
// accepts, nesting limit included, without allocating.
func skipValue(s string, i int) (end int, ok bool) {
	// open holds one bit per open container, 1 for an object.
	var open [maxDepth/64 + 1]uint64
	depth := 0
	for {
		// A value starts at s[i].
		if i >= len(s) {
			return 0, false
		}
		switch c := s[i]; {
		case c == '{' || c == '[':
			if depth == maxDepth {
				return 0, false
			}
			if c == '{' {
				open[depth/64] |= 1 << (depth % 64)
			} else {
				open[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipSpace(s, i+1)
			if i < len(s) && s[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				depth--
				i++
				break
			}
			if c == '{' {
				if i, ok = skipKey(s, i); !ok {
					return 0, false
				}
			}
			continue
		case c == '"':
			if i, ok = skipString(s, i); !ok {
				return 0, false
			}
		case c == '-' || '0' <= c && c <= '9':
			if i, ok = skipNumber(s, i); !ok {
				return 0, false
			}
		default:
			var lit string
			switch c {
			case 't':
				lit = "true"
			case 'f':
				lit = "false"
			case 'n':
				lit = "null"
			default:
				return 0, false
			}
			if !strings.HasPrefix(s[i:], lit) {
				return 0, false
			}
			i += len(lit)
		}
		// A value ended before s[i]: close containers, or go on to the
		// next element or member.
		for {
			if depth == 0 {
				return i, true
			}
			i = skipSpace(s, i)
			if i >= len(s) {
				return 0, false
			}
			inObject := open[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			if s[i] == ',' {
				i = skipSpace(s, i+1)
				if inObject {
					if i, ok = skipKey(s, i); !ok {
						return 0, false
					}
				}
				break
			}
			if inObject && s[i] != '}' || !inObject && s[i] != ']' {
				return 0, false
			}
			depth--
			i++
		}
	}
}

// skipKey skips a member name, the colon and the space after it.
func skipKey(s string, i int) (int, bool) {
	if i >= len(s) || s[i] != '"' {
		return 0, false
	}
	i, ok := skipString(s, i)
	if !ok {
		return 0, false
	}
	i = skipSpace(s, i)
	if i >= len(s) || s[i] != ':' {
		return 0, false
	}
	return skipSpace(s, i+1), true
}

// skipString skips the string starting at s[i] == '"'.
func skipString(s string, i int) (int, bool) {
	for i++; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, true
		case c < ' ':
			return 0, false
		case c == '\\':
			i++
			if i >= len(s) {
				return 0, false
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) {
					return 0, false
				}
				for _, h := range []byte(s[i+1 : i+5]) {
					if !isHex(h) {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber skips the number starting at s[i]: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(s string, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if s[i] == '-' {
		i++
	}
	var ok bool
	switch {
	case i < len(s) && s[i] == '0':
		i++
	default:
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	if i < len(s) && s[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return 0, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	return i, true
}

// lookupRaw finds the value at path in doc, a valid JSON value, and
// returns its text. As when decoding into a map, the last of duplicate
// members counts.
func lookupRaw(doc string, path []string) (string, bool) {
	for _, seg := range path {
		var (
			found string
			ok    bool
		)
		if strings.HasPrefix(seg, "[") {
			n, _ := strconv.Atoi(seg[1 : len(seg)-1])
			if doc[0] != '[' || n < 0 {
				return "", false
			}
			eachElement(doc, func(k int, _, v string) bool {
				if k == n {
					found, ok = v, true
					return false
				}
				return true
			})
		} else {
			if doc[0] != '{' {
				return "", false
			}
			eachElement(doc, func(_ int, name, v string) bool {
				if memberNameIs(name, seg) {
					found, ok = v, true
				}
				return true
			})
		}
		if !ok {
			return "", false
		}
		doc = found
	}
	return doc, true
}

// eachElement calls f with the index, the quoted name (objects) and the
// text of each element of doc, a valid JSON object or array, until f
// returns false.
func eachElement(doc string, f func(k int, name, v string) bool) {
	i := skipSpace(doc, 1)
	if doc[i] == '}' || doc[i] == ']' {
		return
	}
	for k := 0; ; k++ {
		var name string
		if doc[0] == '{' {
			j, _ := skipString(doc, i)
			name = doc[i:j]
			i = skipSpace(doc, j)
			i = skipSpace(doc, i+1) // the colon
		}
		end, _ := skipValue(doc, i)
		if !f(k, name, doc[i:end]) {
			return
		}
		i = skipSpace(doc, end)
		if doc[i] != ',' {
			return
		}
		i = skipSpace(doc, i+1)
	}
}

// isPlainString reports whether v is a JSON string whose text is its
// value: no escapes and valid UTF-8 (encoding/json replaces bad bytes).
func isPlainString(v string) bool {
	return v[0] == '"' && !strings.ContainsRune(v, '\\') && utf8.ValidString(v)
}

// memberNameIs reports whether the quoted member name decodes to seg.
func memberNameIs(name, seg string) bool {
	if isPlainString(name) {
		return name[1:len(name)-1] == seg
	}
	var s string
	_ = json.Unmarshal([]byte(name), &s)
	return s == seg
}

// writeRaw writes a JSON value as its route-key text (see
// SelectionExpression). Objects and arrays, rare in route keys, are
// decoded to order members as the decoded form does.
func writeRaw(b *strings.Builder, v string) {
	switch v[0] {
	case '"':
		if isPlainString(v) {
			b.WriteString(v[1 : len(v)-1])
			return
		}
		var s string
		_ = json.Unmarshal([]byte(v), &s)
		b.WriteString(s)
	case 'n':
	case '{', '[':
		var x any
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		_ = dec.Decode(&x)
		writeScalar(b, x)
	default: // numbers keep their text; true, false
		b.WriteString(v)
	}
}

func writeScalar(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
	case string:
		b.WriteString(v)
	case json.Number:
		b.WriteString(v.String())
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeScalar(b, x)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteByte('=')
			writeScalar(b, v[k])
		}
		b.WriteByte('}')
	}
}
