package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of the Verifier's zero fields.
const (
	DefaultMaxSkew      = 5 * time.Minute
	DefaultMaxBodyBytes = 10 << 20 // API Gateway's REST payload limit
)

// Verifier checks SigV4-signed requests received by a net/http server.
// Set the fields before first use and do not change them afterwards; a
// Verifier is then safe for concurrent use by any number of goroutines.
type Verifier struct {
	// Store maps access key ids to secrets (and session tokens). Required.
	Store CredentialStore
	// Service the credential scope must name, e.g. "execute-api".
	// Empty accepts any service.
	Service string
	// Region the credential scope must name, e.g. "us-east-1".
	// Empty accepts any region.
	Region string
	// MaxSkew is how far X-Amz-Date may be from the server clock, in both
	// directions. Default 5 minutes, as AWS.
	MaxSkew time.Duration
	// MaxBodyBytes caps how much body Verify reads to hash it; a longer body
	// fails with 413 PayloadTooLargeException. Default 10 MiB.
	MaxBodyBytes int64
	// Debug puts the expected canonical request and string to sign in the
	// mismatch message, as AWS does. It helps client authors and attackers
	// alike. Default off.
	Debug bool
	// S3 selects S3's canonical URI rule (encode once, no normalization)
	// and accepts UNSIGNED-PAYLOAD. Default false (every other service).
	S3 bool
	// AllowUnsignedPayload accepts "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD"
	// (the body is then not covered by the signature). Default false unless
	// S3 is set.
	AllowUnsignedPayload bool
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Identity is who signed a verified request.
type Identity struct {
	AccessKeyID  string
	SessionToken string // empty for long-term keys
	Region       string // from the credential scope
	Service      string // from the credential scope
	SignedAt     time.Time
	Presigned    bool // query auth (X-Amz-* parameters) rather than a header
}

// scratch is the per-call working memory of Verify, pooled so the hot path
// does not allocate.
type scratch struct {
	buf    []byte
	q      queryBuilder
	x      hasher
	debug  []byte // canonical request + string to sign, for Debug
	debugN int    // where the string to sign starts in debug
	// payload holds the hex body hash.
	payload [2 * sha256.Size]byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{buf: make([]byte, 0, 1024), x: newHasher()}
}}

// putScratch returns st to the pool unless a huge request grew it; the pool
// should not pin megabytes for the sake of one odd request.
func putScratch(st *scratch) {
	if cap(st.buf) > 64<<10 || cap(st.q.arena) > 64<<10 || cap(st.debug) > 64<<10 {
		return
	}
	scratchPool.Put(st)
}

// authInput is what the Authorization header or the presigned query says.
type authInput struct {
	presigned     bool
	raw           string // the Authorization header, for messages
	accessKey     string
	scopeDate     string
	region        string
	service       string
	terminator    string
	signedHeaders string
	signature     [sha256.Size]byte
	amzDate       string // YYYYMMDDTHHMMSSZ as used in the string to sign
	dateSource    string // "X-Amz-Date" or "Date"
	signedAt      time.Time
	expires       int64 // presign only; -1 when X-Amz-Expires is absent
	token         string
}

// Verify checks that r (as received by a net/http server, or built with
// httptest.NewRequest) carries a valid SigV4 signature, in an Authorization
// header or in presigned query parameters. It reads the body (up to
// MaxBodyBytes) to hash it; on return the body is still readable from the
// start, r.Body having been replaced if it was read. Every failure is an
// *Error.
//
// The canonical URI is built from r.RequestURI, the request-target exactly
// as received; r.URL.Path is never used, since it is decoded.
func (v *Verifier) Verify(r *http.Request) (*Identity, error) {
	id := new(Identity)
	if err := v.verify(r, id); err != nil {
		return nil, err
	}
	return id, nil
}

// Check is Verify writing who signed r into *id (left alone on failure),
// so that a caller can keep the Identity on its stack.
func (v *Verifier) Check(r *http.Request, id *Identity) error {
	if err := v.verify(r, id); err != nil {
		return err
	}
	return nil
}

