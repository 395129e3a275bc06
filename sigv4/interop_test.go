package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/smithy-go"

	"github.com/wsgate/wsgate/internal/testenv"
)

const (
	interopKey    = "AKIAWSGATETEST000001"
	interopSecret = "wsgate/secret+key=0123456789abcdefghijklmn"
	interopToken  = "IQoJb3JpZ2luX2VjEPT//////////wEaCXVzLWVhc3QtMSJHMEUCIQD/token+with/odd=chars=="
	interopKeySTS = "ASIAWSGATETEST000002"
	interopRegion = "us-east-1"
)

var interopStore = StaticCredentials{
	interopKey:    {AccessKeyID: interopKey, SecretAccessKey: interopSecret},
	interopKeySTS: {AccessKeyID: interopKeySTS, SecretAccessKey: interopSecret, SessionToken: interopToken},
}

// seen is one request the test server received.
type seen struct {
	method, target string
	body           []byte
	id             *Identity
	err            *Error
	presigned      bool // expected: query auth
}

// managementServer is an httptest server on 127.0.0.1 that verifies every
// request with v, answers 200 "{}" or the AWS error, and records what it saw.
type managementServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seen
}

func newManagementServer(t *testing.T, v *Verifier) *managementServer {
	t.Helper()
	m := &managementServer{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Verify(r)
		s := seen{method: r.Method, target: r.RequestURI, id: id}
		if err != nil {
			s.err = err.(*Error)
			m.record(s)
			s.err.WriteHTTP(w)
			return
		}
		s.body, _ = io.ReadAll(r.Body) // the handler still gets the body
		m.record(s)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *managementServer) record(s seen) {
	m.mu.Lock()
	m.seen = append(m.seen, s)
	m.mu.Unlock()
}

// take returns and forgets what the server has seen.
func (m *managementServer) take() []seen {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.seen
	m.seen = nil
	return s
}

func executeAPIVerifier() *Verifier {
	return &Verifier{Store: interopStore, Service: "execute-api", Region: interopRegion, Debug: true}
}

// expectVerified checks that exactly the wanted requests arrived and all
// verified with the wanted body and key.
func expectVerified(t *testing.T, got []seen, key string, want ...seen) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("server saw %d requests, want %d: %+v", len(got), len(want), got)
	}
	for i, g := range got {
		if g.err != nil {
			t.Errorf("%s %s: %v", g.method, g.target, g.err)
			continue
		}
		w := want[i]
		target, prefix := strings.CutSuffix(w.target, "...")
		if g.method != w.method || !bytes.Equal(g.body, w.body) || g.id.Presigned != w.presigned ||
			(g.target != target && !(prefix && strings.HasPrefix(g.target, target))) {
			t.Errorf("got %s %s %q, want %s %s %q", g.method, g.target, g.body, w.method, w.target, w.body)
		}
		if g.id.AccessKeyID != key || g.id.Service != "execute-api" || g.id.Region != interopRegion {
			t.Errorf("identity %+v", g.id)
		}
		if wantTok := interopStore[key].SessionToken; g.id.SessionToken != wantTok {
			t.Errorf("identity token %q, want %q", g.id.SessionToken, wantTok)
		}
	}
}

