package httpfront

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unsafe"
)

// Limits of the head the front parses itself. A head past them is not
// refused here: it goes to net/http with the bytes read so far, which
// applies its own limits (Fallback.MaxHeaderBytes) and answers as it
// always has (431, 400).
const (
	// maxHead is the longest request head (request line, header lines and
	// the blank line) the front reads into its buffer.
	maxHead = 16 << 10
	// maxHeaders is the most header lines the front parses.
	maxHeaders = 64
	// bufSize is a pooled read buffer's size; a head that does not fit
	// grows a buffer of its own up to maxHead.
	bufSize = 4 << 10
)

// parsed is what parseHead found: a request net/http would read the same
// way, and how many bytes of the buffer its head took.
type parsed struct {
	req    *http.Request
	n      int  // bytes of head
	closes bool // Connection: close
}

// reqBox holds a parsed request with its URL and header: one allocation
// for a connection's first request, reused by its next ones (a handler
// must not keep the request after it returned, see Server).
type reqBox struct {
	req  http.Request
	url  url.URL
	h    http.Header
	vals []string
	// mem holds the last head's bytes, which its strings point into;
	// released says the handler of the request parsed from them kept none
	// of those strings (ReleaseHead), so the next head may overwrite them.
	mem      []byte
	released bool
}

// headString returns b as a string. It is a copy of b in new memory, as
// string(b), unless the last head's handler released its memory
// (ReleaseHead) and b fits in it: then it overwrites that, and the head
// costs no allocation (a signed POST's only one) and, with the heap
// floor, no fresh page of memory every ten or so requests.
func (box *reqBox) headString(b []byte) string {
	if box.released && len(b) <= cap(box.mem) {
		box.mem = append(box.mem[:0], b...)
	} else {
		// append rounds the capacity up to the allocation's size class,
		// so a next head a few bytes longer fits too.
		box.mem = append([]byte(nil), b...)
	}
	box.released = false
	return unsafe.String(unsafe.SliceData(box.mem), len(box.mem))
}

// verdicts of parseHead besides a request.
const (
	headOK       = iota
	headMore     // incomplete: read more
	headHandOff  // outside the subset: net/http serves the connection
	headTooLarge // longer than maxHead or more than maxHeaders lines: net/http
)

// parseHead parses the request head at the start of b, within the subset
// the front serves: HTTP/1.1, origin-form targets, GET, POST and DELETE,
// exactly one valid Host, at most one Content-Length and no
// Transfer-Encoding or Expect, CRLF line ends, header names that
// are tokens, values without control bytes, no folded lines. Every request
// it accepts, net/http's ReadRequest reads into the same method, target,
// Host, header and length (FuzzParseHead checks it); anything else is
// headHandOff, so net/http answers it (400, 431, 417, chunked bodies...)
// exactly as it did before the front.
func parseHead(b []byte) (parsed, int) { return parseHeadInto(b, new(reqBox)) }

// parseHeadInto is parseHead filling box (its request, URL and header
// are overwritten).
func parseHeadInto(b []byte, box *reqBox) (parsed, int) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= maxHead {
			return parsed{}, headTooLarge
		}
		// A bare LF ends lines for net/http: such a head may be complete
		// already. Not ours.
		if bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n")) {
			return parsed{}, headHandOff
		}
		return parsed{}, headMore
	}
	n := end + 4
	if n > maxHead {
		return parsed{}, headTooLarge
	}
	// One string holds the head: every name, value and the target are
	// substrings of it, so nothing aliases the pooled buffer.
	head := box.headString(b[:end+2])
	line, rest, _ := cutCRLF(head)
	method, target, proto, ok := requestLine(line)
	if !ok || proto != "HTTP/1.1" {
		return parsed{}, headHandOff
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		return parsed{}, headHandOff
	}
	if len(target) == 0 || target[0] != '/' {
		return parsed{}, headHandOff // absolute-form, authority-form, *
	}
	if plainPath(target) {
		box.url = url.URL{Path: target} // what url.ParseRequestURI makes of it
	} else if strings.IndexByte(target, '?') < 0 {
		// A path with escapes (an SDK's "%3D"), no query: what
		// url.ParseRequestURI makes of it, without its *URL.
		p, err := url.PathUnescape(target)
		if err != nil {
			return parsed{}, headHandOff
		}
		box.url = url.URL{Path: p}
		if box.url.EscapedPath() != target {
			box.url.RawPath = target
		}
	} else {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return parsed{}, headHandOff
		}
		box.url = *u
	}
	// Count the lines first: the header and its values in two allocations.
	lines := strings.Count(rest, "\n")
	if lines > maxHeaders {
		return parsed{}, headTooLarge
	}
	// A value with a control byte (tab aside) is not ours; nor is one
	// anywhere else, which the request line's and the names' own checks
	// would refuse too. One pass over the head, a word at a time.
	if !plainBytes(b[:end+2]) {
		return parsed{}, headHandOff
	}
	h := box.h
	if h == nil {
		h = make(http.Header, lines)
		box.h = h
	} else {
		clear(h)
	}
	if cap(box.vals) < lines+1 {
		box.vals = make([]string, lines+1) // +1: a Cache-Control that Pragma implies
	}
	vals := box.vals[:lines+1]
	clear(vals)
	var (
		host, cl   string
		hosts, cls int
		closes     bool
	)
	for rest != "" {
		var kv string
		kv, rest, ok = cutCRLF(rest)
		if !ok {
			return parsed{}, headHandOff // a bare LF or CR inside the head
		}
		colon := -1
		for i := 0; i < len(kv); i++ {
			c := kv[i]
			if c == ':' {
				colon = i
				break
			}
			if !tokenByte(c) {
				return parsed{}, headHandOff // folded line, space before ':', bad name
			}
		}
		if colon <= 0 {
			return parsed{}, headHandOff
		}
		v := trimOWS(kv[colon+1:])
		k := canonicalKey(kv[:colon])
		switch k {
		case "Host":
			host, hosts = v, hosts+1
			continue // net/http keeps Host out of the header
		case "Content-Length":
			cl, cls = v, cls+1
		case "Transfer-Encoding", "Expect", "Http2-Settings":
			return parsed{}, headHandOff
		case "Connection":
			if hasToken(v, "close") {
				closes = true
			}
		}
		if vs := h[k]; vs != nil {
			h[k] = append(vs, v) // a repeated name: its own slice
			continue
		}
		vals[0] = v
		h[k], vals = vals[:1:1], vals[1:]
	}
	if hosts != 1 || !validHost(host) || cls > 1 {
		return parsed{}, headHandOff
	}
	// As net/http reads "Pragma: no-cache" (RFC 7234 5.4): it implies
	// Cache-Control: no-cache. Browsers send it in every WebSocket
	// handshake.
	if vs := h["Pragma"]; len(vs) > 0 && vs[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			vals[0] = "no-cache"
			h["Cache-Control"] = vals[:1:1]
		}
	}
	length := int64(0)
	if cls == 1 {
		if cl == "" || len(cl) > 15 {
			return parsed{}, headHandOff
		}
		for i := 0; i < len(cl); i++ {
			if cl[i] < '0' || cl[i] > '9' {
				return parsed{}, headHandOff
			}
		}
		length, _ = strconv.ParseInt(cl, 10, 64)
	}
	r := &box.req
	*r = http.Request{
		Method:        method,
		URL:           &box.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Host:          host,
		RequestURI:    target,
		ContentLength: length,
		Close:         closes,
		Body:          http.NoBody,
	}
	return parsed{req: r, n: n, closes: closes}, headOK
}

