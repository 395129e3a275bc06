package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// proxyResponse is a Lambda proxy integration's answer.
type proxyResponse struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
	// Groups, a wsgate extension of the $connect response (AWS ignores
	// unknown fields), names groups the new connection joins.
	Groups []string `json:"groups"`
}

// parseProxyResponse decodes an integration's answer. An empty answer (a
// handler returning nothing) is status 200; anything but a JSON object is
// malformed, which API Gateway reports as "Internal server error". A
// missing statusCode counts as 200.
//
// The answer is scanned (scanProxyResponse), not decoded: what the scanner
// does not handle itself (a member name in another case, a type error, an
// invalid document) goes to encoding/json, which is also the reference the
// scanner is held to (decodeProxyResponse, FuzzProxyResponseScan).
func parseProxyResponse(out []byte) (*proxyResponse, error) {
	return readProxyResponse(out, scanProxyResponse)
}

// readProxyResponse is parseProxyResponse with the scanner given: what it
// declines, encoding/json decodes.
func readProxyResponse(out []byte, scan func(string, *proxyResponse) bool) (*proxyResponse, error) {
	out = bytes.TrimSpace(out)
	if len(out) == 0 || bytes.Equal(out, []byte("null")) {
		return &proxyResponse{StatusCode: 200}, nil
	}
	if out[0] != '{' {
		return nil, errors.New("malformed Lambda proxy response: not a JSON object")
	}
	res := &proxyResponse{}
	if !scan(string(out), res) {
		*res = proxyResponse{}
		if err := json.Unmarshal(out, res); err != nil {
			return nil, fmt.Errorf("malformed Lambda proxy response: %v", err)
		}
	}
	return checkStatus(res)
}

// checkStatus applies the statusCode rules to a decoded response: none (0)
// is 200, and it must be an HTTP status.
func checkStatus(res *proxyResponse) (*proxyResponse, error) {
	if res.StatusCode == 0 {
		res.StatusCode = 200
	}
	if res.StatusCode < 100 || res.StatusCode > 599 {
		return nil, fmt.Errorf("malformed Lambda proxy response: statusCode %d", res.StatusCode)
	}
	return res, nil
}

// scanProxyResponse fills res from doc, a JSON object with no space around
// it, as json.Unmarshal would, and reports true; false means it leaves the
// document to encoding/json (res then holds part of it): it is invalid
// (checked as strictly as encoding/json checks it), a value has the wrong type
// (the error text is encoding/json's), or a member name is not exactly one
// of the fields' names but might match one (escapes, non-ASCII bytes, a
// name in another case), or groups holds a null.
func scanProxyResponse(doc string, res *proxyResponse) bool {
	if len(doc) > maxDepth {
		// Deep enough to pass the nesting limit: members are checked one
		// by one below, so check the whole first.
		if end, ok := skipValue(doc, 0); !ok || end != len(doc) {
			return false
		}
	}
	i := skipSpace(doc, 1)
	if i < len(doc) && doc[i] == '}' {
		return i == len(doc)-1
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return false
		}
		j, ok := skipString(doc, i)
		if !ok {
			return false
		}
		name := doc[i+1 : j-1]
		if i = skipSpace(doc, j); i >= len(doc) || doc[i] != ':' {
			return false
		}
		i = skipSpace(doc, i+1)
		end, ok := skipMember(doc, i)
		if !ok || !scanMember(name, doc[i:end], res) {
			return false
		}
		switch i = skipSpace(doc, end); {
		case i >= len(doc):
			return false
		case doc[i] == '}':
			return i == len(doc)-1
		case doc[i] != ',':
			return false
		}
		i = skipSpace(doc, i+1)
	}
}

// skipMember is skipValue with shortcuts for strings and numbers, the
// usual members of a response.
func skipMember(s string, i int) (int, bool) {
	switch {
	case i >= len(s):
		return 0, false
	case s[i] == '"':
		return skipString(s, i)
	case s[i] == '-' || '0' <= s[i] && s[i] <= '9':
		return skipNumber(s, i)
	}
	return skipValue(s, i)
}

