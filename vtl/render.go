package vtl

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// str renders v as Java's toString would, bounded by Limits.Depth and
// charged to Limits.Alloc.
func (s *state) str(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case nil:
		return "null", nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return FormatDouble(x), nil
	case *block:
		mark := len(s.out)
		err := s.renderBlock(x)
		str := string(s.out[mark:])
		s.out = s.out[:mark]
		if err != nil {
			return "", err
		}
		return str, s.charge(len(str))
	}
	var b strings.Builder
	if err := s.build(&b, v, false, 0); err != nil {
		return "", err
	}
	return b.String(), s.charge(b.Len())
}

// Text renders v as Velocity does: Java's toString for maps ({a=1}),
// lists ([a, b]) and numbers (1.0E7), JSON inside JSON lists. It is
// bounded by the default Limits; past them it answers what it has.
func Text(v any) string {
	s := &state{t: &Template{}, lim: Limits{}.withDefaults()}
	if str, ok := v.(string); ok {
		return str
	}
	var b strings.Builder
	_ = s.build(&b, v, false, 0)
	return b.String()
}

// build writes v to b: Java-style, or JSON inside a JSON list.
func (s *state) build(b *strings.Builder, v any, json bool, depth int) error {
	if depth > s.lim.Depth {
		return s.limitErr("collections nested deeper than %d", s.lim.Depth)
	}
	if err := s.step(); err != nil {
		return err
	}
	if b.Len() > s.lim.Output {
		return s.limitErr("a value's text is over %d bytes", s.lim.Output)
	}
	switch x := v.(type) {
	case *List:
		json = json || x.JSON
		sep := ", "
		if json {
			sep = ","
		}
		b.WriteByte('[')
		for i, it := range x.Items {
			if i > 0 {
				b.WriteString(sep)
			}
			if err := s.build(b, it, json, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case *Map:
		b.WriteByte('{')
		for i, k := range x.keys {
			if json {
				if i > 0 {
					b.WriteByte(',')
				}
				writeJSONString(b, k)
				b.WriteByte(':')
			} else {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(k)
				b.WriteByte('=')
			}
			if err := s.build(b, x.vals[k], json, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case string:
		if json {
			writeJSONString(b, x)
		} else {
			b.WriteString(x)
		}
	case *block:
		str, err := s.str(x)
		if err != nil {
			return err
		}
		b.WriteString(str)
	case interface{ String() string }:
		b.WriteString(x.String())
	default:
		writeScalar(b, x)
	}
	return nil
}

// writeScalar writes null, a boolean or a number as Java prints it.
func writeScalar(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(FormatDouble(x))
	}
}

// writeJSONString writes str as a JSON string: ", \ and control
// characters escaped, everything else (/ and non-ASCII included) as it is.
func writeJSONString(b *strings.Builder, str string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(str); {
		c := str[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			if c < utf8.RuneSelf {
				i++
				continue
			}
			r, size := utf8.DecodeRuneInString(str[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString(str[start:i])
				b.WriteString(`\ufffd`)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b.WriteString(str[start:i])
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			const hex = "0123456789abcdef"
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
		i++
		start = i
	}
	b.WriteString(str[start:])
	b.WriteByte('"')
}

// JSON renders v as compact JSON (what $input.json returns): maps as
// objects, lists as arrays, strings quoted. A value nested deeper than 256
// levels, or past a million values (only a template's own cyclic
// collections get there), renders as null from there on.
func JSON(v any) string {
	s, _ := JSONLimit(v, math.MaxInt)
	return s
}

// JSONLimit is JSON that stops once the text passes maxBytes; ok is false
// then, and the text is cut.
func JSONLimit(v any, maxBytes int) (text string, ok bool) {
	var b strings.Builder
	budget := 1 << 20
	jsonValue(&b, v, 0, &budget, maxBytes)
	return b.String(), b.Len() <= maxBytes
}

func jsonValue(b *strings.Builder, v any, depth int, budget *int, maxBytes int) {
	*budget--
	if b.Len() > maxBytes {
		return
	}
	if depth > 256 || *budget < 0 {
		b.WriteString("null")
		return
	}
	switch x := v.(type) {
	case nil, bool, int64, float64:
		writeScalar(b, x)
	case string:
		writeJSONString(b, x)
	case *List:
		b.WriteByte('[')
		for i, it := range x.Items {
			if i > 0 {
				b.WriteByte(',')
			}
			jsonValue(b, it, depth+1, budget, maxBytes)
		}
		b.WriteByte(']')
	case *Map:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			jsonValue(b, x.vals[k], depth+1, budget, maxBytes)
		}
		b.WriteByte('}')
	case interface{ String() string }:
		writeJSONString(b, x.String())
	default:
		b.WriteString("null")
	}
}