// requestTarget is r's request-target as received (r.RequestURI), or
// rebuilt from r.URL for a request made on the client side.
func requestTarget(r *http.Request) string {
	if r.RequestURI == "" && r.URL != nil {
		return r.URL.RequestURI()
	}
	return r.RequestURI
}

// RequestPath returns the path of r's request-target exactly as received,
// still percent-encoded: the path Verify builds the canonical URI from.
// A server that routes on it, rather than on r.URL.Path (decoded) or
// r.URL.EscapedPath (re-encoded when Go thinks it should be), dispatches on
// the bytes the signature covers; with PathIsNormal it also excludes the
// paths that signers normalize before signing.
func RequestPath(r *http.Request) string {
	p, _ := splitPathQuery(requestTarget(r))
	return p
}

// PathIsNormal reports whether SigV4's path normalization (RFC 3986
// dot-segment removal and empty-segment collapsing, as botocore applies
// before signing) leaves the escaped path p unchanged: no "." or ".."
// segment and no empty segment but a trailing one. For such a path every
// signer signs p itself and Verify tries no other spelling, so a request
// verified for p was signed for p. Percent-encoded dots ("%2E") are not dot
// segments to SigV4; a server that decodes segments must refuse those
// itself.
func PathIsNormal(p string) bool { return !pathNeedsNormalizing(p) }

func (v *Verifier) verify(r *http.Request, id *Identity) *Error {
	rawPath, rawQuery := splitPathQuery(requestTarget(r))

	var in authInput
	var e *Error
	if authz := r.Header["Authorization"]; len(authz) > 0 && authz[0] != "" {
		in, e = parseAuthorization(authz[0], len(r.Header["X-Amz-Date"]) > 0 || len(r.Header["Date"]) > 0)
		if e == nil {
			e = headerDate(r, &in)
		}
	} else if p := scanPresignParams(rawQuery); p.present() {
		in, e = parsePresigned(&p)
	} else {
		return newError(ReasonMissingAuth, "")
	}
	if e != nil {
		return e
	}
	if e := v.checkScope(&in); e != nil {
		return e
	}
	if e := v.checkTime(&in); e != nil {
		return e
	}
	creds, ok := Credentials{}, false
	if v.Store != nil {
		creds, ok = v.Store.Lookup(in.accessKey)
	}
	if !ok {
		return newError(ReasonUnknownKey, "")
	}
	if !in.presigned {
		if t := r.Header["X-Amz-Security-Token"]; len(t) > 0 {
			in.token = t[0]
		}
	}
	if !constantTimeEqual(in.token, creds.SessionToken) {
		return newError(ReasonBadToken, "")
	}
	st := scratchPool.Get().(*scratch)
	defer putScratch(st)
	payload, e := v.payloadHash(r, &in, st)
	if e != nil {
		return e
	}
	key := signingKey(creds.SecretAccessKey, in.scopeDate, in.region, in.service)
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	// The first candidate is the standard one. The others are accepted
	// variants that only differ in what a real client signed: the wire path
	// un-normalized (aws-sdk-go-v2 does not normalize) and, for presigned
	// URLs, the session token appended after signing (aws-c-auth's
	// omit_session_token). Neither lets a request change meaning.
	normalize := !v.S3
	altPath := normalize && pathNeedsNormalizing(rawPath)
	altToken := in.presigned && in.token != ""
	// S3 presigners sign UNSIGNED-PAYLOAD without saying so in the URL.
	altPayload := v.S3 && in.presigned && len(r.Header["X-Amz-Content-Sha256"]) == 0
	ok = false
	for _, c := range [...]struct{ normalize, skipToken, unsigned, use bool }{
		{normalize, false, false, true},
		{false, false, false, altPath},
		{normalize, true, false, altToken},
		{false, true, false, altPath && altToken},
		{normalize, false, true, altPayload},
		{normalize, true, true, altPayload && altToken},
	} {
		if !c.use {
			continue
		}
		p := payload
		if c.unsigned {
			p = []byte(UnsignedPayload)
		}
		st.buf = v.appendCanonical(st.buf[:0], st, r, method, rawPath, rawQuery, c.normalize, c.skipToken, &in, p)
		sum := st.x.sha256(st.buf)
		n := len(st.buf)
		st.buf = appendStringToSign(st.buf, in.amzDate, in.region, in.service, &sum)
		mac := st.x.hmac(&key, st.buf[n:])
		if hmac.Equal(mac[:], in.signature[:]) {
			ok = true
			break
		}
		if c.normalize == normalize && !c.skipToken && !c.unsigned && v.Debug {
			st.debug, st.debugN = append(st.debug[:0], st.buf...), n
		}
	}
	if !ok {
		msg := mismatchMessage
		if v.Debug {
			msg += "\n\nThe Canonical String for this request should have been\n'" + string(st.debug[:st.debugN]) +
				"'\n\nThe String-to-Sign should have been\n'" + string(st.debug[st.debugN:]) + "'\n"
		}
		return newError(ReasonMismatch, msg)
	}
	*id = Identity{
		AccessKeyID:  in.accessKey,
		SessionToken: in.token,
		Region:       in.region,
		Service:      in.service,
		SignedAt:     in.signedAt,
		Presigned:    in.presigned,
	}
	return nil
}