// TestAWSSDKGoManagementClient sends PostToConnection, GetConnection and
// DeleteConnection with aws-sdk-go-v2's own client, with and without a
// session token, for connection ids ending in "=".
func TestAWSSDKGoManagementClient(t *testing.T) {
	srv := newManagementServer(t, executeAPIVerifier())
	for _, key := range []string{interopKey, interopKeySTS} {
		t.Run(key, func(t *testing.T) {
			c := interopStore[key]
			client := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
				Region:           interopRegion,
				BaseEndpoint:     aws.String(srv.URL + "/dev"),
				Credentials:      credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
				RetryMaxAttempts: 1,
			})
			ctx := context.Background()
			id := aws.String("L0SM9cOFvHcCIhw=")
			if _, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: id, Data: []byte(`{"hello":"world"}`)}); err != nil {
				t.Fatal(err)
			}
			if _, err := client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: id}); err != nil {
				t.Fatal(err)
			}
			if _, err := client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: id}); err != nil {
				t.Fatal(err)
			}
			p := "/dev/@connections/L0SM9cOFvHcCIhw%3D"
			expectVerified(t, srv.take(), key,
				seen{method: "POST", target: p, body: []byte(`{"hello":"world"}`)},
				seen{method: "GET", target: p},
				seen{method: "DELETE", target: p})
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		client := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			Region:           interopRegion,
			BaseEndpoint:     aws.String(srv.URL + "/dev"),
			Credentials:      credentials.NewStaticCredentialsProvider(interopKey, "not-the-secret", ""),
			RetryMaxAttempts: 1,
		})
		_, err := client.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String("abc="), Data: []byte("x")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" ||
			!strings.HasPrefix(ae.ErrorMessage(), "The request signature we calculated does not match") {
			t.Fatalf("got %v, want InvalidSignatureException as the SDK reads it", err)
		}
		srv.take()
	})
}

// TestAWSSDKGoSignerRawPaths signs requests by hand with aws-sdk-go-v2's
// v4.Signer, writing the management path with "@" and with "%40", and sends
// them to the server.
func TestAWSSDKGoSignerRawPaths(t *testing.T) {
	srv := newManagementServer(t, executeAPIVerifier())
	signer := v4.NewSigner()
	for _, key := range []string{interopKey, interopKeySTS} {
		for _, path := range []string{"/dev/@connections/abc%3D", "/dev/%40connections/abc%3D"} {
			c := interopStore[key]
			body := []byte("hello")
			req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256Hex(body)
			creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
			if err := signer.SignHTTP(context.Background(), creds, req, sum, "execute-api", interopRegion, time.Now()); err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s %s: status %d", key, path, resp.StatusCode)
			}
			expectVerified(t, srv.take(), key, seen{method: "POST", target: path, body: body})
		}
	}
}

