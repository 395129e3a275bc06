package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testenv"
)

// send sends req as is (its path unchanged by Go: url.Parse keeps dot
// segments) and returns the status, error type and body.
func send(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), string(b)
}

// signV4 signs req with aws-sdk-go-v2's signer (which signs the path as it
// is, dots included).
func signV4(t *testing.T, req *http.Request) {
	t.Helper()
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req, sha256Hex(nil), "execute-api", testRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
}

// whoamiGateway starts a gateway with a whoami route and connects one
// client; id is its connection id, escaped for a path.
func whoamiGateway(t *testing.T) (*testGateway, *websocket.Conn, string) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)
	return tg, c, esc(whoami(t, c))
}

// TestDotSegments: a management path with a '.', '..' or empty segment,
// raw or percent-encoded, answers 400 BadRequestException, whatever the
// signature; '.' and '..' are not group names.
func TestDotSegments(t *testing.T) {
	tg, c, id := whoamiGateway(t)
	tg.join(t, "g", id)

	for _, tc := range []struct{ method, path string }{
		{"DELETE", "/dev/@groups/../@connections/" + id},
		{"PUT", "/dev/@groups/../@connections/" + id},
		{"PUT", "/dev/@groups/%2e%2e/@connections/" + id},
		{"PUT", "/dev/@groups/%2E/@connections/" + id},
		{"PUT", "/dev/@groups/.%2e/@connections/" + id},
		{"GET", "/dev/@groups/.."},
		{"GET", "/dev/@groups/."},
		{"POST", "/dev/@groups/g/.."},
		{"POST", "/dev/@groups/x/../g"},
		{"GET", "/dev/./@connections"},
		{"GET", "/dev/.."},
		{"GET", "/dev//@connections"},
		{"GET", "/dev/@connections/" + id + "/.."},
		{"DELETE", "/dev/@connections/%2e%2e"},
	} {
		req, err := http.NewRequest(tc.method, "http://"+tg.addr+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		signV4(t, req)
		status, typ, body := send(t, req)
		if status != 400 || typ != "BadRequestException" || !strings.Contains(body, "segments are not allowed") {
			t.Errorf("%s %s: %d %s %s", tc.method, tc.path, status, typ, body)
		}
	}
	// Nothing was deleted, left or published; a group named by the route
	// or by $connect cannot be "." or "..".
	if d := tg.publish(t, "g", []byte("still here")); d.Delivered != 1 {
		t.Fatalf("after the refused requests: %+v", d)
	}
	if got := readText(t, c); got != "still here" {
		t.Fatalf("got %q", got)
	}
	for _, name := range []string{".", ".."} {
		if gateway.ValidGroup(name) {
			t.Errorf("%q is a valid group name", name)
		}
	}
	for _, name := range []string{"...", ".a", "a..b", "prices.eur"} {
		if !gateway.ValidGroup(name) {
			t.Errorf("%q is not a valid group name", name)
		}
	}
}

// TestSignedPathIsRoutedPath replays real signatures on paths that SigV4
// normalizes to the signed one. Before the path check each was accepted
// and routed somewhere else: a DELETE of a connection (aws-sdk-go-v2)
// as a leave of group "..", a botocore-signed DELETE likewise, and a
// botocore-presigned $connect URL as a listing of group "..".
func TestSignedPathIsRoutedPath(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3 python3-botocore")
	tg, _, id := whoamiGateway(t)
	base := "http://" + tg.addr

	// aws-sdk-go-v2 signs DELETE /dev/@connections/{id}; replayed on
	// /dev/@groups/../@connections/{id}.
	req, _ := http.NewRequest("DELETE", base+"/dev/@connections/"+id, nil)
	signV4(t, req)
	replay, _ := http.NewRequest("DELETE", base+"/dev/@groups/../@connections/"+id, nil)
	replay.Header = req.Header.Clone()
	if status, typ, body := send(t, replay); status != 400 || typ != "BadRequestException" {
		t.Errorf("replayed aws-sdk-go-v2 DELETE: %d %s %s", status, typ, body)
	}

	// botocore signs /dev/@groups/../@connections/{id} as
	// /dev/@connections/{id} (it removes dot segments) and the request is
	// sent with the dots.
	req = botocoreSigned(t, py, "DELETE", base+"/dev/@groups/../@connections/"+id)
	if status, typ, body := send(t, req); status != 400 || typ != "BadRequestException" {
		t.Errorf("botocore-signed DELETE with dots: %d %s %s", status, typ, body)
	}

	// A $connect URL presigned by botocore, replayed on /dev/@groups/..
	out, err := exec.Command(py, "testdata/presign.py", base+"/dev").CombinedOutput()
	if err != nil {
		t.Fatalf("presign: %v\n%s", err, out)
	}
	presigned := strings.TrimSpace(string(out))
	req, _ = http.NewRequest("GET", strings.Replace(presigned, "/dev?", "/dev/@groups/..?", 1), nil)
	if status, typ, body := send(t, req); status != 400 || typ != "BadRequestException" {
		t.Errorf("presigned $connect URL on /dev/@groups/..: %d %s %s", status, typ, body)
	}

	// The connection is untouched, and the same signers' requests on
	// normal paths still work.
	status, _, body := send(t, botocoreSigned(t, py, "GET", base+"/dev/@connections/"+id))
	if status != 200 || !strings.Contains(body, "connectedAt") {
		t.Fatalf("botocore GetConnection: %d %s", status, body)
	}
	req, _ = http.NewRequest("DELETE", base+"/dev/@connections/"+id, nil)
	signV4(t, req)
	if status, _, body := send(t, req); status != 204 {
		t.Fatalf("aws-sdk-go-v2 DELETE: %d %s", status, body)
	}
}

// botocoreSigned returns a request signed by botocore (testdata/sign.py).
func botocoreSigned(t *testing.T, py, method, url string) *http.Request {
	t.Helper()
	out, err := exec.Command(py, "testdata/sign.py", method, url).CombinedOutput()
	if err != nil {
		t.Fatalf("sign.py: %v\n%s", err, out)
	}
	var headers map[string]string
	if err := json.Unmarshal(out, &headers); err != nil {
		t.Fatalf("sign.py printed %q: %v", out, err)
	}
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}