// appendCanonical appends the canonical request for r and a candidate
// canonicalization, followed by '\n' (so the string to sign can follow).
func (v *Verifier) appendCanonical(b []byte, st *scratch, r *http.Request, method, rawPath, rawQuery string,
	normalize, skipToken bool, in *authInput, payload []byte) []byte {
	b = append(b, method...)
	b = append(b, '\n')
	b = appendCanonicalURI(b, rawPath, v.S3, normalize)
	b = append(b, '\n')
	b = st.q.appendCanonicalQuery(b, rawQuery, in.presigned, skipToken)
	b = append(b, '\n')
	for names := in.signedHeaders; names != ""; {
		var name string
		name, names, _ = strings.Cut(names, ";")
		b = append(b, name...)
		b = append(b, ':')
		b = appendReceivedHeader(b, r, name)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, in.signedHeaders...)
	b = append(b, '\n')
	b = append(b, payload...)
	return b
}

// appendReceivedHeader appends the canonical value of the signed header
// name, taking the headers Go's server moves out of r.Header (Host,
// Transfer-Encoding, sometimes Content-Length and Expect) from where it
// keeps them.
func appendReceivedHeader(b []byte, r *http.Request, name string) []byte {
	switch {
	case strings.EqualFold(name, "host"):
		host := r.Host
		if host == "" && r.URL != nil {
			host = r.URL.Host
		}
		return appendHeaderValue(b, host)
	case strings.EqualFold(name, "content-length"):
		if vals, ok := r.Header["Content-Length"]; ok {
			return appendHeaderValues(b, vals)
		}
		if r.ContentLength >= 0 {
			return strconv.AppendInt(b, r.ContentLength, 10)
		}
		return b
	case strings.EqualFold(name, "transfer-encoding"):
		if vals, ok := r.Header["Transfer-Encoding"]; ok {
			return appendHeaderValues(b, vals)
		}
		return appendHeaderValues(b, r.TransferEncoding)
	case strings.EqualFold(name, "expect"):
		if vals, ok := r.Header["Expect"]; ok {
			return appendHeaderValues(b, vals)
		}
		return append(b, "100-continue"...)
	}
	return appendHeaderValues(b, headerValues(r.Header, name))
}

