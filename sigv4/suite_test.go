package sigv4

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fixed inputs of both AWS test suites (testdata/README.md).
const (
	suiteAccessKey = "AKIDEXAMPLE"
	suiteSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteRegion    = "us-east-1"
	suiteService   = "service"
)

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

// chain is one signing pipeline of a case: expected canonical request,
// string to sign, signature, and the signed request.
type chain struct {
	creq, sts, sig string
	signed         []byte
}

// vectorCase is one test-suite case, classic or newer, in a common shape.
type vectorCase struct {
	name      string
	unsigned  []byte
	creds     Credentials
	normalize bool
	signBody  bool
	omitToken bool
	header    chain
	query     *chain // newer suite only
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// classicCases loads testdata/aws-sig-v4-test-suite: every folder holding a
// .req file is a case.
func classicCases(t *testing.T) []vectorCase {
	t.Helper()
	root := filepath.Join("testdata", "aws-sig-v4-test-suite")
	var out []vectorCase
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".req") {
			return err
		}
		base := strings.TrimSuffix(path, ".req")
		name, _ := filepath.Rel(root, filepath.Dir(path))
		authz := readFile(t, base+".authz")
		c := vectorCase{
			name:      name,
			unsigned:  []byte(readFile(t, base+".req")),
			creds:     Credentials{AccessKeyID: suiteAccessKey, SecretAccessKey: suiteSecret},
			normalize: true,
			header: chain{
				creq:   readFile(t, base+".creq"),
				sts:    readFile(t, base+".sts"),
				sig:    authz[strings.LastIndex(authz, "Signature=")+len("Signature="):],
				signed: []byte(readFile(t, base+".sreq")),
			},
		}
		// The session token is a credential input: in the signed request
		// when one is sent, else only visible in the canonical request
		// (get-vanilla-with-session-token).
		sreq := mustParseRaw(t, c.header.signed)
		if tok := sreq.header("X-Amz-Security-Token"); tok != "" {
			c.creds.SessionToken = tok
			c.omitToken = !strings.Contains(authz, "x-amz-security-token")
		} else if _, tok, ok := strings.Cut(c.header.creq, "\nx-amz-security-token:"); ok {
			c.creds.SessionToken, _, _ = strings.Cut(tok, "\n")
		}
		// Known quirk: this .sreq carries get-vanilla's signature; the
		// case's own .authz is the right one.
		c.header.signed = replaceHeader(t, c.header.signed, "Authorization", authz)
		if c.creds.SessionToken != "" && sreq.header("X-Amz-Security-Token") == "" {
			c.header.signed = addHeader(t, c.header.signed, "X-Amz-Security-Token", c.creds.SessionToken)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newerCases loads testdata/aws-signing-test-suite-v4.
func newerCases(t *testing.T) []vectorCase {
	t.Helper()
	root := filepath.Join("testdata", "aws-signing-test-suite-v4")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []vectorCase
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(root, d.Name())
		var ctx struct {
			Credentials struct {
				AccessKeyID     string `json:"access_key_id"`
				SecretAccessKey string `json:"secret_access_key"`
				Token           string `json:"token"`
			} `json:"credentials"`
			Expiration int    `json:"expiration_in_seconds"`
			Normalize  bool   `json:"normalize"`
			Region     string `json:"region"`
			Service    string `json:"service"`
			SignBody   bool   `json:"sign_body"`
			Timestamp  string `json:"timestamp"`
			OmitToken  bool   `json:"omit_session_token"`
		}
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "context.json"))), &ctx); err != nil {
			t.Fatalf("%s: %v", d.Name(), err)
		}
		if ctx.Region != suiteRegion || ctx.Service != suiteService || ctx.Timestamp != "2015-08-30T12:36:00Z" || ctx.Expiration != 3600 {
			t.Fatalf("%s: unexpected context %+v", d.Name(), ctx)
		}
		f := func(n string) string { return readFile(t, filepath.Join(dir, n)) }
		out = append(out, vectorCase{
			name:     d.Name(),
			unsigned: []byte(f("request.txt")),
			creds: Credentials{AccessKeyID: ctx.Credentials.AccessKeyID, SecretAccessKey: ctx.Credentials.SecretAccessKey,
				SessionToken: ctx.Credentials.Token},
			normalize: ctx.Normalize,
			signBody:  ctx.SignBody,
			omitToken: ctx.OmitToken,
			header: chain{creq: f("header-canonical-request.txt"), sts: f("header-string-to-sign.txt"),
				sig: f("header-signature.txt"), signed: []byte(f("header-signed-request.txt"))},
			query: &chain{creq: f("query-canonical-request.txt"), sts: f("query-string-to-sign.txt"),
				sig: f("query-signature.txt"), signed: []byte(f("query-signed-request.txt"))},
		})
	}
	return out
}

