package sigv4

import (
	"bytes"
	"slices"
	"strings"
)

// Fixed parts of the AWS4-HMAC-SHA256 scheme.
const (
	// Algorithm is the only SigV4 algorithm this package signs and accepts.
	Algorithm = "AWS4-HMAC-SHA256"
	// UnsignedPayload is the payload hash of a request whose body is not
	// signed (S3 style); it must be sent in X-Amz-Content-Sha256.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// EmptyPayloadHash is the hex SHA-256 of an empty body.
	EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// TimeFormat is the layout of X-Amz-Date (ISO 8601 basic, UTC).
	TimeFormat = "20060102T150405Z"

	scopeTerminator = "aws4_request"
	maxPresignSecs  = 7 * 24 * 3600 // X-Amz-Expires limit, one week
)

const upperHex = "0123456789ABCDEF"

// unreserved marks the RFC 3986 unreserved bytes SigV4 leaves as they are:
// A-Z a-z 0-9 - . _ ~. Every other byte is written %XX.
var unreserved = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['.'], t['_'], t['~'] = true, true, true, true
	return t
}()

// appendEscapedByte appends c, percent-encoded unless it is unreserved.
func appendEscapedByte(dst []byte, c byte) []byte {
	if unreserved[c] {
		return append(dst, c)
	}
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

// appendEscaped appends s with every byte outside the unreserved set
// percent-encoded (upper-case hex); '/' is kept when keepSlash is set.
func appendEscaped(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keepSlash && c == '/' {
			dst = append(dst, c)
			continue
		}
		dst = appendEscapedByte(dst, c)
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeAt decodes the byte at s[i]: a valid %XX triplet gives its byte and
// width 3; anything else (a stray '%' included) stands for itself. With
// plusSpace, '+' decodes to a space (form encoding, as url.ParseQuery does).
func decodeAt(s string, i int, plusSpace bool) (byte, int) {
	c := s[i]
	if c == '%' && i+2 < len(s) {
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if ok1 && ok2 {
			return hi<<4 | lo, 3
		}
	}
	if c == '+' && plusSpace {
		return ' ', 1
	}
	return c, 1
}

// appendReencoded decodes s (percent-escapes, and '+' as space when
// plusSpace) and appends it strictly re-encoded. keepSlash keeps a literal
// '/' (an escaped %2F stays escaped).
func appendReencoded(dst []byte, s string, plusSpace, keepSlash bool) []byte {
	if strings.IndexByte(s, '%') < 0 && (!plusSpace || strings.IndexByte(s, '+') < 0) {
		return appendEscaped(dst, s, keepSlash) // nothing to decode
	}
	for i := 0; i < len(s); {
		if keepSlash && s[i] == '/' {
			dst = append(dst, '/')
			i++
			continue
		}
		c, n := decodeAt(s, i, plusSpace)
		dst = appendEscapedByte(dst, c)
		i += n
	}
	return dst
}

// unescape returns s percent-decoded ('+' as space when plusSpace). It
// returns s itself, without allocating, when there is nothing to decode.
func unescape(s string, plusSpace bool) string {
	if !strings.ContainsRune(s, '%') && !(plusSpace && strings.ContainsRune(s, '+')) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c, n := decodeAt(s, i, plusSpace)
		b = append(b, c)
		i += n
	}
	return string(b)
}

// pathNeedsNormalizing reports whether normalizePath would change p: an
// empty path, an empty segment inside it ("//"), or a "." or ".." segment.
func pathNeedsNormalizing(p string) bool {
	if p == "" {
		return true
	}
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		seg := p[start:i]
		switch {
		case seg == "." || seg == "..":
			return true
		case seg == "" && start != 0 && i != len(p):
			return true // empty segment in the middle: "//"
		}
		start = i + 1
	}
	return false
}

