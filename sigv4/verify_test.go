package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var unitNow = time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)

func unitVerifier() *Verifier {
	return &Verifier{Store: interopStore, Service: "execute-api", Region: interopRegion, Now: func() time.Time { return unitNow }}
}

// signedPost returns a server-side POST to the management path signed with
// c at time t, after edit (if any) has changed the client request.
func signedPost(t *testing.T, c Credentials, at time.Time, body string, edit func(*http.Request)) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://gw.example:8080/dev/@connections/abc%3D", strings.NewReader(body))
	req.RequestURI = ""
	if edit != nil {
		edit(req)
	}
	if err := Sign(req, c, "execute-api", interopRegion, at, ""); err != nil {
		t.Fatal(err)
	}
	return overTheWire(t, req)
}

func TestVerifyFailures(t *testing.T) {
	key, sts := interopStore[interopKey], interopStore[interopKeySTS]
	tests := []struct {
		name     string
		req      func(t *testing.T) *http.Request
		v        func(v *Verifier)
		reason   Reason
		status   int
		errType  string
		message  string // exact, or prefix when it ends in "..."
		verifies bool
	}{
		{name: "valid", req: func(t *testing.T) *http.Request { return signedPost(t, key, unitNow, "hi", nil) }, verifies: true},
		{name: "valid session token", req: func(t *testing.T) *http.Request { return signedPost(t, sts, unitNow, "hi", nil) }, verifies: true},
		{name: "skew at the edge", req: func(t *testing.T) *http.Request { return signedPost(t, key, unitNow.Add(-5*time.Minute), "", nil) }, verifies: true},
		{
			name: "no auth",
			req: func(t *testing.T) *http.Request {
				return httptest.NewRequest("POST", "/dev/@connections/abc%3D", nil)
			},
			reason: ReasonMissingAuth, status: 403, errType: "MissingAuthenticationTokenException", message: "Missing Authentication Token",
		},
		{
			name: "bearer token",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest("POST", "/dev/@connections/abc%3D", nil)
				r.Header.Set("Authorization", "Bearer abc")
				return r
			},
			reason: ReasonIncompleteSignature, status: 403, errType: "IncompleteSignatureException",
			message: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a " +
				"'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc",
		},
		{
			name: "missing equal sign",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				r.Header.Set("Authorization", r.Header.Get("Authorization")+", junk")
				return r
			},
			reason: ReasonIncompleteSignature, message: "'junk' not a valid key=value pair (missing equal-sign) in Authorization header: '...",
		},
		{
			name: "short credential",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				a := r.Header.Get("Authorization")
				r.Header.Set("Authorization", strings.Replace(a, "/aws4_request", "", 1))
				return r
			},
			reason: ReasonIncompleteSignature, message: "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '...",
		},
		{
			name: "host not signed",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "", 1))
				return r
			},
			reason: ReasonIncompleteSignature, message: msgHostUnsigned,
		},
		{
			name: "bad date format",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				r.Header.Set("X-Amz-Date", "2026-11-24T21:00:00Z")
				return r
			},
			reason: ReasonIncompleteSignature, message: "Date must be in ISO-8601 'basic format'. Got '2026-11-24T21:00:00Z'...",
		},
		{
			name: "unknown key",
			req: func(t *testing.T) *http.Request {
				return signedPost(t, Credentials{AccessKeyID: "AKIDNOBODY", SecretAccessKey: "x"}, unitNow, "", nil)
			},
			reason: ReasonUnknownKey, status: 403, errType: "UnrecognizedClientException", message: "The security token included in the request is invalid.",
		},
		{
			name: "token missing for temporary key",
			req: func(t *testing.T) *http.Request {
				return signedPost(t, Credentials{AccessKeyID: interopKeySTS, SecretAccessKey: interopSecret}, unitNow, "", nil)
			},
			reason: ReasonBadToken, errType: "UnrecognizedClientException",
		},
		{
			name: "wrong token",
			req: func(t *testing.T) *http.Request {
				c := sts
				c.SessionToken = "other"
				return signedPost(t, c, unitNow, "", nil)
			},
			reason: ReasonBadToken,
		},
		{
			name: "token for long-term key",
			req: func(t *testing.T) *http.Request {
				c := key
				c.SessionToken = "tok"
				return signedPost(t, c, unitNow, "", nil)
			},
			reason: ReasonBadToken,
		},
		{
			name: "unsigned token must still be right",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, sts, unitNow, "", nil)
				r.Header.Set("X-Amz-Security-Token", "other")
				return r
			},
			reason: ReasonBadToken,
		},
		{
			name: "wrong secret",
			req: func(t *testing.T) *http.Request {
				return signedPost(t, Credentials{AccessKeyID: interopKey, SecretAccessKey: "nope"}, unitNow, "", nil)
			},
			reason: ReasonMismatch, status: 403, errType: "InvalidSignatureException", message: mismatchMessage,
		},
		{
			name: "malformed signature",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				a := r.Header.Get("Authorization")
				r.Header.Set("Authorization", a[:len(a)-1]+"G")
				return r
			},
			reason: ReasonMismatch,
		},
		{
			name: "upper-case signature",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				a := r.Header.Get("Authorization")
				i := strings.LastIndex(a, "=") + 1
				r.Header.Set("Authorization", a[:i]+strings.ToUpper(a[i:]))
				return r
			},
			reason: ReasonMismatch,
		},
		{
			name: "expired",
			req: func(t *testing.T) *http.Request {
				return signedPost(t, key, unitNow.Add(-5*time.Minute-time.Second), "", nil)
			},
			reason: ReasonExpired, errType: "InvalidSignatureException",
			message: "Signature expired: 20261124T205459Z is now earlier than 20261124T205500Z (20261124T210000Z - 5 min.)",
		},
		{
			name: "not yet current",
			req: func(t *testing.T) *http.Request {
				return signedPost(t, key, unitNow.Add(5*time.Minute+time.Second), "", nil)
			},
			reason: ReasonNotYetCurrent, errType: "InvalidSignatureException",
			message: "Signature not yet current: 20261124T210501Z is still later than 20261124T210500Z (20261124T210000Z + 5 min.)",
		},
		{
			name:   "custom skew",
			req:    func(t *testing.T) *http.Request { return signedPost(t, key, unitNow.Add(-90*time.Second), "", nil) },
			v:      func(v *Verifier) { v.MaxSkew = time.Minute },
			reason: ReasonExpired, message: "Signature expired: 20261124T205830Z is now earlier than 20261124T205900Z (20261124T210000Z - 1 min.)",
		},
		{
			name: "wrong region",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest("POST", "http://gw.example/dev/@connections/abc%3D", nil)
				r.RequestURI = ""
				if err := Sign(r, key, "execute-api", "us-west-2", unitNow, ""); err != nil {
					t.Fatal(err)
				}
				return overTheWire(t, r)
			},
			reason: ReasonWrongScope, errType: "InvalidSignatureException", message: "Credential should be scoped to a valid region, not 'us-west-2'. ",
		},
		{
			name: "wrong service",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest("POST", "http://gw.example/dev/@connections/abc%3D", nil)
				r.RequestURI = ""
				if err := Sign(r, key, "batch", interopRegion, unitNow, ""); err != nil {
					t.Fatal(err)
				}
				return overTheWire(t, r)
			},
			reason: ReasonWrongScope, message: "Credential should be scoped to correct service: 'execute-api'. ",
		},
		{
			name: "scope date differs",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261124/", "/20261123/", 1))
				return r
			},
			reason:  ReasonWrongScope,
			message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261123' != '20261124', from 'X-Amz-Date'.",
		},
		{
			name: "wrong terminator",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "aws4_request", "aws5_request", 1))
				return r
			},
			reason: ReasonWrongScope, message: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
		},
		{
			name:   "body over the cap",
			req:    func(t *testing.T) *http.Request { return signedPost(t, key, unitNow, strings.Repeat("x", 101), nil) },
			v:      func(v *Verifier) { v.MaxBodyBytes = 100 },
			reason: ReasonBodyTooLarge, status: 413, errType: "PayloadTooLargeException",
		},
		{
			name: "chunked body over the cap",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, strings.Repeat("x", 101), nil)
				r.ContentLength = -1
				r.Header.Del("Content-Length")
				return r
			},
			v:      func(v *Verifier) { v.MaxBodyBytes = 100 },
			reason: ReasonBodyTooLarge, status: 413,
		},
		{
			name:     "body at the cap",
			req:      func(t *testing.T) *http.Request { return signedPost(t, key, unitNow, strings.Repeat("x", 100), nil) },
			v:        func(v *Verifier) { v.MaxBodyBytes = 100 },
			verifies: true,
		},
		{
			name: "body read error",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "hello", nil)
				r.Body = io.NopCloser(iotest.ErrReader(errors.New("gone")))
				return r
			},
			reason: ReasonBodyUnreadable, status: 400,
		},
		{
			name: "content sha256 header matching the body",
			req: func(t *testing.T) *http.Request {
				return signedPost(t, key, unitNow, "hello", func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte("hello"))) })
			},
			verifies: true,
		},
		{
			name: "content sha256 header not matching the body",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "http://gw.example/dev/@connections/abc%3D", strings.NewReader("hello"))
				r.RequestURI = ""
				if err := (Signer{ContentSHA256Header: true}).Sign(r, key, "execute-api", interopRegion, unitNow, sha256Hex([]byte("other"))); err != nil {
					t.Fatal(err)
				}
				return overTheWire(t, r)
			},
			reason: ReasonContentHashMismatch, status: 403, errType: "InvalidSignatureException",
		},
		{
			name: "unsigned payload refused",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "http://gw.example/dev/@connections/abc%3D", strings.NewReader("hello"))
				r.RequestURI = ""
				if err := Sign(r, key, "execute-api", interopRegion, unitNow, UnsignedPayload); err != nil {
					t.Fatal(err)
				}
				return overTheWire(t, r)
			},
			reason: ReasonContentHashMismatch,
		},
		{
			name: "unsigned payload allowed",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "http://gw.example/dev/@connections/abc%3D", strings.NewReader("hello"))
				r.RequestURI = ""
				if err := Sign(r, key, "execute-api", interopRegion, unitNow, UnsignedPayload); err != nil {
					t.Fatal(err)
				}
				return overTheWire(t, r)
			},
			v:        func(v *Verifier) { v.AllowUnsignedPayload = true },
			verifies: true,
		},
		{
			name: "Date header instead of X-Amz-Date",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", nil)
				// Re-sign by hand as botocore does when the caller set Date:
				// the canonical headers carry date, the string to sign the
				// ISO form.
				r.Header.Del("X-Amz-Date")
				r.Header.Set("Date", unitNow.Format(http.TimeFormat))
				c := canonicalRequest{text: []byte("POST\n/dev/%40connections/abc%253D\n\ndate:" + unitNow.Format(http.TimeFormat) +
					"\nhost:gw.example:8080\n\ndate;host\n" + EmptyPayloadHash)}
				sig := c.sign(interopSecret, unitNow.Format(TimeFormat), interopRegion, "execute-api", nil)
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+interopKey+"/20261124/us-east-1/execute-api/aws4_request,SignedHeaders=date;host,Signature="+sig)
				return r
			},
			verifies: true,
		},
		{
			name: "signed header missing from the request",
			req: func(t *testing.T) *http.Request {
				r := signedPost(t, key, unitNow, "", func(r *http.Request) { r.Header.Set("X-Extra", "1") })
				r.Header.Del("X-Extra")
				return r
			},
			reason: ReasonMismatch,
		},
		{
			name: "debug message",
			req: func(t *testing.T) *http.Request {
				return signedPost(t, Credentials{AccessKeyID: interopKey, SecretAccessKey: "nope"}, unitNow, "", nil)
			},
			v:      func(v *Verifier) { v.Debug = true },
			reason: ReasonMismatch,
			message: mismatchMessage + "\n\nThe Canonical String for this request should have been\n'POST\n/dev/%40connections/abc%253D\n\n" +
				"host:gw.example:8080\nx-amz-date:20261124T210000Z\n\nhost;x-amz-date\n" + EmptyPayloadHash +
				"'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261124T210000Z\n20261124/us-east-1/execute-api/aws4_request\n...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := unitVerifier()
			if tt.v != nil {
				tt.v(v)
			}
			id, err := v.Verify(tt.req(t))
			if tt.verifies {
				if err != nil || id == nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want *Error", err, err)
			}
			if id != nil {
				t.Errorf("identity %+v returned with an error", id)
			}
			if e.Reason != tt.reason {
				t.Errorf("reason %v, want %v (%v)", e.Reason, tt.reason, e)
			}
			if tt.status != 0 && e.StatusCode != tt.status {
				t.Errorf("status %d, want %d", e.StatusCode, tt.status)
			}
			if tt.errType != "" && e.ErrorType != tt.errType {
				t.Errorf("type %q, want %q", e.ErrorType, tt.errType)
			}
			if p, ok := strings.CutSuffix(tt.message, "..."); ok {
				if !strings.HasPrefix(e.Message, p) {
					t.Errorf("message %q\nwant prefix %q", e.Message, p)
				}
			} else if tt.message != "" && e.Message != tt.message {
				t.Errorf("message %q\nwant %q", e.Message, tt.message)
			}
			if !errors.Is(err, &Error{Reason: tt.reason}) {
				t.Errorf("errors.Is by reason failed")
			}
		})
	}
}