// rawRequest is a request file split into parts, tolerant of what
// net/http rejects (a space in the request-target).
type rawRequest struct {
	method, target, proto string
	headers               [][2]string
	body                  []byte
}

func (r rawRequest) header(name string) string {
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

func parseRaw(b []byte) (rawRequest, error) {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	head, body, _ := strings.Cut(s, "\n\n")
	lines := strings.Split(head, "\n")
	first := lines[0]
	i, j := strings.IndexByte(first, ' '), strings.LastIndexByte(first, ' ')
	if i < 0 || j <= i {
		return rawRequest{}, errors.New("bad request line " + strconv.Quote(first))
	}
	r := rawRequest{method: first[:i], target: first[i+1 : j], proto: first[j+1:], body: []byte(body)}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' { // obsolete line folding
			if len(r.headers) == 0 {
				return r, errors.New("continuation before any header")
			}
			r.headers[len(r.headers)-1][1] += " " + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return r, errors.New("bad header line " + strconv.Quote(l))
		}
		r.headers = append(r.headers, [2]string{k, strings.TrimSpace(v)})
	}
	return r, nil
}

func mustParseRaw(t *testing.T, b []byte) rawRequest {
	t.Helper()
	r, err := parseRaw(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r rawRequest) bytes() []byte {
	var b bytes.Buffer
	b.WriteString(r.method + " " + r.target + " " + r.proto + "\r\n")
	for _, h := range r.headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	return b.Bytes()
}

func replaceHeader(t *testing.T, raw []byte, name, value string) []byte {
	r := mustParseRaw(t, raw)
	for i := range r.headers {
		if strings.EqualFold(r.headers[i][0], name) {
			r.headers[i][1] = value
		}
	}
	return r.bytes()
}

func addHeader(t *testing.T, raw []byte, name, value string) []byte {
	r := mustParseRaw(t, raw)
	r.headers = append(r.headers, [2]string{name, value})
	return r.bytes()
}

// serverRequest turns a raw request into what a net/http handler receives:
// parsed by http.ReadRequest when it can be, else (a space in the target)
// built by hand the same way.
func serverRequest(t *testing.T, raw []byte) *http.Request {
	t.Helper()
	rr := mustParseRaw(t, raw)
	if len(rr.body) > 0 && rr.header("Content-Length") == "" {
		rr.headers = append(rr.headers, [2]string{"Content-Length", strconv.Itoa(len(rr.body))})
	}
	if req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(rr.bytes()))); err == nil {
		return req
	}
	path, query, _ := strings.Cut(rr.target, "?")
	req := &http.Request{
		Method: rr.method, RequestURI: rr.target, Proto: rr.proto, ProtoMajor: 1, ProtoMinor: 1,
		URL:    &url.URL{Path: path, RawQuery: query},
		Header: make(http.Header), Body: http.NoBody,
	}
	for _, h := range rr.headers {
		if strings.EqualFold(h[0], "Host") {
			req.Host = h[1]
			continue
		}
		req.Header.Add(textproto.CanonicalMIMEHeaderKey(h[0]), h[1])
	}
	if len(rr.body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(rr.body))
		req.ContentLength = int64(len(rr.body))
	}
	return req
}