// normalizePath removes dot segments and empty segments the way botocore's
// remove_dot_segments does: keep the leading '/', pop on "..", and keep a
// trailing '/' when the input had one and something is left. "" becomes "/".
func normalizePath(p string) string {
	if p == "" {
		return "/"
	}
	out := make([]string, 0, 8)
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	var b strings.Builder
	b.Grow(len(p))
	if p[0] == '/' {
		b.WriteByte('/')
	}
	for i, seg := range out {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(seg)
	}
	if p[len(p)-1] == '/' && len(out) > 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// appendCanonicalURI appends the canonical URI of the wire path raw (still
// percent-encoded, as in the request-target).
//
// Default (every service but S3): normalize when asked, then encode every
// byte outside the unreserved set and '/' once more, so an encoded "%3D"
// becomes "%253D" and a literal "@" becomes "%40".
//
// S3: no normalization; the path is decoded and encoded exactly once, so a
// correctly encoded wire path is its own canonical form.
func appendCanonicalURI(dst []byte, raw string, s3, normalize bool) []byte {
	if s3 {
		if raw == "" {
			return append(dst, '/')
		}
		return appendReencoded(dst, raw, false, true)
	}
	if normalize && pathNeedsNormalizing(raw) {
		raw = normalizePath(raw)
	}
	if raw == "" {
		return append(dst, '/')
	}
	return appendEscaped(dst, raw, true)
}

// queryPair locates one canonical name=value pair inside a scratch arena.
type queryPair struct{ ks, ke, ve int }

// queryBuilder canonicalizes query strings with reusable scratch space.
type queryBuilder struct {
	arena []byte
	pairs []queryPair
}

// Query parameters that carry the presigned signature's own inputs.
const (
	paramAlgorithm     = "X-Amz-Algorithm"
	paramCredential    = "X-Amz-Credential"
	paramDate          = "X-Amz-Date"
	paramExpires       = "X-Amz-Expires"
	paramSignedHeaders = "X-Amz-SignedHeaders"
	paramSecurityToken = "X-Amz-Security-Token"
	paramSignature     = "X-Amz-Signature"
)

// appendCanonicalQuery appends the canonical form of the raw query: pairs
// split on '&' (empty pieces skipped), each split at the first '=' (none
// means an empty value), names and values decoded then strictly re-encoded
// ('+' is read as a space, as Go's url.ParseQuery and aws-sdk-go-v2 read it),
// sorted by encoded name then encoded value, joined with '&'.
// Pairs whose name is X-Amz-Signature are left out when skipSignature is
// set, and X-Amz-Security-Token when skipToken is set.
func (q *queryBuilder) appendCanonicalQuery(dst []byte, raw string, skipSignature, skipToken bool) []byte {
	if raw == "" {
		return dst
	}
	a := q.arena[:0]
	pairs := q.pairs[:0]
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		ks := len(a)
		a = appendReencoded(a, k, true, false)
		ke := len(a)
		name := a[ks:ke]
		if (skipSignature && string(name) == paramSignature) || (skipToken && string(name) == paramSecurityToken) {
			a = a[:ks]
			continue
		}
		a = appendReencoded(a, v, true, false)
		pairs = append(pairs, queryPair{ks, ke, len(a)})
	}
	slices.SortFunc(pairs, func(x, y queryPair) int {
		if c := bytes.Compare(a[x.ks:x.ke], a[y.ks:y.ke]); c != 0 {
			return c
		}
		return bytes.Compare(a[x.ke:x.ve], a[y.ke:y.ve])
	})
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, a[p.ks:p.ke]...)
		dst = append(dst, '=')
		dst = append(dst, a[p.ke:p.ve]...)
	}
	q.arena, q.pairs = a, pairs
	return dst
}

// headerSpace marks the ASCII whitespace header values are trimmed and
// collapsed on; bytes >= 0x80 are left alone.
var headerSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true, '\v': true, '\f': true}

// appendHeaderValue appends v trimmed, with every run of whitespace inside
// it collapsed to one space (botocore's ' '.join(v.split())). Runs without
// whitespace are copied in bulk.
func appendHeaderValue(dst []byte, v string) []byte {
	i, j := 0, len(v)
	for i < j && headerSpace[v[i]] {
		i++
	}
	for j > i && headerSpace[v[j-1]] {
		j--
	}
	v = v[i:j]
	start := 0
	for k := 0; k < len(v); k++ {
		c := v[k]
		if !headerSpace[c] || (c == ' ' && !headerSpace[v[k+1]]) {
			continue // v ends in a non-space, so v[k+1] exists
		}
		dst = append(dst, v[start:k]...)
		dst = append(dst, ' ')
		for headerSpace[v[k+1]] {
			k++
		}
		start = k + 1
	}
	return append(dst, v[start:]...)
}

// appendHeaderValues appends the values of one header, each trimmed and
// collapsed, joined with ',' in the order received.
func appendHeaderValues(dst []byte, vals []string) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendHeaderValue(dst, v)
	}
	return dst
}

// splitPathQuery splits a request-target into its path and raw query. An
// absolute-form target ("http://host/p?q") loses its scheme and authority.
func splitPathQuery(target string) (path, query string) {
	path, query, _ = strings.Cut(target, "?")
	if path != "" && path[0] != '/' {
		if i := strings.Index(path, "://"); i >= 0 {
			rest := path[i+3:]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				path = rest[j:]
			} else {
				path = ""
			}
		}
	}
	return path, query
}
