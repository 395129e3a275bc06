package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
func (e *SelectionExpression) Evaluate(body []byte) (key string, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || (body[0] != '{' && body[0] != '[') {
		return "", false
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
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
		writeScalar(&b, lookup(doc, p.path))
	}
	return b.String(), true
}

func lookup(v any, path []string) any {
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