// TestPresignRoundTrip presigns a WebSocket $connect URL (GET, query auth)
// and verifies it over a real HTTP server, then checks expiry and tampering.
func TestPresignRoundTrip(t *testing.T) {
	var got []*Identity
	var gotErr []*Error
	v := &Verifier{Store: interopStore, Service: "execute-api", Region: interopRegion}
	now := time.Now().Truncate(time.Second) // X-Amz-Date has whole seconds
	v.Now = func() time.Time { return now }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Verify(r)
		if err != nil {
			gotErr = append(gotErr, err.(*Error))
			err.(*Error).WriteHTTP(w)
			return
		}
		got = append(got, id)
	}))
	defer srv.Close()
	for _, key := range []string{interopKey, interopKeySTS} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/prod?room=a%20b&x=%2B", nil)
		u, err := Presign(req, interopStore[key], "execute-api", interopRegion, now, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || len(got) != 1 || !got[0].Presigned || got[0].AccessKeyID != key || got[0].SessionToken != interopStore[key].SessionToken {
			t.Fatalf("%s: status %d, identities %+v, errors %v", key, resp.StatusCode, got, gotErr)
		}
		got = nil

		// Still valid just before the expiry, expired just after.
		now = now.Add(10 * time.Minute)
		if _, err := v.Verify(httptest.NewRequest("GET", u.String(), nil)); err != nil {
			t.Errorf("at expiry: %v", err)
		}
		now = now.Add(time.Second)
		_, err = v.Verify(httptest.NewRequest("GET", u.String(), nil))
		if !errors.Is(err, &Error{Reason: ReasonExpired}) {
			t.Errorf("after expiry: %v", err)
		}
		now = now.Add(-10*time.Minute - time.Second)

		tampered := strings.Replace(u.String(), "room=a%20b", "room=a%20c", 1)
		if _, err := v.Verify(httptest.NewRequest("GET", tampered, nil)); !errors.Is(err, &Error{Reason: ReasonMismatch}) {
			t.Errorf("tampered: %v", err)
		}
	}
	if _, err := Presign(&http.Request{}, Credentials{}, "", "", now, 0); err == nil {
		t.Error("bad input accepted")
	}
}

