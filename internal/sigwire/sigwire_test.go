package sigwire_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/sigwire"
	"github.com/wsgate/wsgate/sigv4"
)

// TestRequestVerifies: the bytes parse as one HTTP/1.1 request whose
// signature sigv4's verifier accepts, with the body intact.
func TestRequestVerifies(t *testing.T) {
	creds := sigv4.Credentials{AccessKeyID: "AKIDWIRE", SecretAccessKey: "wire-secret"}
	for _, body := range [][]byte{[]byte(`{"a":1}`), nil} {
		wire, err := sigwire.Request(http.MethodPost, "http://127.0.0.1:9/dev/@connections/abc", body, creds, "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(bytes.NewReader(wire))
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("%q: %v", wire, err)
		}
		v := &sigv4.Verifier{Store: sigv4.StaticCredentials{creds.AccessKeyID: creds}, Service: "execute-api", Region: "us-east-1"}
		if _, err := v.Verify(req); err != nil {
			t.Fatalf("signature refused: %v", err)
		}
		got, _ := io.ReadAll(req.Body)
		if !bytes.Equal(got, body) || br.Buffered() != 0 {
			t.Fatalf("body %q, %d bytes left over; want %q", got, br.Buffered(), body)
		}
		if ua := req.Header.Get("User-Agent"); ua != sigwire.UserAgent {
			t.Fatalf("User-Agent %q", ua)
		}
	}
}
