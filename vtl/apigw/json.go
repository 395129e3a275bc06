package apigw

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wsgate/wsgate/vtl"
)

// maxJSONDepth bounds how deeply nested a body or a parseJson argument may
// be; deeper input is refused as not JSON.
const maxJSONDepth = 256

var errTooDeep = fmt.Errorf("JSON nested deeper than %d", maxJSONDepth)

// parseJSON decodes one JSON document into template values: objects as
// insertion-ordered *vtl.Map, arrays as JSON lists (they render as JSON,
// as json-smart's JSONArray does on AWS), integers as int64 and other
// numbers as float64. It is strict RFC 8259 JSON.
func parseJSON(data string) (any, error) {
	d := &decoder{s: data}
	d.space()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.s) {
		return nil, d.errorf("data after the JSON value")
	}
	return v, nil
}

type decoder struct {
	s string
	i int
}

func (d *decoder) errorf(msg string) error {
	return fmt.Errorf("%s at offset %d", msg, d.i)
}

func (d *decoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, error) {
	if d.i >= len(d.s) {
		return nil, d.errorf("unexpected end of JSON")
	}
	switch c := d.s[d.i]; {
	case c == '{':
		if depth >= maxJSONDepth {
			return nil, errTooDeep
		}
		d.i++
		m := vtl.NewMap(4)
		d.space()
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			return m, nil
		}
		for {
			d.space()
			if d.i >= len(d.s) || d.s[d.i] != '"' {
				return nil, d.errorf("expected a string key")
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			d.space()
			if d.i >= len(d.s) || d.s[d.i] != ':' {
				return nil, d.errorf("expected :")
			}
			d.i++
			d.space()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m.Put(k, v)
			d.space()
			if d.i < len(d.s) && d.s[d.i] == ',' {
				d.i++
				continue
			}
			if d.i < len(d.s) && d.s[d.i] == '}' {
				d.i++
				return m, nil
			}
			return nil, d.errorf("expected , or }")
		}
	case c == '[':
		if depth >= maxJSONDepth {
			return nil, errTooDeep
		}
		d.i++
		l := &vtl.List{Items: []any{}, JSON: true}
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			return l, nil
		}
		for {
			d.space()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			l.Items = append(l.Items, v)
			d.space()
			if d.i < len(d.s) && d.s[d.i] == ',' {
				d.i++
				continue
			}
			if d.i < len(d.s) && d.s[d.i] == ']' {
				d.i++
				return l, nil
			}
			return nil, d.errorf("expected , or ]")
		}
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	for _, lit := range [...]struct {
		word string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if strings.HasPrefix(d.s[d.i:], lit.word) {
			d.i += len(lit.word)
			return lit.v, nil
		}
	}
	return nil, d.errorf("unexpected character")
}

// str reads a string; one with escapes is decoded by encoding/json.
func (d *decoder) str() (string, error) {
	start := d.i
	d.i++
	escaped := false
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			raw := d.s[start+1 : d.i-1]
			if !escaped {
				return validUTF8(raw), nil
			}
			var out string
			if err := json.Unmarshal([]byte(d.s[start:d.i]), &out); err != nil {
				return "", d.errorf("bad string")
			}
			return out, nil
		case c == '\\':
			escaped = true
			d.i += 2
		case c < 0x20:
			return "", d.errorf("control character in a string")
		default:
			d.i++
		}
	}
	return "", d.errorf("string is not closed")
}

func (d *decoder) number() (any, error) {
	start := d.i
	if d.s[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	intStart := d.i
	if n := digits(); n == 0 || n > 1 && d.s[intStart] == '0' {
		return nil, d.errorf("bad number")
	}
	float := false
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		float = true
		if digits() == 0 {
			return nil, d.errorf("bad number")
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		float = true
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, d.errorf("bad number")
		}
	}
	text := d.s[start:d.i]
	if !float {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, d.errorf("bad number")
	}
	return f, nil
}

// copier copies the collections of a parsed document, each once: what
// several places share stays shared in the copy, so a copy is never
// larger than the document. budget counts the values copied.
type copier struct {
	seen   map[any]any
	budget int
}

func (c *copier) copy(v any) any {
	switch x := v.(type) {
	case *vtl.List:
		if done, ok := c.seen[x]; ok {
			return done
		}
		c.budget -= 1 + len(x.Items)
		l := &vtl.List{Items: make([]any, len(x.Items)), JSON: x.JSON}
		c.seen[x] = l
		for i, it := range x.Items {
			l.Items[i] = c.copy(it)
		}
		return l
	case *vtl.Map:
		if done, ok := c.seen[x]; ok {
			return done
		}
		c.budget -= 1 + x.Len()
		m := vtl.NewMap(x.Len())
		c.seen[x] = m
		for _, k := range x.Keys() {
			e, _ := x.Get(k)
			m.Put(k, c.copy(e))
		}
		return m
	}
	return v
}

// validUTF8 replaces each byte of an invalid UTF-8 sequence with U+FFFD,
// as encoding/json and Java's decoder do.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // ranging yields RuneError per bad byte
	}
	return b.String()
}
