package sigv4

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// benchPost is a small PostToConnection as aws-sdk-go-v2 sends it (its
// signed-header set, a session token), as a net/http server receives it.
func benchPost(b *testing.B) (*http.Request, []byte) {
	b.Helper()
	body := []byte(`{"action":"message","data":"hello from the backend"}`)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/dev/@connections/L0SM9cOFvHcCIhw%3D", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Amz-Sdk-Invocation-Id", "3b3a4c7e-5d4f-4a8e-9a3e-1f2b3c4d5e6f")
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0 os/linux lang/go#1.26")
	if err := Sign(req, interopStore[interopKeySTS], "execute-api", interopRegion, unitNow, ""); err != nil {
		b.Fatal(err)
	}
	return overTheWire(b, req), body
}

// BenchmarkVerifyPost verifies a signed small POST with a cached signing
// key, body hashing included.
func BenchmarkVerifyPost(b *testing.B) {
	req, body := benchPost(b)
	v := unitVerifier()
	rd := &replayBody{}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = rd
		if _, err := v.Verify(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPostParallel is BenchmarkVerifyPost on every core, the
// gateway's situation.
func BenchmarkVerifyPostParallel(b *testing.B) {
	req, body := benchPost(b)
	v := unitVerifier()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := req.Clone(req.Context())
		rd := &replayBody{}
		for pb.Next() {
			rd.Reset(body)
			r.Body = rd
			if _, err := v.Verify(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyPresignedGet verifies a presigned WebSocket $connect URL.
func BenchmarkVerifyPresignedGet(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080/prod?room=lobby", nil)
	u, err := Presign(req, interopStore[interopKeySTS], "execute-api", interopRegion, unitNow, 5*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	req, _ = http.NewRequest(http.MethodGet, u.String(), nil)
	sreq := overTheWire(b, req)
	v := unitVerifier()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(sreq); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignPost signs a small POST with the body hash given.
func BenchmarkSignPost(b *testing.B) {
	body := `{"action":"message","data":"hello from the backend"}`
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/dev/@connections/L0SM9cOFvHcCIhw%3D", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	sum := sha256Hex([]byte(body))
	c := interopStore[interopKeySTS]
	b.ReportAllocs()
	for b.Loop() {
		if err := Sign(req, c, "execute-api", interopRegion, unitNow, sum); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHasherHMAC: the string to sign's HMAC with the key of the
// previous call, as a verification does.
func BenchmarkHasherHMAC(b *testing.B) {
	x := newHasher()
	key := signingKey("secret", "20261129", interopRegion, "execute-api")
	sts := []byte("AWS4-HMAC-SHA256\n20261129T000000Z\n20261129/us-east-1/execute-api/aws4_request\n" + strings.Repeat("0", 64))
	b.ReportAllocs()
	for b.Loop() {
		x.hmac(&key, sts)
	}
}

// BenchmarkSetSignature: the Authorization header's signature decoded
// (64 lower-case hex digits, mixed digits and letters as a real one is).
func BenchmarkSetSignature(b *testing.B) {
	var in authInput
	s := "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	b.ReportAllocs()
	for b.Loop() {
		if e := in.setSignature(s); e != nil {
			b.Fatal(e)
		}
	}
}

// BenchmarkVerifyBenchPost verifies the request wsgate-bench's signed POST
// sends (internal/sigwire: a long-term key, content-length, host and
// x-amz-date signed, a 100-byte body), the figure issue 16 measures.
func BenchmarkVerifyBenchPost(b *testing.B) {
	body := []byte(`{"t":1764543600000000000,"pad":"0123456789012345678901234567890123456789012345678901234567890123456789"}`)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/bench/@connections/L0SM9cOFvHcCIhw=", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("User-Agent", "wsgate-bench")
	if err := Sign(req, interopStore[interopKey], "execute-api", interopRegion, unitNow, sha256Hex(body)); err != nil {
		b.Fatal(err)
	}
	req = overTheWire(b, req)
	v := unitVerifier()
	rd := &replayBody{}
	var id Identity
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = rd
		if err := v.Check(req, &id); err != nil {
			b.Fatal(err)
		}
	}
}