func TestPresignQueryErrors(t *testing.T) {
	v := unitVerifier()
	req, _ := http.NewRequest(http.MethodGet, "http://gw.example/prod", nil)
	u, err := Presign(req, interopStore[interopKey], "execute-api", interopRegion, unitNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, from, to string
		reason         Reason
		message        string
	}{
		{"missing signature", "&X-Amz-Signature=", "&X-Amz-Nothing=", ReasonIncompleteSignature, msgQueryParams},
		{"other algorithm", "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", ReasonIncompleteSignature, `X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`},
		{"expires over a week", "X-Amz-Expires=3600", "X-Amz-Expires=604801", ReasonIncompleteSignature, "X-Amz-Expires must be less than a week (in seconds) that is 604800"},
		{"expires not a number", "X-Amz-Expires=3600", "X-Amz-Expires=1h", ReasonIncompleteSignature, "X-Amz-Expires should be a number"},
		{"longer expiry", "X-Amz-Expires=3600", "X-Amz-Expires=7200", ReasonMismatch, ""},
		{"untouched", "", "", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", strings.Replace(u.String(), tt.from, tt.to, 1), nil)
			_, err := v.Verify(r)
			if tt.reason == 0 {
				if err != nil {
					t.Errorf("untouched URL: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason || (tt.message != "" && e.Message != tt.message) {
				t.Errorf("got %v, want %v %q", err, tt.reason, tt.message)
			}
		})
	}
	if _, err := Presign(req, interopStore[interopKey], "execute-api", interopRegion, unitNow, 8*24*time.Hour); err == nil {
		t.Error("presign over a week accepted")
	}
}

// TestVerifyRawRequestTarget checks that the canonical URI comes from the
// request-target as received: "@" and "%40" are different paths, and a path
// that Go would clean is verified as sent.
func TestVerifyRawRequestTarget(t *testing.T) {
	v := unitVerifier()
	key := interopStore[interopKey]
	for _, path := range []string{"/dev/@connections/abc%3D", "/dev/%40connections/abc%3D", "/dev/@connections/abc=", "/dev//x/../@connections/a%2Fb"} {
		req := httptest.NewRequest(http.MethodPost, "http://gw.example"+path, bytes.NewReader([]byte("x")))
		req.RequestURI = ""
		if err := Sign(req, key, "execute-api", interopRegion, unitNow, ""); err != nil {
			t.Fatal(err)
		}
		sreq := overTheWire(t, req)
		if sreq.RequestURI != path {
			t.Fatalf("wire target %q, want %q", sreq.RequestURI, path)
		}
		if _, err := v.Verify(sreq); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		// The same signature on the other spelling must fail.
		other := strings.Replace(path, "@", "%40", 1)
		if other == path {
			other = strings.Replace(path, "%40", "@", 1)
		}
		req.Body, _ = req.GetBody()
		sreq = overTheWire(t, req)
		sreq.RequestURI = other
		if _, err := v.Verify(sreq); !errors.Is(err, &Error{Reason: ReasonMismatch}) {
			t.Errorf("%s verified as %s: %v", path, other, err)
		}
	}
}

// TestRequestPath: RequestPath is the wire path Verify signs, and
// PathIsNormal is true exactly when normalizing would not change it.
func TestRequestPath(t *testing.T) {
	for _, tc := range []struct {
		target, path string
		normal       bool
	}{
		{"/dev/@connections/abc%3D", "/dev/@connections/abc%3D", true},
		{"/dev/%40connections/abc%3D?x=1", "/dev/%40connections/abc%3D", true},
		{"/dev/@connections/", "/dev/@connections/", true},
		{"/dev/@groups/%2e%2e", "/dev/@groups/%2e%2e", true}, // not a dot segment to SigV4
		{"/dev/@groups/../@connections/a", "/dev/@groups/../@connections/a", false},
		{"/dev/@groups/.", "/dev/@groups/.", false},
		{"/dev/./@connections", "/dev/./@connections", false},
		{"/dev//@connections", "/dev//@connections", false},
		{"http://gw.example/dev/@groups/..?q", "/dev/@groups/..", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RequestURI = tc.target
		if got := RequestPath(r); got != tc.path {
			t.Errorf("RequestPath(%q) = %q, want %q", tc.target, got, tc.path)
		}
		if got := PathIsNormal(tc.path); got != tc.normal {
			t.Errorf("PathIsNormal(%q) = %v", tc.path, got)
		}
		if got := string(appendCanonicalURI(nil, tc.path, false, true)) == string(appendCanonicalURI(nil, tc.path, false, false)); got != tc.normal {
			t.Errorf("%q: normalized and raw canonical URIs equal = %v, want %v", tc.path, got, tc.normal)
		}
	}
}

func TestReasonString(t *testing.T) {
	if ReasonMismatch.String() != "signature_mismatch" || Reason(200).String() != "reason_200" {
		t.Error(ReasonMismatch.String(), Reason(200).String())
	}
	e := newError(ReasonMismatch, "")
	if e.Error() != "InvalidSignatureException: "+mismatchMessage {
		t.Error(e.Error())
	}
}

// TestSignDefaultPort checks that Sign drops the scheme's default port from
// the host it signs and sends, as the SDKs do, and keeps any other port.
func TestSignDefaultPort(t *testing.T) {
	for _, tt := range []struct{ url, host string }{
		{"https://gw.example:443/dev", "gw.example"},
		{"http://gw.example:80/dev", "gw.example"},
		{"http://127.0.0.1:9/dev", "127.0.0.1:9"},
	} {
		req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
		if err := Sign(req, interopStore[interopKey], "execute-api", interopRegion, unitNow, ""); err != nil {
			t.Fatal(err)
		}
		if req.Host != tt.host {
			t.Errorf("%s: host %q, want %q", tt.url, req.Host, tt.host)
		}
		if _, err := unitVerifier().Verify(overTheWire(t, req)); err != nil {
			t.Errorf("%s: %v", tt.url, err)
		}
	}
}

// TestCheckAndBody: Check fills the Identity Verify would return, and
// Body hands back the body Verify read, small or large, until it is read.
func TestCheckAndBody(t *testing.T) {
	key := interopStore[interopKey]
	for _, body := range []string{"", "hi", strings.Repeat("x", smallBody-1), strings.Repeat("y", smallBody), strings.Repeat("z", 5000)} {
		v := unitVerifier()
		v.MaxBodyBytes = 1 << 20
		r := signedPost(t, key, unitNow, body, nil)
		var id Identity
		if err := v.Check(r, &id); err != nil {
			t.Fatalf("%d bytes: %v", len(body), err)
		}
		if id.AccessKeyID != interopKey || id.Service != "execute-api" || id.Region != interopRegion || !id.SignedAt.Equal(unitNow) {
			t.Fatalf("identity %+v", id)
		}
		got, ok := Body(r)
		if body == "" {
			// No body to hash: nothing is put back.
			continue
		}
		if !ok || string(got) != body {
			t.Fatalf("%d bytes: Body = %d bytes, %v", len(body), len(got), ok)
		}
		var one [1]byte
		if _, err := r.Body.Read(one[:]); err != nil {
			t.Fatal(err)
		}
		if _, ok := Body(r); ok {
			t.Fatalf("%d bytes: Body after a read", len(body))
		}
	}
	if _, ok := Body(httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))); ok {
		t.Fatal("Body of a request Verify did not read")
	}
}