// proxyFields are the member names proxyResponse decodes.
var proxyFields = [...]string{"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "groups"}

// scanMember stores one member (name unquoted, v its valid JSON value) in
// res; false: leave the document to encoding/json.
func scanMember(name, v string, res *proxyResponse) bool {
	switch name {
	case "statusCode":
		if v == "null" {
			return true
		}
		if strings.ContainsAny(v, ".eE") {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 0)
		if err != nil {
			return false // a string, or out of range
		}
		res.StatusCode = int(n)
	case "body":
		switch v[0] {
		case '"':
			res.Body = unquoteJSON(v)
		case 'n':
		default:
			return false
		}
	case "isBase64Encoded":
		switch v {
		case "true", "false":
			res.IsBase64Encoded = v == "true"
		case "null":
		default:
			return false
		}
	case "headers":
		return scanMap(v, &res.Headers, func(ev string) (string, bool) {
			switch ev[0] {
			case '"':
				return unquoteJSON(ev), true
			case 'n':
				return "", true
			}
			return "", false
		})
	case "multiValueHeaders":
		return scanMap(v, &res.MultiValueHeaders, func(ev string) ([]string, bool) {
			return scanStrings(ev, true)
		})
	case "groups":
		if v == "null" {
			res.Groups = nil
			return true
		}
		// A null element would keep an earlier groups' element there.
		g, ok := scanStrings(v, false)
		res.Groups = g
		return ok
	default:
		for k := 0; k < len(name); k++ {
			if name[k] >= utf8.RuneSelf || name[k] == '\\' {
				return false
			}
		}
		for _, f := range proxyFields {
			if strings.EqualFold(name, f) {
				return false
			}
		}
	}
	return true
}

// scanMap decodes a JSON object into *m as encoding/json does: null makes
// it nil, an object adds its members to it (a later member of the same
// name wins). elem decodes a value; false fails the scan.
func scanMap[V any](v string, m *map[string]V, elem func(string) (V, bool)) bool {
	switch v[0] {
	case 'n':
		*m = nil
		return true
	case '{':
	default:
		return false
	}
	if *m == nil {
		*m = map[string]V{}
	}
	ok := true
	eachElement(v, func(_ int, name, ev string) bool {
		var x V
		if x, ok = elem(ev); ok {
			(*m)[unquoteJSON(name)] = x
		}
		return ok
	})
	return ok
}

// scanStrings decodes a JSON array of strings; a null element is "" when
// nulls is set, else it fails the scan, as does any other element.
func scanStrings(v string, nulls bool) ([]string, bool) {
	switch v[0] {
	case 'n':
		return nil, nulls
	case '[':
	default:
		return nil, false
	}
	out := []string{}
	ok := true
	eachElement(v, func(_ int, _, ev string) bool {
		switch {
		case ev[0] == '"':
			out = append(out, unquoteJSON(ev))
		case ev == "null" && nulls:
			out = append(out, "")
		default:
			ok = false
		}
		return ok
	})
	return out, ok
}

// unquoteJSON decodes a valid JSON string literal as encoding/json does:
// escapes decoded, a surrogate that is not half of a pair and every byte
// of invalid UTF-8 replaced by U+FFFD. A string without escapes is q's own
// text, not a copy.
func unquoteJSON(q string) string {
	s := q[1 : len(q)-1]
	if !strings.ContainsRune(s, '\\') && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			e := s[r+1]
			r += 2
			switch e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				rr := hex4(s[r:])
				r += 4
				if utf16.IsSurrogate(rr) {
					d := unicode.ReplacementChar
					if strings.HasPrefix(s[r:], `\u`) {
						if d = utf16.DecodeRune(rr, hex4(s[r+2:])); d != unicode.ReplacementChar {
							r += 6
						}
					}
					rr = d
				}
				b.WriteRune(rr)
			default: // '"', '\\', '/'
				b.WriteByte(e)
			}
		case c < utf8.RuneSelf:
			// A run of plain ASCII up to the next escape or other byte.
			n := r + 1
			for n < len(s) && s[n] != '\\' && s[n] < utf8.RuneSelf {
				n++
			}
			b.WriteString(s[r:n])
			r = n
		default:
			rr, size := utf8.DecodeRuneInString(s[r:])
			b.WriteRune(rr) // utf8.RuneError for a bad byte
			r += size
		}
	}
	return b.String()
}

// hex4 is the value of the four hex digits s starts with (checked valid).
func hex4(s string) rune {
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// bytes is the body, base64-decoded when the response says so.
func (r *proxyResponse) bytes() ([]byte, error) {
	if r.IsBase64Encoded {
		return base64.StdEncoding.DecodeString(r.Body)
	}
	return []byte(r.Body), nil
}

// errAnswerTooLarge: a two-way route's answer is over the 128 KB message
// limit.
var errAnswerTooLarge = errors.New("route response body over 131072 bytes")

// answer is a two-way route's message to the client: the body, decoded
// when base64. API Gateway's message payload limit is 128 KB, as for a
// POST; a larger answer is an error (the client gets AWS's Internal
// server error frame), never one oversized frame.
func (r *proxyResponse) answer() ([]byte, error) {
	limit := maxMessageBytes
	if r.IsBase64Encoded {
		limit = base64.StdEncoding.EncodedLen(maxMessageBytes) // no decoding of a 6 MB body
	}
	if len(r.Body) > limit {
		return nil, errAnswerTooLarge
	}
	data, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("bad base64 body: %v", err)
	}
	if len(data) > maxMessageBytes {
		return nil, errAnswerTooLarge
	}
	return data, nil
}

// marshalEvent encodes an event without escaping <, > and & (AWS does not).
func marshalEvent(ev *Event) ([]byte, error) {
	size := 768 + ev.headers.encodedLen()
	if ev.Body != nil {
		size += len(*ev.Body) + len(*ev.Body)/8
	}
	return appendEvent(make([]byte, 0, size), ev)
}
