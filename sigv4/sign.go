package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signer signs requests as AWS SDKs do. The zero value signs the way every
// service but S3 expects; Sign and Presign use it with S3 set for "s3".
// A Signer holds no state and is safe for concurrent use.
type Signer struct {
	// S3 selects S3's canonical URI rule: the path is encoded once and not
	// normalized. Default false (normalize, then encode the wire path again).
	S3 bool
	// ContentSHA256Header adds a signed X-Amz-Content-Sha256 header carrying
	// the payload hash (S3 requires it). It is always added for
	// UNSIGNED-PAYLOAD, since a server cannot know that mode otherwise.
	// Default false: the hash is only inside the canonical request, as the
	// SDKs do for execute-api.
	ContentSHA256Header bool
	// UnsignedSessionToken attaches X-Amz-Security-Token after signing, so
	// the token travels with the request but is not covered by the
	// signature (aws-c-auth's omit_session_token). Default false: the token
	// is signed, as every AWS SDK does.
	UnsignedSessionToken bool

	// trace, when set, receives each canonical request and string to sign
	// (tests compare them with the test suites stage by stage).
	trace func(creq, sts []byte)
}

// headersNeverSigned are left out of SignedHeaders: the Authorization header
// itself, headers proxies or the HTTP stack change in flight (botocore's
// SIGNED_HEADERS_BLACKLIST and aws-sdk-go-v2's IgnoredHeaders together).
var headersNeverSigned = map[string]bool{
	"authorization": true, "user-agent": true, "x-amzn-trace-id": true, "expect": true,
	"transfer-encoding": true, "connection": true, "keep-alive": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "upgrade": true,
}

// Sign signs r with header auth (an Authorization header), as
// Signer{S3: service == "s3"}.Sign does.
func Sign(r *http.Request, creds Credentials, service, region string, t time.Time, payloadHash string) error {
	return Signer{S3: service == "s3"}.Sign(r, creds, service, region, t, payloadHash)
}

// Presign returns r's URL with query auth (X-Amz-* parameters), as
// Signer{S3: service == "s3"}.Presign does.
func Presign(r *http.Request, creds Credentials, service, region string, t time.Time, expires time.Duration) (*url.URL, error) {
	return Signer{S3: service == "s3"}.Presign(r, creds, service, region, t, expires)
}