// headerValues finds a header by its lower-case name without allocating
// for the headers SDKs sign.
func headerValues(h http.Header, name string) []string {
	key := ""
	switch name {
	case "x-amz-date":
		key = "X-Amz-Date"
	case "x-amz-security-token":
		key = "X-Amz-Security-Token"
	case "x-amz-content-sha256":
		key = "X-Amz-Content-Sha256"
	case "content-type":
		key = "Content-Type"
	case "amz-sdk-invocation-id":
		key = "Amz-Sdk-Invocation-Id"
	case "amz-sdk-request":
		key = "Amz-Sdk-Request"
	case "x-amz-user-agent":
		key = "X-Amz-User-Agent"
	case "date":
		key = "Date"
	default:
		key = textproto.CanonicalMIMEHeaderKey(name)
	}
	if vals, ok := h[key]; ok {
		return vals
	}
	// Keys Go could not canonicalize (or set directly on the map) keep
	// their spelling.
	for k, vals := range h {
		if strings.EqualFold(k, name) {
			return vals
		}
	}
	return nil
}

// headerDate fills in the signing time of a header-auth request from
// X-Amz-Date, else from Date (botocore uses Date when the caller set one).
func headerDate(r *http.Request, in *authInput) *Error {
	if d := r.Header["X-Amz-Date"]; len(d) > 0 {
		t, ok := parseAmzDate(d[0])
		if !ok {
			return badDate(d[0])
		}
		in.amzDate, in.signedAt, in.dateSource = d[0], t, "X-Amz-Date"
		return nil
	}
	if d := r.Header["Date"]; len(d) > 0 {
		t, err := http.ParseTime(d[0])
		if err != nil {
			return badDate(d[0])
		}
		t = t.UTC()
		in.amzDate, in.signedAt, in.dateSource = t.Format(TimeFormat), t, "Date"
		return nil
	}
	return newError(ReasonIncompleteSignature, msgNeedDate+"Authorization="+in.raw)
}

func badDate(got string) *Error {
	return newError(ReasonIncompleteSignature, "Date must be in ISO-8601 'basic format'. Got '"+got+"'. See http://en.wikipedia.org/wiki/ISO_8601")
}

// checkScope checks the credential scope against the request date and the
// verifier's region and service, with AWS's messages.
func (v *Verifier) checkScope(in *authInput) *Error {
	switch {
	case in.scopeDate != in.amzDate[:8]:
		return newError(ReasonWrongScope, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+
			in.scopeDate+"' != '"+in.amzDate[:8]+"', from '"+in.dateSource+"'.")
	case v.Region != "" && in.region != v.Region:
		return newError(ReasonWrongScope, "Credential should be scoped to a valid region, not '"+in.region+"'. ")
	case v.Service != "" && in.service != v.Service:
		return newError(ReasonWrongScope, "Credential should be scoped to correct service: '"+v.Service+"'. ")
	case in.terminator != scopeTerminator:
		return newError(ReasonWrongScope, "Credential should be scoped with a valid terminator: 'aws4_request', not '"+in.terminator+"'. ")
	}
	return nil
}

// checkTime applies the clock-skew window (both directions) and, for a
// presigned URL, its X-Amz-Expires validity.
func (v *Verifier) checkTime(in *authInput) *Error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now().UTC()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if in.signedAt.After(t.Add(skew)) {
		return newError(ReasonNotYetCurrent, "Signature not yet current: "+in.amzDate+" is still later than "+
			t.Add(skew).Format(TimeFormat)+" ("+t.Format(TimeFormat)+" + "+windowText(skew)+")")
	}
	window := skew
	if in.presigned && in.expires >= 0 {
		window = time.Duration(in.expires) * time.Second
	}
	if in.signedAt.Before(t.Add(-window)) {
		return newError(ReasonExpired, "Signature expired: "+in.amzDate+" is now earlier than "+
			t.Add(-window).Format(TimeFormat)+" ("+t.Format(TimeFormat)+" - "+windowText(window)+")")
	}
	return nil
}

// windowText writes a window as AWS does ("5 min."), in seconds when it is
// not a whole number of minutes.
func windowText(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min."
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + " sec."
}