// clientRequest turns an unsigned raw request into what a client hands to
// the signer. The request-target goes into URL.Opaque, so the wire path is
// the suite's path byte for byte.
func clientRequest(t *testing.T, raw []byte) *http.Request {
	t.Helper()
	rr := mustParseRaw(t, raw)
	path, query, _ := strings.Cut(rr.target, "?")
	req := &http.Request{
		Method: rr.method,
		URL:    &url.URL{Scheme: "https", Opaque: path, RawQuery: query},
		Header: make(http.Header), Body: http.NoBody,
	}
	if strings.HasPrefix(path, "//") {
		// An opaque "//x" would read as an authority; such paths have
		// nothing to escape, so Path carries them unchanged.
		req.URL.Opaque, req.URL.Path = "", path
	}
	for _, h := range rr.headers {
		switch {
		case strings.EqualFold(h[0], "Host"):
			req.Host, req.URL.Host = h[1], h[1]
		case strings.EqualFold(h[0], "Content-Length"):
			n, err := strconv.ParseInt(h[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = n
		default:
			req.Header.Add(h[0], h[1])
		}
	}
	if len(rr.body) > 0 {
		body := rr.body
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req
}

func allCases(t *testing.T) []vectorCase {
	classic, newer := classicCases(t), newerCases(t)
	if len(classic) != 34 || len(newer) != 38 {
		t.Fatalf("found %d classic and %d newer cases, want 34 and 38", len(classic), len(newer))
	}
	for i := range classic {
		classic[i].name = "classic/" + classic[i].name
	}
	for i := range newer {
		newer[i].name = "v4/" + newer[i].name
	}
	return append(classic, newer...)
}

// TestSuiteSign signs every unsigned suite request and compares each stage:
// canonical request, string to sign, signature, and the signed request.
func TestSuiteSign(t *testing.T) {
	for _, c := range allCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var creq, sts string
			s := Signer{S3: !c.normalize, ContentSHA256Header: c.signBody, UnsignedSessionToken: c.omitToken,
				trace: func(cr, st []byte) { creq, sts = string(cr), string(st) }}
			req := clientRequest(t, c.unsigned)
			if err := s.Sign(req, c.creds, suiteService, suiteRegion, suiteTime, ""); err != nil {
				t.Fatal(err)
			}
			checkStage(t, "header canonical request", creq, c.header.creq)
			checkStage(t, "header string to sign", sts, c.header.sts)
			wantAuthz := mustParseRaw(t, c.header.signed).header("Authorization")
			if got := req.Header.Get("Authorization"); got != wantAuthz {
				t.Errorf("Authorization\n got %s\nwant %s", got, wantAuthz)
			}
			if !strings.HasSuffix(wantAuthz, "Signature="+c.header.sig) {
				t.Errorf("signed request and signature file disagree")
			}
			if c.creds.SessionToken != "" && req.Header.Get("X-Amz-Security-Token") != c.creds.SessionToken {
				t.Errorf("session token header not set")
			}
			if c.query == nil {
				return
			}
			creq, sts = "", ""
			u, err := s.Presign(clientRequest(t, c.unsigned), c.creds, suiteService, suiteRegion, suiteTime, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			checkStage(t, "query canonical request", creq, c.query.creq)
			checkStage(t, "query string to sign", sts, c.query.sts)
			_, wantQuery, _ := strings.Cut(mustParseRaw(t, c.query.signed).target, "?")
			if u.RawQuery != wantQuery {
				t.Errorf("presigned query\n got %s\nwant %s", u.RawQuery, wantQuery)
			}
			if !strings.HasSuffix(wantQuery, "X-Amz-Signature="+c.query.sig) {
				t.Errorf("signed request and signature file disagree")
			}
		})
	}
}

func checkStage(t *testing.T, stage, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s\n got %q\nwant %q", stage, got, want)
	}
}

func suiteVerifier(c vectorCase) *Verifier {
	return &Verifier{
		Store:   StaticCredentials{c.creds.AccessKeyID: c.creds},
		Service: suiteService, Region: suiteRegion,
		S3:    !c.normalize,
		Debug: true,
		Now:   func() time.Time { return suiteTime },
	}
}

// TestSuiteVerify verifies every signed suite request at the suite's time,
// checks the verifier rebuilds the expected canonical request and string to
// sign, and checks that a one-byte change to a signed header, the path, the
// query or the body makes verification fail.
func TestSuiteVerify(t *testing.T) {
	for _, c := range allCases(t) {
		chains := map[string]*chain{"header": &c.header}
		if c.query != nil {
			chains["query"] = c.query
		}
		for kind, ch := range chains {
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				v := suiteVerifier(c)
				req := serverRequest(t, ch.signed)
				id, err := v.Verify(req)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if id.AccessKeyID != suiteAccessKey || id.Region != suiteRegion || id.Service != suiteService ||
					!id.SignedAt.Equal(suiteTime) || id.Presigned != (kind == "query") || id.SessionToken != c.creds.SessionToken {
					t.Errorf("identity %+v", id)
				}
				wantBody := mustParseRaw(t, ch.signed).body
				if got, _ := io.ReadAll(req.Body); !bytes.Equal(got, wantBody) {
					t.Errorf("body after verify %q, want %q", got, wantBody)
				}

				// Stage by stage: a wrong signature makes the debug message
				// show the verifier's canonical request and string to sign.
				// (With an unsigned presign token the first candidate
				// includes the token, so it shows a different request.)
				if !(kind == "query" && c.omitToken) {
					creq, sts := debugStages(t, v, ch.signed, kind)
					checkStage(t, "verifier canonical request", creq, ch.creq)
					checkStage(t, "verifier string to sign", sts, ch.sts)
				}
				for _, m := range mutations(t, ch.signed, kind) {
					if _, err := v.Verify(serverRequest(t, m.raw)); err == nil {
						t.Errorf("%s: mutated request verified", m.name)
					} else if e := err.(*Error); e.Reason != ReasonMismatch && !(m.name == "body" && e.Reason == ReasonContentHashMismatch) {
						t.Errorf("%s: %v, want a signature mismatch", m.name, err)
					}
				}
			})
		}
	}
}