// canonicalKey is http.CanonicalHeaderKey without its allocation for the
// names a WebSocket handshake spells in mixed case (RFC 6455 writes them
// so, and browsers send them so).
func canonicalKey(k string) string {
	switch k {
	case "Sec-WebSocket-Key":
		return "Sec-Websocket-Key"
	case "Sec-WebSocket-Version":
		return "Sec-Websocket-Version"
	case "Sec-WebSocket-Extensions":
		return "Sec-Websocket-Extensions"
	case "Sec-WebSocket-Protocol":
		return "Sec-Websocket-Protocol"
	}
	return http.CanonicalHeaderKey(k)
}

// plainPath reports whether target is a path made only of bytes a URL
// path keeps as they are (letters, digits, "-._~" and "$&+,/:;=@", as
// url.shouldEscape has it for a path): no escapes, no query.
// url.ParseRequestURI then makes it URL{Path: target}.
func plainPath(target string) bool {
	for i := 0; i < len(target); i++ {
		c := target[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == '~':
		case c == '$', c == '&', c == '+', c == ',', c == '/', c == ':', c == ';', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// plainBytes reports whether b has no control byte but tab, CR and LF,
// and no DEL. It tests eight bytes at once and looks at single bytes only
// in a word that has one below 0x20 or a DEL (the line ends' words).
func plainBytes(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		del := x ^ 0x7f*ones
		if (x-0x20*ones)&^x&highs != 0 || (del-ones)&^del&highs != 0 {
			for _, c := range b[:8] {
				if !plainByte(c) {
					return false
				}
			}
		}
		b = b[8:]
	}
	for _, c := range b {
		if !plainByte(c) {
			return false
		}
	}
	return true
}

func plainByte(c byte) bool {
	return c >= ' ' && c != 0x7f || c == '\t' || c == '\r' || c == '\n'
}

// cutCRLF cuts s at its first line end, which must be CRLF: a lone CR or
// LF is not ok. Both searches are strings.IndexByte's (vector
// instructions), not a loop over the line's bytes.
func cutCRLF(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' || strings.IndexByte(s[:i-1], '\r') >= 0 {
		return "", "", false
	}
	return s[:i-1], s[i+1:], true
}

// requestLine splits "METHOD SP target SP proto" as net/http does, with a
// token method and a target without control bytes or spaces.
func requestLine(line string) (method, target, proto string, ok bool) {
	sp1 := -1
	for i := 0; i < len(line); i++ {
		if line[i] == ' ' {
			sp1 = i
			break
		}
		if !tokenByte(line[i]) {
			return "", "", "", false
		}
	}
	if sp1 <= 0 {
		return "", "", "", false
	}
	rest := line[sp1+1:]
	sp2 := -1
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c == ' ' {
			sp2 = i
			break
		}
		if c < ' ' || c == 0x7f {
			return "", "", "", false
		}
	}
	if sp2 < 0 {
		return "", "", "", false
	}
	return line[:sp1], rest[:sp2], rest[sp2+1:], true
}

// tokenByte reports whether c may appear in an HTTP token (RFC 9110 5.6.2).
func tokenByte(c byte) bool { return tokenBytes[c] }

// tokenBytes is tokenByte's table: a load per byte where a switch over
// the delimiters compared each.
var tokenBytes = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}
	return t
}()

// trimOWS drops the spaces and tabs around a header value, as textproto
// does.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validHost accepts a Host value made only of the bytes a host name, an
// IPv4 or bracketed IPv6 address and a port use: a subset of what net/http
// accepts (anything else goes to net/http, which judges it).
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v has token t, in any
// case.
func hasToken(v, t string) bool {
	for item := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(trimOWS(item), t) {
			return true
		}
	}
	return false
}