// TestAgainstAWSSDKGoSigner signs random requests with aws-sdk-go-v2's
// signer (header and query auth) and checks that they verify once written
// to the wire and parsed back; and that this package's Sign produces the
// same Authorization header as the SDK for the same request.
func TestAgainstAWSSDKGoSigner(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	signer := v4.NewSigner()
	now := time.Date(2026, 11, 24, 21, 0, 0, 0, time.UTC)
	v := executeAPIVerifier()
	v.Now = func() time.Time { return now }
	for i := range 300 {
		c := interopStore[[]string{interopKey, interopKeySTS}[i%2]]
		creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
		req, body := randomRequest(rng)
		presign := i%3 == 0
		if presign {
			q := req.URL.Query()
			q.Set("X-Amz-Expires", "300")
			req.URL.RawQuery = q.Encode()
			u, _, err := signer.PresignHTTP(context.Background(), creds, req, sha256Hex(body), "execute-api", interopRegion, now.Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			req.URL, _ = url.Parse(u)
		} else {
			ours := req.Clone(context.Background())
			ours.Body = io.NopCloser(bytes.NewReader(body))
			if err := signer.SignHTTP(context.Background(), creds, req, sha256Hex(body), "execute-api", interopRegion, now.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := Sign(ours, c, "execute-api", interopRegion, now.Add(-time.Minute), ""); err != nil {
				t.Fatal(err)
			}
			// The SDK does not normalize dot segments; botocore and this
			// package do (the verifier accepts both).
			if a, b := ours.Header.Get("Authorization"), req.Header.Get("Authorization"); a != b && !pathNeedsNormalizing(req.URL.EscapedPath()) {
				t.Errorf("case %d %s %s: Sign gave\n%s\nthe SDK gave\n%s", i, req.Method, req.URL, a, b)
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		sreq := overTheWire(t, req)
		id, err := v.Verify(sreq)
		if err != nil {
			t.Fatalf("case %d (presign %v) %s %s: %v", i, presign, req.Method, req.URL, err)
		}
		if id.Presigned != presign {
			t.Errorf("case %d: presigned %v", i, id.Presigned)
		}
		if got, _ := io.ReadAll(sreq.Body); !bytes.Equal(got, body) {
			t.Errorf("case %d: body not readable after Verify", i)
		}
	}
}

// randomRequest builds a request with an escaped random path, random query
// parameters, headers and body.
func randomRequest(rng *rand.Rand) (*http.Request, []byte) {
	const alphabet = "abcXYZ019-._~ !\"#$%&'()*+,/:;<=>?@[\\]^`{|}é=ሴ"
	word := func() string {
		r := []rune(alphabet)
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			b.WriteRune(r[rng.IntN(len(r))])
		}
		return b.String()
	}
	var p strings.Builder
	for range 1 + rng.IntN(4) {
		p.WriteString("/" + url.PathEscape(word()))
	}
	q := url.Values{}
	for range rng.IntN(4) {
		q.Add(word(), word())
	}
	method := []string{"GET", "POST", "PUT", "DELETE"}[rng.IntN(4)]
	var body []byte
	if method == "POST" || method == "PUT" {
		body = []byte(strings.Repeat(word(), rng.IntN(50)))
	}
	req, err := http.NewRequest(method, "http://127.0.0.1:8080"+p.String()+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	for range rng.IntN(3) {
		req.Header.Add("X-Custom-"+strconv.Itoa(rng.IntN(3)), "  v  "+url.QueryEscape(word())+"   x ")
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	return req, body
}

// overTheWire writes req as a client would and parses it as Go's server
// does.
func overTheWire(t testing.TB, req *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sreq, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("reading back %q: %v", buf.String(), err)
	}
	return sreq
}

// pythonWithBotocore returns python3, skipping (failing in CI) when it or
// botocore is missing.
func pythonWithBotocore(t *testing.T) string {
	t.Helper()
	py := testenv.LookPath(t, "python3", "apt-get install -y python3")
	if err := exec.Command(py, "-c", "import botocore, boto3").Run(); err != nil {
		testenv.Missing(t, "python3 botocore/boto3", "pip install boto3 (or apt-get install -y python3-boto3)")
	}
	return py
}

// botocoreScript signs with botocore: boto3's apigatewaymanagementapi
// client, then raw AWSRequests signed with SigV4Auth and sent with
// URLLib3Session, for both spellings of the management path.
const botocoreScript = `
import sys, boto3
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session

base, key, secret, token = sys.argv[1:5]
token = token or None
client = boto3.client("apigatewaymanagementapi", endpoint_url=base + "/dev", region_name="us-east-1",
                      aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)
client.post_to_connection(ConnectionId="L0SM9cOFvHcCIhw=", Data=b"hello from boto3")
client.get_connection(ConnectionId="L0SM9cOFvHcCIhw=")
client.delete_connection(ConnectionId="L0SM9cOFvHcCIhw=")

creds = Credentials(key, secret, token)
session = URLLib3Session()
for path in ("/dev/@connections/abc%3D", "/dev/%40connections/abc%3D"):
    req = AWSRequest(method="POST", url=base + path, data=b"raw botocore",
                     headers={"Content-Type": "application/json"})
    SigV4Auth(creds, "execute-api", "us-east-1").add_auth(req)
    resp = session.send(req.prepare())
    if resp.status_code != 200:
        sys.exit("raw %s: %d %s" % (path, resp.status_code, resp.text))

# A presigned GET, as for a WebSocket $connect with IAM auth.
req = AWSRequest(method="GET", url=base + "/prod?room=a%20b")
SigV4QueryAuth(creds, "execute-api", "us-east-1", expires=300).add_auth(req)
resp = session.send(req.prepare())
if resp.status_code != 200:
    sys.exit("presigned: %d %s" % (resp.status_code, resp.text))
print("ok")
`

// TestBotocore checks requests signed by botocore (boto3 client and raw
// SigV4Auth), with and without a session token.
func TestBotocore(t *testing.T) {
	py := pythonWithBotocore(t)
	srv := newManagementServer(t, executeAPIVerifier())
	for _, key := range []string{interopKey, interopKeySTS} {
		t.Run(key, func(t *testing.T) {
			c := interopStore[key]
			out, err := exec.Command(py, "-c", botocoreScript, srv.URL, c.AccessKeyID, c.SecretAccessKey, c.SessionToken).CombinedOutput()
			if err != nil {
				t.Fatalf("botocore: %v\n%s", err, out)
			}
			p := "/dev/@connections/L0SM9cOFvHcCIhw%3D"
			expectVerified(t, srv.take(), key,
				seen{method: "POST", target: p, body: []byte("hello from boto3")},
				seen{method: "GET", target: p},
				seen{method: "DELETE", target: p},
				seen{method: "POST", target: "/dev/@connections/abc%3D", body: []byte("raw botocore")},
				seen{method: "POST", target: "/dev/%40connections/abc%3D", body: []byte("raw botocore")},
				seen{method: "GET", target: "/prod?room=a%20b&X-Amz-Algorithm=AWS4-HMAC-SHA256&...", presigned: true})
		})
	}
}

// awsCLIs finds AWS CLI v1 and v2 by asking each candidate its version.
func awsCLI(t *testing.T, major string) string {
	t.Helper()
	var cands []string
	if p, err := exec.LookPath("aws"); err == nil {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/aws", "/usr/local/bin/aws")
	for _, c := range cands {
		out, err := exec.Command(c, "--version").CombinedOutput()
		if err == nil && strings.HasPrefix(string(out), "aws-cli/"+major+".") {
			return c
		}
	}
	install := map[string]string{"1": "pip install awscli", "2": "apt-get install -y awscli"}[major]
	testenv.Missing(t, "AWS CLI v"+major, install)
	return ""
}

// cliEnv is an environment holding only the given credentials: no config
// files, no metadata service.
func cliEnv(t *testing.T, c Credentials) []string {
	dir := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_DEFAULT_REGION=" + interopRegion,
		"AWS_ACCESS_KEY_ID=" + c.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey,
		"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
	}
	if pr := os.Getenv("PYENV_ROOT"); pr != "" {
		env = append(env, "PYENV_ROOT="+pr)
	}
	if c.SessionToken != "" {
		env = append(env, "AWS_SESSION_TOKEN="+c.SessionToken)
	}
	return env
}

// TestAWSCLI runs post-to-connection with AWS CLI v1 and v2, with and
// without a session token, and checks that a wrong secret gets AWS's error
// as the CLI reports it.
func TestAWSCLI(t *testing.T) {
	srv := newManagementServer(t, executeAPIVerifier())
	for _, major := range []string{"1", "2"} {
		t.Run("v"+major, func(t *testing.T) {
			cli := awsCLI(t, major)
			run := func(c Credentials) ([]byte, error) {
				args := []string{"apigatewaymanagementapi", "post-to-connection", "--endpoint-url", srv.URL + "/dev",
					"--connection-id", "abc=", "--data", "hello"}
				if major == "2" {
					args = append(args, "--cli-binary-format", "raw-in-base64-out")
				}
				cmd := exec.Command(cli, args...)
				cmd.Env = cliEnv(t, c)
				return cmd.CombinedOutput()
			}
			for _, key := range []string{interopKey, interopKeySTS} {
				if out, err := run(interopStore[key]); err != nil {
					t.Fatalf("%s: %v\n%s", key, err, out)
				}
				expectVerified(t, srv.take(), key, seen{method: "POST", target: "/dev/@connections/abc%3D", body: []byte("hello")})
			}
			out, err := run(Credentials{AccessKeyID: interopKey, SecretAccessKey: "wrong"})
			if err == nil || !strings.Contains(string(out), "InvalidSignatureException") {
				t.Fatalf("wrong secret: err %v, output %s", err, out)
			}
			srv.take()
		})
	}
}

// TestErrorShapeOverHTTP checks the wire form of an error: status,
// x-amzn-ErrorType, JSON message and a Date header.
func TestErrorShapeOverHTTP(t *testing.T) {
	srv := newManagementServer(t, executeAPIVerifier())
	resp, err := http.Post(srv.URL+"/dev/@connections/abc%3D", "application/json", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" ||
		body.Message != "Missing Authentication Token" || resp.Header.Get("Date") == "" {
		t.Errorf("got %d %v %q", resp.StatusCode, resp.Header, body.Message)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
