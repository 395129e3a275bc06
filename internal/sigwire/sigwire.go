// Package sigwire builds whole SigV4-signed HTTP/1.1 requests as they go
// on the wire, for load generators and benchmarks that write pre-signed
// bytes to a socket instead of going through an HTTP client. It is not a
// test-only package (the bench binary uses it), so it does not import
// testing.
package sigwire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/wsgate/wsgate/sigv4"
)

// UserAgent is the User-Agent every request carries.
const UserAgent = "wsgate-bench"

// Request returns method url with body, signed for execute-api in region
// with creds at now, as one HTTP/1.1 request: head and body. A nil body
// sends no Content-Length.
func Request(method, url string, body []byte, creds sigv4.Credentials, region string, now time.Time) ([]byte, error) {
	return RequestHeader(method, url, body, nil, creds, region, now)
}

// RequestHeader is Request with header's fields added before signing
// (so they are signed, as an AWS SDK signs its Amz-Sdk-Invocation-Id).
func RequestHeader(method, url string, body []byte, header map[string]string, creds sigv4.Credentials, region string, now time.Time) ([]byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	req.Header.Set("User-Agent", UserAgent)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256(body)
	if err := sigv4.Sign(req, creds, "execute-api", region, now, hex.EncodeToString(sum[:])); err != nil {
		return nil, err
	}
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil, err
	}
	return wire.Bytes(), nil
}