// TestReleaseBody: a body given back leaves the request with none, and a
// later request's Check reads its own body, small or large, whole, after
// bodies of every size were given back; ReleaseBody leaves another body
// alone.
func TestReleaseBody(t *testing.T) {
	key := interopStore[interopKey]
	v := unitVerifier()
	v.MaxBodyBytes = 1 << 20
	bodies := []string{"hi", strings.Repeat("x", smallBody-1), strings.Repeat("y", smallBody), strings.Repeat("z", 5000), "ok"}
	for round := range 3 {
		for _, body := range bodies {
			r := signedPost(t, key, unitNow, body, nil)
			var id Identity
			if err := v.Check(r, &id); err != nil {
				t.Fatalf("round %d, %d bytes: %v", round, len(body), err)
			}
			if got, ok := Body(r); !ok || string(got) != body {
				t.Fatalf("round %d, %d bytes: Body = %d bytes %.8q, %v", round, len(body), len(got), got, ok)
			}
			ReleaseBody(r)
			if _, ok := Body(r); ok || r.Body != http.NoBody {
				t.Fatalf("round %d, %d bytes: a body left after ReleaseBody", round, len(body))
			}
		}
	}
	other := io.NopCloser(strings.NewReader("x"))
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Body = other
	ReleaseBody(r)
	if r.Body != other {
		t.Fatal("ReleaseBody replaced a body Check did not read")
	}
}