// debugStages verifies raw with a zeroed signature and returns the
// canonical request and string to sign from the mismatch message.
func debugStages(t *testing.T, v *Verifier, raw []byte, kind string) (creq, sts string) {
	t.Helper()
	zero := strings.Repeat("0", 64)
	rr := mustParseRaw(t, raw)
	if kind == "header" {
		a := rr.header("Authorization")
		raw = replaceHeader(t, raw, "Authorization", a[:strings.LastIndex(a, "=")+1]+zero)
	} else {
		i := strings.Index(rr.target, "X-Amz-Signature=") + len("X-Amz-Signature=")
		rr.target = rr.target[:i] + zero + rr.target[i+64:]
		raw = rr.bytes()
	}
	_, err := v.Verify(serverRequest(t, raw))
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonMismatch {
		t.Fatalf("zeroed signature: %v", err)
	}
	_, rest, ok := strings.Cut(e.Message, "\n\nThe Canonical String for this request should have been\n'")
	creq, rest, ok2 := strings.Cut(rest, "'\n\nThe String-to-Sign should have been\n'")
	if !ok || !ok2 {
		t.Fatalf("no debug strings in %q", e.Message)
	}
	return creq, strings.TrimSuffix(rest, "'\n")
}

type mutation struct {
	name string
	raw  []byte
}

// mutations returns one-byte changes of raw that a verifier must reject:
// in the host header, another signed header, the path, the query and the
// body.
func mutations(t *testing.T, raw []byte, kind string) []mutation {
	rr := mustParseRaw(t, raw)
	var out []mutation
	add := func(name string, f func(r *rawRequest)) {
		c := mustParseRaw(t, raw)
		f(&c)
		out = append(out, mutation{name, c.bytes()})
	}
	add("host", func(r *rawRequest) {
		for i := range r.headers {
			if strings.EqualFold(r.headers[i][0], "Host") {
				r.headers[i][1] = "f" + r.headers[i][1][1:]
			}
		}
	})
	for i, h := range rr.headers {
		n := strings.ToLower(h[0])
		if n == "host" || n == "authorization" || n == "x-amz-date" || n == "x-amz-security-token" || n == "content-length" ||
			n == "x-amz-content-sha256" || h[1] == "" {
			continue
		}
		add("header "+n, func(r *rawRequest) { r.headers[i][1] = flip(r.headers[i][1], 0) })
		break
	}
	path, query, _ := strings.Cut(rr.target, "?")
	add("path", func(r *rawRequest) {
		p := path + "a"
		if strings.HasSuffix(path, "/") && len(path) > 1 {
			p = path[:len(path)-1] + "a/"
		}
		r.target = strings.Replace(r.target, path, p, 1)
	})
	// A query byte outside the auth parameters: flip the first byte of a
	// non-auth parameter, or add a one-byte parameter.
	add("query", func(r *rawRequest) {
		for _, p := range strings.Split(query, "&") {
			if p != "" && !strings.HasPrefix(p, "X-Amz-") {
				r.target = strings.Replace(r.target, p, flip(p, len(p)-1), 1)
				return
			}
		}
		if query == "" {
			r.target = path + "?a"
		} else {
			r.target += "&a"
		}
	})
	add("body", func(r *rawRequest) {
		if len(r.body) == 0 {
			r.body = []byte("x")
			return
		}
		r.body = []byte(flip(string(r.body), 0))
	})
	return out
}

// flip changes the byte at i to a different letter.
func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'Z' {
		b[i] = 'Y'
	} else {
		b[i] = 'Z'
	}
	return string(b)
}