// payloadHash returns the payload line of the canonical request: the
// X-Amz-Content-Sha256 value when the client sent one (checked against the
// body), else the hash of the body, read up to MaxBodyBytes.
func (v *Verifier) payloadHash(r *http.Request, in *authInput, st *scratch) ([]byte, *Error) {
	if h := r.Header["X-Amz-Content-Sha256"]; len(h) > 0 {
		claimed := h[0]
		switch {
		case claimed == UnsignedPayload:
			if !v.S3 && !v.AllowUnsignedPayload {
				return nil, newError(ReasonContentHashMismatch, "UNSIGNED-PAYLOAD is not accepted for this service; sign the body.")
			}
			return []byte(UnsignedPayload), nil
		case len(claimed) == 2*sha256.Size && isHex(claimed):
			got, e := v.bodyHash(r, st)
			if e != nil {
				return nil, e
			}
			if !bytes.EqualFold(got, []byte(claimed)) {
				return nil, newError(ReasonContentHashMismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
			}
			return []byte(claimed), nil
		default:
			return nil, newError(ReasonContentHashMismatch, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex SHA-256 of the body.")
		}
	}
	return v.bodyHash(r, st)
}

// bodyHash reads the body (at most MaxBodyBytes), puts a fresh reader over
// the bytes back into r.Body and returns the hex SHA-256.
func (v *Verifier) bodyHash(r *http.Request, st *scratch) ([]byte, *Error) {
	if r.Body == nil || r.Body == http.NoBody {
		return []byte(EmptyPayloadHash), nil
	}
	limit := v.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if r.ContentLength > limit {
		return nil, newError(ReasonBodyTooLarge, "")
	}
	size := int64(512)
	if r.ContentLength >= 0 {
		// +1: room to see EOF without growing. A declared length is only
		// trusted up to 1 MiB; past that the buffer grows as bytes arrive.
		size = min(r.ContentLength+1, 1<<20)
	}
	// A small body is read into the replay reader's own array: one
	// allocation for both.
	rb := replayBodies.Get().(*replayBody)
	data := rb.small[:0]
	if size > int64(len(rb.small)) {
		data = make([]byte, 0, size)
	}
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := r.Body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if int64(len(data)) > limit {
			return nil, newError(ReasonBodyTooLarge, "")
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, newError(ReasonBodyUnreadable, "")
		}
	}
	r.Body.Close()
	rb.data = data
	rb.Reset(data)
	r.Body = rb
	sum := sha256.Sum256(data)
	hex.Encode(st.payload[:], sum[:])
	return st.payload[:], nil
}

// replayBody serves a body Verify already read.
type replayBody struct {
	bytes.Reader
	data  []byte
	small [smallBody]byte
}

// smallBody is the largest body (less one byte, to see EOF) read without
// an allocation of its own: most PostToConnection payloads.
const smallBody = 256

func (*replayBody) Close() error { return nil }

// Body returns the body Verify (or Check) read, hashed and put back into
// r.Body, without copying it: ok is false when r.Body is another reader or
// was read from since. The bytes are not reused by this package unless
// the caller gives them back (ReleaseBody); until then the caller may
// keep them, but must not modify them while r.Body may still be read.
func Body(r *http.Request) (body []byte, ok bool) {
	rb, ok := r.Body.(*replayBody)
	if !ok || rb.Len() != len(rb.data) {
		return nil, false
	}
	return rb.data, true
}

// ReleaseBody gives the body Verify (or Check) read back to this package,
// for a later request's: call it only once nothing refers to its bytes
// (Body's slice) any more. r.Body is then empty. Any other r.Body is left
// alone. A caller that keeps the bytes (or does not know) does not call
// it: the body is then the collector's, as before.
func ReleaseBody(r *http.Request) {
	rb, ok := r.Body.(*replayBody)
	if !ok {
		return
	}
	r.Body = http.NoBody
	rb.data = nil
	rb.Reset(nil)
	replayBodies.Put(rb)
}

// replayBodies holds the replay readers ReleaseBody gave back: a small
// body (most PostToConnection payloads) then costs no allocation.
var replayBodies = sync.Pool{New: func() any { return new(replayBody) }}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

// constantTimeEqual compares two strings in time that depends only on their
// lengths.
func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return d == 0
}
