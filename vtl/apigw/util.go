package apigw

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wsgate/wsgate/vtl"
)

// Util is $util.
type Util struct{}

var _ vtl.Object = Util{}

// Property: $util has no properties.
func (Util) Property(string) (any, bool) { return nil, false }

// Call runs $util.escapeJavaScript, parseJson, urlEncode, urlDecode,
// base64Encode and base64Decode. A null argument gives null; other
// non-string arguments are used as their text.
func (Util) Call(name string, args []any) (any, bool, error) {
	switch name {
	case "escapeJavaScript", "parseJson", "urlEncode", "urlDecode", "base64Encode", "base64Decode":
	default:
		return nil, false, nil
	}
	if len(args) != 1 {
		return nil, false, nil
	}
	if args[0] == nil {
		return nil, true, nil
	}
	s, ok := args[0].(string)
	if !ok {
		s = vtl.Text(args[0]) // as Java calls toString on it
	}
	switch name {
	case "escapeJavaScript":
		return EscapeJavaScript(s), true, nil
	case "parseJson":
		v, err := parseJSON(s)
		if err != nil {
			return nil, true, errors.New("not JSON: " + err.Error())
		}
		return v, true, nil
	case "urlEncode":
		return URLEncode(s), true, nil
	case "urlDecode":
		v, err := URLDecode(s)
		return v, true, err
	case "base64Encode":
		return base64.StdEncoding.EncodeToString([]byte(s)), true, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
			return nil, true, errors.New("not base64")
		}
	}
	return validUTF8(string(b)), true, nil
}

// EscapeJavaScript escapes s with JavaScript string rules, as Apache
// Commons Lang's StringEscapeUtils.escapeJavaScript (which API Gateway's
// description matches word for word) does: ' " \ and / get a backslash,
// \b \f \n \r \t their escapes, other control characters and every
// non-ASCII UTF-16 unit \uXXXX (upper-case hex). AWS documents the
// escaped single quote, which is not valid in JSON, and the
// .replaceAll("\\'","'") that undoes it.
func EscapeJavaScript(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	const hex = "0123456789ABCDEF"
	unit := func(u uint16) {
		b.WriteString(`\u`)
		b.WriteByte(hex[u>>12])
		b.WriteByte(hex[u>>8&0xf])
		b.WriteByte(hex[u>>4&0xf])
		b.WriteByte(hex[u&0xf])
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			if r >= 0x10000 {
				r1, r2 := utf16.EncodeRune(r)
				unit(uint16(r1))
				unit(uint16(r2))
			} else {
				unit(uint16(r))
			}
			continue
		}
		i++
		switch c {
		case '\'', '"', '\\', '/':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				unit(uint16(c))
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// URLEncode is Java's URLEncoder.encode(s, "UTF-8"): letters, digits and
// . - * _ stay, a space is +, every other byte %XX.
func URLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '*', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
	}
	return b.String()
}

// URLDecode is Java's URLDecoder.decode(s, "UTF-8"): + is a space, %XX a
// byte; a malformed escape is an error, as Java throws.
func URLDecode(s string) (string, error) {
	if !strings.ContainsAny(s, "+%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return "", errors.New("malformed escape in " + s)
			}
			b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return validUTF8(string(b)), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