// TestHasherHMAC: the hasher's HMAC, with its saved key states and
// without, is crypto/hmac's, for a key used twice, another key, and the
// first key again.
func TestHasherHMAC(t *testing.T) {
	x := newHasher()
	k1, k2 := [sha256.Size]byte{1, 2, 3}, [sha256.Size]byte{9: 7}
	for i, c := range []struct {
		key *[sha256.Size]byte
		msg string
	}{{&k1, "a"}, {&k1, strings.Repeat("b", 200)}, {&k2, ""}, {&k1, "c"}} {
		m := hmac.New(sha256.New, c.key[:])
		m.Write([]byte(c.msg))
		want := m.Sum(nil)
		if got := x.hmac(c.key, []byte(c.msg)); !bytes.Equal(got[:], want) {
			t.Errorf("%d: hmac %x, want %x", i, got, want)
		}
		if got := x.hmacOnce(c.key, []byte(c.msg)); !bytes.Equal(got[:], want) {
			t.Errorf("%d: hmacOnce %x, want %x", i, got, want)
		}
	}
}

// TestSetSignature: every byte at every place of a signature is accepted
// exactly when it is a lower-case hex digit, and decodes as encoding/hex
// decodes it.
func TestSetSignature(t *testing.T) {
	const good = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	var in authInput
	for i := range len(good) {
		for c := range 256 {
			s := good[:i] + string([]byte{byte(c)}) + good[i+1:]
			want, err := hex.DecodeString(s)
			ok := err == nil && ('0' <= c && c <= '9' || 'a' <= c && c <= 'f')
			e := in.setSignature(s)
			if (e == nil) != ok {
				t.Fatalf("byte %#x at %d: accepted %v, want %v", c, i, e == nil, ok)
			}
			if ok && !bytes.Equal(in.signature[:], want) {
				t.Fatalf("byte %#x at %d: decoded %x, want %x", c, i, in.signature, want)
			}
		}
	}
	for _, s := range []string{"", good[:63], good + "0"} {
		if in.setSignature(s) == nil {
			t.Fatalf("%d digits accepted", len(s))
		}
	}
}
