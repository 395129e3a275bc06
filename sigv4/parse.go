package sigv4

import (
	"strconv"
	"strings"
	"time"
)

// Messages AWS uses for malformed authentication data.
const (
	msgNeedCredential    = "Authorization header requires 'Credential' parameter. "
	msgNeedSignature     = "Authorization header requires 'Signature' parameter. "
	msgNeedSignedHeaders = "Authorization header requires 'SignedHeaders' parameter. "
	msgNeedDate          = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
	msgQueryParams       = "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', " +
		"'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."
	msgHostUnsigned = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
)

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=AKID/date/region/
// service/aws4_request, SignedHeaders=a;b, Signature=hex". The parts may be
// separated by "," or ", "; unknown parts are ignored. hasDate says whether
// the request has an X-Amz-Date or Date header, which AWS mentions in the
// same message when parameters are missing.
func parseAuthorization(h string, hasDate bool) (authInput, *Error) {
	in := authInput{raw: h, expires: -1}
	alg, rest, _ := strings.Cut(strings.TrimLeft(h, " "), " ")
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	if alg == Algorithm {
		for rest != "" {
			var part string
			part, rest, _ = strings.Cut(rest, ",")
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			k, val, ok := strings.Cut(part, "=")
			if !ok {
				return in, newError(ReasonIncompleteSignature, "'"+part+"' not a valid key=value pair (missing equal-sign) in Authorization header: '"+h+"'.")
			}
			switch strings.TrimSpace(k) {
			case "Credential":
				cred, haveCred = strings.TrimSpace(val), true
			case "SignedHeaders":
				signed, haveSigned = strings.TrimSpace(val), true
			case "Signature":
				sig, haveSig = strings.TrimSpace(val), true
			}
		}
	}
	if !haveCred || !haveSig || !haveSigned || !hasDate {
		msg := ""
		if !haveCred {
			msg += msgNeedCredential
		}
		if !haveSig {
			msg += msgNeedSignature
		}
		if !haveSigned {
			msg += msgNeedSignedHeaders
		}
		if !hasDate {
			msg += msgNeedDate
		}
		return in, newError(ReasonIncompleteSignature, msg+"Authorization="+h)
	}
	e := in.setParts(cred, signed, sig)
	return in, e
}

// setParts validates and stores the credential, signed-header list and
// signature, which header and query auth share.
func (in *authInput) setParts(cred, signed, sig string) *Error {
	if e := in.setCredential(cred); e != nil {
		return e
	}
	if e := in.setSignedHeaders(signed); e != nil {
		return e
	}
	return in.setSignature(sig)
}

// setCredential splits AKID/date/region/service/terminator from the right,
// so an access key id containing '/' still parses.
func (in *authInput) setCredential(c string) *Error {
	var parts [4]string
	rest := c
	for i := 3; i >= 0; i-- {
		j := strings.LastIndexByte(rest, '/')
		if j < 0 {
			return badCredential(c)
		}
		parts[i], rest = rest[j+1:], rest[:j]
	}
	if rest == "" {
		return badCredential(c)
	}
	in.accessKey, in.scopeDate, in.region, in.service, in.terminator = rest, parts[0], parts[1], parts[2], parts[3]
	return nil
}

func badCredential(c string) *Error {
	return newError(ReasonIncompleteSignature, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '"+c+"'")
}

// setSignedHeaders requires a non-empty list that includes host.
func (in *authInput) setSignedHeaders(s string) *Error {
	for names := s; names != ""; {
		var name string
		name, names, _ = strings.Cut(names, ";")
		if name == "host" {
			in.signedHeaders = s
			return nil
		}
	}
	return newError(ReasonIncompleteSignature, msgHostUnsigned)
}

// setSignature requires exactly 64 lower-case hex digits, before any HMAC
// is computed. A table, not comparisons per digit: whether a digit is in
// 0-9 or a-f cannot be predicted, and the branches' misses made this loop
// one of a signed POST's costliest steps (BENCHMARKS.md, session 14).
func (in *authInput) setSignature(s string) *Error {
	if len(s) != 2*len(in.signature) {
		return newError(ReasonMismatch, "")
	}
	var bad byte
	for i := range in.signature {
		hi, lo := lowerHexValue[s[2*i]], lowerHexValue[s[2*i+1]]
		bad |= hi | lo
		in.signature[i] = hi<<4 | lo&0x0f
	}
	if bad > 0x0f {
		return newError(ReasonMismatch, "")
	}
	return nil
}

// lowerHexValue is a lower-case hex digit's value, and 0xff for every
// other byte.
var lowerHexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
	}
	return t
}()

// The presigned-URL parameters, as indexes into presignParams.
const (
	pAlgorithm = iota
	pCredential
	pDate
	pExpires
	pSignedHeaders
	pSecurityToken
	pSignature
	pCount
)

var presignNames = [pCount]string{
	pAlgorithm: paramAlgorithm, pCredential: paramCredential, pDate: paramDate, pExpires: paramExpires,
	pSignedHeaders: paramSignedHeaders, pSecurityToken: paramSecurityToken, pSignature: paramSignature,
}

// presignParams are the decoded X-Amz-* parameters of a query (the first
// occurrence of each), found in one pass.
type presignParams struct {
	vals  [pCount]string
	found [pCount]bool
}

// scanPresignParams reads the X-Amz-* auth parameters of a raw query.
func scanPresignParams(q string) presignParams {
	var p presignParams
	for q != "" {
		var piece string
		piece, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(piece, "=")
		if !strings.HasPrefix(k, "X-Amz-") {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			k = unescape(k, true)
		}
		for i, name := range presignNames {
			if k == name && !p.found[i] {
				p.vals[i], p.found[i] = unescape(v, true), true
			}
		}
	}
	return p
}

// present reports whether the query carries presigned-URL auth at all
// (any of algorithm, credential or signature).
func (p *presignParams) present() bool {
	return p.found[pAlgorithm] || p.found[pCredential] || p.found[pSignature]
}

// parsePresigned checks and reads the X-Amz-* parameters of a presigned URL.
func parsePresigned(p *presignParams) (authInput, *Error) {
	in := authInput{presigned: true, expires: -1, dateSource: paramDate}
	for _, i := range [...]int{pAlgorithm, pCredential, pDate, pSignedHeaders, pSignature} {
		if !p.found[i] {
			return in, newError(ReasonIncompleteSignature, msgQueryParams)
		}
	}
	if p.vals[pAlgorithm] != Algorithm {
		return in, newError(ReasonIncompleteSignature, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
	}
	if p.found[pExpires] {
		n, err := strconv.ParseInt(p.vals[pExpires], 10, 64)
		switch {
		case err != nil || n < 0:
			return in, newError(ReasonIncompleteSignature, "X-Amz-Expires should be a number")
		case n > maxPresignSecs:
			return in, newError(ReasonIncompleteSignature, "X-Amz-Expires must be less than a week (in seconds) that is 604800")
		}
		in.expires = n
	}
	date := p.vals[pDate]
	t, ok := parseAmzDate(date)
	if !ok {
		return in, badDate(date)
	}
	in.amzDate, in.signedAt = date, t
	in.token = p.vals[pSecurityToken]
	e := in.setParts(p.vals[pCredential], p.vals[pSignedHeaders], p.vals[pSignature])
	return in, e
}

// parseAmzDate parses YYYYMMDDTHHMMSSZ without allocating, rejecting
// out-of-range fields that time.Date would silently normalize.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d := num(0, 4), num(4, 2), num(6, 2)
	h, mi, se := num(9, 2), num(11, 2), num(13, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false
	}
	return t, true
}