// Sign signs r for service and region at time t with header auth. It sets
// X-Amz-Date, X-Amz-Security-Token (when creds has a token) and
// Authorization, and signs host, every header already on r except the
// hop-by-hop and tracing ones, and content-length when the length is known
// and positive. payloadHash is the hex SHA-256 of the body, UNSIGNED-PAYLOAD,
// or "" to have Sign hash the body; r.Body then stays readable (and
// r.GetBody is set).
func (s Signer) Sign(r *http.Request, creds Credentials, service, region string, t time.Time, payloadHash string) error {
	if err := checkSignInput(r, creds, service, region); err != nil {
		return err
	}
	if payloadHash == "" {
		h, err := hashBody(r)
		if err != nil {
			return err
		}
		payloadHash = h
	}
	t = t.UTC()
	amzDate := t.Format(TimeFormat)
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Del("Authorization")
	r.Header.Set("X-Amz-Date", amzDate)
	r.Host = signingHost(r)
	if creds.SessionToken != "" && !s.UnsignedSessionToken {
		r.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	}
	if s.ContentSHA256Header || payloadHash == UnsignedPayload {
		r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	c := s.canonical(r, r.URL.RawQuery, payloadHash)
	sig := c.sign(creds.SecretAccessKey, amzDate, region, service, s.trace)
	r.Header.Set("Authorization", Algorithm+" Credential="+creds.AccessKeyID+"/"+t.Format("20060102")+"/"+region+"/"+service+"/"+scopeTerminator+
		", SignedHeaders="+c.signedHeaders+", Signature="+sig)
	if creds.SessionToken != "" && s.UnsignedSessionToken {
		r.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	}
	return nil
}

// Presign returns a copy of r.URL carrying query auth valid from t for
// expires (1 s to 7 days): X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
// X-Amz-SignedHeaders, X-Amz-Expires, X-Amz-Security-Token (when creds has a
// token) and X-Amz-Signature, appended after r's own query parameters. It
// signs host plus every header on r that Sign would sign, so a request
// meant for a browser or WebSocket client should carry no headers. The
// payload hash is that of r's body (the empty hash for a GET), or
// UNSIGNED-PAYLOAD for service "s3" (as S3 presigners do). r itself is not modified.
func (s Signer) Presign(r *http.Request, creds Credentials, service, region string, t time.Time, expires time.Duration) (*url.URL, error) {
	if err := checkSignInput(r, creds, service, region); err != nil {
		return nil, err
	}
	secs := int64(expires / time.Second)
	if secs < 1 || secs > maxPresignSecs {
		return nil, fmt.Errorf("sigv4: presign expiry %v is not between 1s and 7 days", expires)
	}
	payloadHash := UnsignedPayload
	if service != "s3" {
		h, err := hashBody(r)
		if err != nil {
			return nil, err
		}
		payloadHash = h
	}
	t = t.UTC()
	amzDate := t.Format(TimeFormat)
	u := *r.URL
	if u.User != nil {
		u.User = nil
	}

	// Keep the caller's own parameters, minus any stale auth parameters.
	var q []byte
	for piece := range strings.SplitSeq(u.RawQuery, "&") {
		if piece == "" {
			continue
		}
		k, _, _ := strings.Cut(piece, "=")
		switch unescape(k, true) {
		case paramAlgorithm, paramCredential, paramDate, paramExpires, paramSignedHeaders, paramSecurityToken, paramSignature:
			continue
		}
		q = appendParam(q, piece, "")
	}
	headers := s.headerList(r)
	signed := joinNames(headers)
	q = appendParam(q, paramAlgorithm, Algorithm)
	q = appendParam(q, paramCredential, creds.AccessKeyID+"/"+t.Format("20060102")+"/"+region+"/"+service+"/"+scopeTerminator)
	q = appendParam(q, paramDate, amzDate)
	q = appendParam(q, paramSignedHeaders, signed)
	q = appendParam(q, paramExpires, strconv.FormatInt(secs, 10))
	if creds.SessionToken != "" && !s.UnsignedSessionToken {
		q = appendParam(q, paramSecurityToken, creds.SessionToken)
	}
	c := s.canonicalWith(r, headers, string(q), payloadHash)
	sig := c.sign(creds.SecretAccessKey, amzDate, region, service, s.trace)
	if creds.SessionToken != "" && s.UnsignedSessionToken {
		q = appendParam(q, paramSecurityToken, creds.SessionToken)
	}
	q = appendParam(q, paramSignature, sig)
	u.RawQuery = string(q)
	u.ForceQuery = false
	return &u, nil
}

// appendParam appends "&name=value" (no '&' first); value is escaped with
// the strict SigV4 rule. A raw piece is passed as name with an empty value.
func appendParam(q []byte, name, value string) []byte {
	if len(q) > 0 {
		q = append(q, '&')
	}
	if value == "" {
		return append(q, name...)
	}
	q = append(q, name...)
	q = append(q, '=')
	return appendEscaped(q, value, false)
}

func checkSignInput(r *http.Request, creds Credentials, service, region string) error {
	switch {
	case r == nil || r.URL == nil:
		return errors.New("sigv4: request has no URL")
	case creds.AccessKeyID == "" || creds.SecretAccessKey == "":
		return errors.New("sigv4: credentials need an access key id and a secret")
	case service == "" || region == "":
		return errors.New("sigv4: service and region are required")
	}
	return nil
}

// hashBody returns the hex SHA-256 of r's body and leaves it readable: it
// uses r.GetBody when set, else reads r.Body and replaces it (setting
// GetBody too).
func hashBody(r *http.Request) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return EmptyPayloadHash, nil
	}
	h := sha256.New()
	if r.GetBody != nil {
		b, err := r.GetBody()
		if err != nil {
			return "", fmt.Errorf("sigv4: getting body: %w", err)
		}
		_, err = io.Copy(h, b)
		b.Close()
		if err != nil {
			return "", fmt.Errorf("sigv4: reading body: %w", err)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	data, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return "", fmt.Errorf("sigv4: reading body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// signedHeader is one header the signer signs: lower-case name and values.
type signedHeader struct {
	name string
	vals []string
}

// headerList returns the headers s signs for r, sorted by name.
func (s Signer) headerList(r *http.Request) []signedHeader {
	byName := make(map[string]int, len(r.Header)+2)
	var out []signedHeader
	add := func(name string, vals ...string) {
		if i, ok := byName[name]; ok {
			out[i].vals = append(out[i].vals, vals...)
			return
		}
		byName[name] = len(out)
		out = append(out, signedHeader{name, slices.Clone(vals)})
	}
	add("host", signingHost(r))
	// Map order is random; sort keys so differently-cased duplicates join
	// in a stable order.
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		name := strings.ToLower(k)
		if headersNeverSigned[name] || name == "host" {
			continue
		}
		add(name, r.Header[k]...)
	}
	if _, ok := byName["content-length"]; !ok && r.ContentLength > 0 {
		add("content-length", strconv.FormatInt(r.ContentLength, 10))
	}
	slices.SortFunc(out, func(a, b signedHeader) int { return strings.Compare(a.name, b.name) })
	return out
}

// signingHost is the Host the request will carry: r.Host, else the URL's
// host, without the scheme's default port (as the SDKs sign it; Sign sets
// r.Host to it so the wire and the signature agree).
func signingHost(r *http.Request) string {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	switch r.URL.Scheme {
	case "http", "ws":
		host = strings.TrimSuffix(host, ":80")
	case "https", "wss":
		host = strings.TrimSuffix(host, ":443")
	}
	return host
}

func joinNames(hs []signedHeader) string {
	var b strings.Builder
	for i, h := range hs {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(h.name)
	}
	return b.String()
}

// canonicalRequest is a built canonical request with the SignedHeaders line
// it used.
type canonicalRequest struct {
	text          []byte
	signedHeaders string
}

// canonical builds r's canonical request for header auth.
func (s Signer) canonical(r *http.Request, rawQuery, payloadHash string) canonicalRequest {
	return s.canonicalWith(r, s.headerList(r), rawQuery, payloadHash)
}

func (s Signer) canonicalWith(r *http.Request, headers []signedHeader, rawQuery, payloadHash string) canonicalRequest {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	b := make([]byte, 0, 512)
	b = append(b, method...)
	b = append(b, '\n')
	b = appendCanonicalURI(b, urlWirePath(r.URL), s.S3, !s.S3)
	b = append(b, '\n')
	var qb queryBuilder
	b = qb.appendCanonicalQuery(b, rawQuery, false, false)
	b = append(b, '\n')
	for _, h := range headers {
		b = append(b, h.name...)
		b = append(b, ':')
		b = appendHeaderValues(b, h.vals)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	signed := joinNames(headers)
	b = append(b, signed...)
	b = append(b, '\n')
	b = append(b, payloadHash...)
	return canonicalRequest{text: b, signedHeaders: signed}
}

// urlWirePath is the path a client puts in the request-target for u: the
// opaque part when set (minus any "//authority"), else EscapedPath.
func urlWirePath(u *url.URL) string {
	if u.Opaque != "" {
		p := u.Opaque
		if strings.HasPrefix(p, "//") {
			if i := strings.IndexByte(p[2:], '/'); i >= 0 {
				return p[2+i:]
			}
			return "/"
		}
		return p
	}
	return u.EscapedPath()
}

// sign returns the lower-case hex signature of c.
func (c canonicalRequest) sign(secret, amzDate, region, service string, trace func(creq, sts []byte)) string {
	x := newHasher()
	sum := x.sha256(c.text)
	sts := appendStringToSign(nil, amzDate, region, service, &sum)
	if trace != nil {
		trace(c.text, sts)
	}
	key := signingKey(secret, amzDate[:8], region, service)
	sig := x.hmacOnce(&key, sts)
	return hex.EncodeToString(sig[:])
}

// appendStringToSign appends the string to sign for a canonical request
// whose SHA-256 is creqSum.
func appendStringToSign(dst []byte, amzDate, region, service string, creqSum *[sha256.Size]byte) []byte {
	dst = append(dst, Algorithm...)
	dst = append(dst, '\n')
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, amzDate[:8]...)
	dst = append(dst, '/')
	dst = append(dst, region...)
	dst = append(dst, '/')
	dst = append(dst, service...)
	dst = append(dst, '/')
	dst = append(dst, scopeTerminator...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, creqSum[:])
}
