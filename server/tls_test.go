package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/tlsca"
)

// tlsConfig is interopConfig with an echo route, a state directory of the
// test's own and extra YAML appended.
func tlsConfig(t *testing.T, extra string) string {
	return interopConfig + "stateDir: " + t.TempDir() + "\n" +
		"routes:\n  echo: { integration: { type: mock }, routeResponseSelectionExpression: $default }\n" + extra
}

// rootPool is a pool holding only the certificates in path.
func rootPool(t *testing.T, path string) *x509.CertPool { return rootPoolTB(t, path) }

func rootPoolTB(t testing.TB, path string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", path)
	}
	return pool
}

// dialTLS connects a WebSocket client to url trusting only pool; dialAddr,
// when set, is where the TCP connection goes whatever url's host (as a
// hosts entry would).
func dialTLS(t *testing.T, url string, pool *x509.CertPool, dialAddr string) (*websocket.Conn, error) {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second}
	if dialAddr != "" {
		d.NetDial = func(network, _ string) (net.Conn, error) { return net.Dial(network, dialAddr) }
	}
	c, resp, err := d.Dial(url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"echo","m":"`+msg+`"}`)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); !strings.Contains(got, msg) {
		t.Fatalf("echo of %q: got %q", msg, got)
	}
}

// managementClient is the Go SDK's client for endpoint, trusting pool only.
func managementClient(endpoint string, pool *x509.CertPool) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOCAL", "change-me", ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	})
}

func connectionIDs(t *testing.T, srv *server.Server, n int) []string {
	t.Helper()
	var ids []string
	testenv.Eventually(t, 30*time.Second, func() error {
		infos, _, _ := srv.Hub().Connections(context.Background(), hub.Page{})
		if len(infos) != n {
			return fmt.Errorf("%d connections, want %d", len(infos), n)
		}
		ids = ids[:0]
		for _, in := range infos {
			ids = append(ids, in.ConnectionID)
		}
		return nil
	})
	return ids
}

// TestTLSAndPlaintextOnOnePort: with no certificate configured, one port
// serves ws:// and wss:// (for every name the local leaf covers, trusting
// only the local CA), and the Go SDK reaches the management API over
// https:// and delivers to both kinds of client. A client that says nothing
// does not hold up the others.
func TestTLSAndPlaintextOnOnePort(t *testing.T) {
	srv := startServer(t, tlsConfig(t, ""))
	if srv.CACertPath() == "" {
		t.Fatal("no local CA with tls.mode auto and no certFile")
	}
	pool := rootPool(t, srv.CACertPath())
	_, port, _ := net.SplitHostPort(srv.Addr())

	silent, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	var clients []*websocket.Conn
	plain, _, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:"+port+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	echo(t, plain, "plaintext")
	clients = append(clients, plain)
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]", "local.execute-api.us-east-1.amazonaws.com"} {
		c, err := dialTLS(t, "wss://"+host+":"+port+"/dev", pool, "127.0.0.1:"+port)
		if err != nil {
			t.Fatalf("wss://%s: %v", host, err)
		}
		echo(t, c, "over TLS to "+host)
		clients = append(clients, c)
	}
	if _, err := dialTLS(t, "wss://not-covered.test:"+port+"/dev", pool, "127.0.0.1:"+port); err == nil {
		t.Fatal("a name the leaf does not cover verified")
	}

	api := managementClient("https://localhost:"+port+"/dev", pool)
	for _, id := range connectionIDs(t, srv, len(clients)) {
		if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(id), Data: []byte("from the Go SDK over https"),
		}); err != nil {
			t.Fatalf("PostToConnection over https: %v", err)
		}
	}
	for i, c := range clients {
		if got := read(t, c); got != "from the Go SDK over https" {
			t.Fatalf("client %d got %q", i, got)
		}
	}
	if !strings.HasPrefix(srv.ManagementEndpoint(), "http://") {
		t.Fatalf("handlers' endpoint %s: want http:// in auto mode", srv.ManagementEndpoint())
	}
}

// TestTLSOnRefusesPlaintext: tls.mode on answers a plaintext request 400
// and gives handlers an https:// endpoint.
func TestTLSOnRefusesPlaintext(t *testing.T) {
	srv := startServer(t, tlsConfig(t, "tls: { mode: on }\n")) // unquoted: YAML 1.1's true
	pool := rootPool(t, srv.CACertPath())
	if _, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", nil); err == nil {
		t.Fatal("plaintext WebSocket accepted with tls.mode on")
	}
	resp, err := http.Get("http://" + srv.Addr() + "/dev/@connections/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
		t.Fatalf("plaintext request: %d %s", resp.StatusCode, body)
	}
	c, err := dialTLS(t, "wss://"+srv.Addr()+"/dev", pool, "")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, c, "TLS only")
	if !strings.HasPrefix(srv.ManagementEndpoint(), "https://127.0.0.1:") {
		t.Fatalf("handlers' endpoint %s: want https://", srv.ManagementEndpoint())
	}
	id := connectionIDs(t, srv, 1)[0]
	if _, err := managementClient(srv.ManagementEndpoint(), pool).PostToConnection(context.Background(),
		&apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "hi" {
		t.Fatalf("got %q", got)
	}
}

// TestTLSOff: no CA is created and TLS is not spoken; handlers get no CA
// bundle and no execute-api route (their https:// URL could not be
// served), and a config with Node.js or Python functions is warned about.
func TestTLSOff(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3 python3-boto3")
	handler, err := filepath.Abs("testdata/tls_handler.py")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	srv := startServer(t, interopConfig+"stateDir: "+state+"\ntls: { mode: \"off\" }\n"+
		fmt.Sprintf("routes:\n  $default: { integration: { type: command, timeoutMillis: 29000, command: [%q, \"-u\", %q] } }\n", py, handler))
	if srv.CACertPath() != "" {
		t.Fatal("a local CA with tls.mode off")
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state directory created with tls.mode off: %v", err)
	}
	if _, err := dialTLS(t, "wss://"+srv.Addr()+"/dev", x509.NewCertPool(), ""); err == nil {
		t.Fatal("TLS handshake succeeded with tls.mode off")
	}
	c := dial(t, srv)
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"how":"env"}`)); err != nil {
		t.Fatal(err)
	}
	var env map[string]*string
	if err := json.Unmarshal([]byte(read(t, c)), &env); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_CA_BUNDLE", "WSGATE_CA_BUNDLE", "WSGATE_EXECUTE_API_HOST", "WSGATE_EXECUTE_API_ADDR"} {
		if env[k] != nil { // the others may come from the test's own environment
			t.Errorf("handler env %s=%q with tls.mode off", k, *env[k])
		}
	}

	const functions = "functions:\n  F: { runtime: %s, handler: app.handler, codeUri: . }\n"
	for _, tc := range []struct {
		mode, runtime string
		warned        bool
	}{
		{"off", "python3.11", true},
		{"off", "nodejs20.x", true},
		{"off", "provided.al2023", false}, // its own runtime client: nothing to route
		{"auto", "python3.11", false},
	} {
		cfg, err := server.ParseConfig([]byte(interopConfig + "tls: { mode: \"" + tc.mode + "\" }\n" + fmt.Sprintf(functions, tc.runtime)))
		if err != nil {
			t.Fatal(err)
		}
		w := strings.Join(cfg.Warnings(), "\n")
		if got := strings.Contains(w, "https://local.execute-api.us-east-1.amazonaws.com/dev"); got != tc.warned {
			t.Errorf("tls.mode %s, runtime %s: warned %v, want %v: %q", tc.mode, tc.runtime, got, tc.warned, w)
		}
	}
}

// writeCertFiles issues a leaf for 127.0.0.1 from ca into certFile and
// keyFile and returns it.
func writeCertFiles(t *testing.T, ca *tlsca.CA, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	c, err := ca.Issue([]string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	// Key first: a reader that sees the new certificate with the old key
	// keeps the old pair until the key arrives.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

// TestTLSCertFileReload: a configured certificate is served instead of the
// local CA's; replacing its files changes what new handshakes see while
// connections made before go on.
func TestTLSCertFileReload(t *testing.T) {
	ca, err := tlsca.Open(t.TempDir()) // stands in for the user's CA
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCertFiles(t, ca, certFile, keyFile)
	srv := startServer(t, tlsConfig(t, "tls: { certFile: "+certFile+", keyFile: "+keyFile+" }\n"))
	if srv.CACertPath() != "" {
		t.Fatal("the local CA is in use although certFile is configured")
	}
	pool := ca.Pool()
	served := func() *x509.Certificate {
		c, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	if !served().Equal(first) {
		t.Fatal("not serving certFile")
	}
	old, err := dialTLS(t, "wss://"+srv.Addr()+"/dev", pool, "")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, old, "before")

	second := writeCertFiles(t, ca, certFile, keyFile)
	testenv.Eventually(t, 10*time.Second, func() error {
		if !served().Equal(second) {
			return errors.New("new handshakes still see the old certificate")
		}
		return nil
	})
	echo(t, old, "after the reload, on the old connection")
	fresh, err := dialTLS(t, "wss://"+srv.Addr()+"/dev", pool, "")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, fresh, "new connection")
}

// TestTLSAWSClients: the AWS CLI v1 and v2 and boto3 call post-to-connection
// over https:// with AWS_CA_BUNDLE set to the local CA alone. The CLI's
// --data is fileb://, the form both CLI versions read as raw bytes.
func TestTLSAWSClients(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3 python3-boto3")
	clis := awsCLIs(t)
	srv := startServer(t, tlsConfig(t, ""))
	c, err := dialTLS(t, "wss://localhost:"+port(srv)+"/dev", rootPool(t, srv.CACertPath()), "")
	if err != nil {
		t.Fatal(err)
	}
	id := connectionIDs(t, srv, 1)[0]
	endpoint := "https://localhost:" + port(srv) + "/dev"
	home := t.TempDir()
	env := awsEnv(home, srv.CACertPath())
	for _, v := range []string{"v1", "v2"} {
		msg := filepath.Join(home, "msg-"+v)
		if err := os.WriteFile(msg, []byte("from the CLI "+v+" over https"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(clis[v], "apigatewaymanagementapi", "post-to-connection", "--endpoint-url", endpoint,
			"--connection-id="+id, "--data", "fileb://"+msg)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("CLI %s: %v\n%s", v, err, out)
		}
		if got := read(t, c); got != "from the CLI "+v+" over https" {
			t.Fatalf("client got %q", got)
		}
	}
	cmd := exec.Command(py, "-c", `import sys, boto3
boto3.client("apigatewaymanagementapi", endpoint_url=sys.argv[1]).post_to_connection(ConnectionId=sys.argv[2], Data=b"from boto3 over https")`,
		endpoint, id)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	if got := read(t, c); got != "from boto3 over https" {
		t.Fatalf("client got %q", got)
	}
	// The same call without the CA refuses the certificate: the bundle is
	// what made it work.
	cmd = exec.Command(clis["v2"], "apigatewaymanagementapi", "post-to-connection", "--endpoint-url", endpoint,
		"--connection-id="+id, "--data", "fileb://"+filepath.Join(home, "msg-v2"))
	cmd.Env = env[:len(env)-1]
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "SSL") {
		t.Fatalf("CLI v2 without AWS_CA_BUNDLE: %v\n%s", err, out)
	}
}

// awsEnv is the environment of an AWS CLI or SDK process with the test
// credentials, nothing of the user's (home is a fresh directory), and
// caBundle, last, as AWS_CA_BUNDLE.
func awsEnv(home, caBundle string) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_ACCESS_KEY_ID=AKIDLOCAL",
		"AWS_SECRET_ACCESS_KEY=change-me", "AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "creds"),
		"AWS_PAGER=", "AWS_CA_BUNDLE=" + caBundle}
}

func port(srv *server.Server) string {
	_, p, _ := net.SplitHostPort(srv.Addr())
	return p
}

// awsCLIs finds the AWS CLI v1 and v2 by their --version.
func awsCLIs(t *testing.T) map[string]string {
	t.Helper()
	clis := map[string]string{}
	for _, p := range []string{testenv.LookPath(t, "aws", "apt-get install -y awscli"), "/usr/bin/aws"} {
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(string(out), "aws-cli/1."):
			clis["v1"] = p
		case strings.HasPrefix(string(out), "aws-cli/2."):
			clis["v2"] = p
		}
	}
	for _, v := range []string{"v1", "v2"} {
		if clis[v] == "" {
			testenv.Missing(t, "AWS CLI "+v, map[string]string{"v1": "pip install awscli", "v2": "apt-get install -y awscli"}[v])
		}
	}
	return clis
}

// TestTLSCommandHandlerTrustsLocalCA: a command handler calls the
// management API back at https://{requestContext.domainName}/{stage}, as
// real handlers build it, with urllib (SSL_CERT_FILE) and boto3
// (AWS_CA_BUNDLE), trusting the local CA through the bundle wsgate gives it
// and nothing else; a variable set in the function's env is left alone.
func TestTLSCommandHandlerTrustsLocalCA(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3 python3-boto3")
	handler, err := filepath.Abs("testdata/tls_handler.py")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	cmd := fmt.Sprintf("[%q, \"-u\", %q]", py, handler)
	srv := startServer(t, interopConfig+"stateDir: "+state+"\nroutes:\n"+
		"  $default: { integration: { type: command, timeoutMillis: 29000, command: "+cmd+" } }\n"+
		"  mine: { integration: { type: command, timeoutMillis: 29000, command: "+cmd+", env: { AWS_CA_BUNDLE: /my/bundle.pem } } }\n")
	c, err := dialTLS(t, "wss://localhost:"+port(srv)+"/dev", rootPool(t, srv.CACertPath()), "")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "https://localhost:" + port(srv) + "/dev"
	for _, how := range []string{"urllib", "boto3"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"how":"`+how+`"}`)); err != nil {
			t.Fatal(err)
		}
		if got, want := read(t, c), "via "+how+" to "+endpoint; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	bundle := filepath.Join(state, tlsca.BundleFile)
	route := map[string]string{"WSGATE_EXECUTE_API_HOST": "local.execute-api.us-east-1.amazonaws.com", "WSGATE_EXECUTE_API_ADDR": srv.Addr()}
	for _, tc := range []struct {
		name, msg string
		want      map[string]string
	}{
		{"wsgate's bundle", `{"how":"env"}`, map[string]string{"AWS_CA_BUNDLE": bundle, "NODE_EXTRA_CA_CERTS": bundle, "SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle, "WSGATE_CA_BUNDLE": bundle}},
		{"the function's own", `{"action":"mine","how":"env"}`, map[string]string{"AWS_CA_BUNDLE": "/my/bundle.pem", "NODE_EXTRA_CA_CERTS": bundle, "SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle, "WSGATE_CA_BUNDLE": bundle}},
	} {
		maps.Copy(tc.want, route)
		t.Run(tc.name, func(t *testing.T) {
			if err := c.WriteMessage(websocket.TextMessage, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(read(t, c)), &got); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("handler env %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"bad mode", "tls: { mode: sometimes }\n", `tls.mode: "sometimes": want auto, on or off`},
		{"cert without key", "tls: { certFile: a.crt }\n", "tls.certFile: certFile and keyFile go together"},
		{"cert with mode off", "tls: { mode: off, certFile: a.crt, keyFile: a.key }\n", "tls.certFile: set, but mode is off"},
		{"mode a number", "tls: { mode: 1 }\n", "tls.mode: want auto, on or off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := server.ParseConfig([]byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Paths are relative to the config file.
	dir := t.TempDir()
	p := filepath.Join(dir, "wsgate.yaml")
	if err := os.WriteFile(p, []byte("tls: { certFile: c/tls.crt, keyFile: /abs/tls.key }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != filepath.Join(dir, ".wsgate") || cfg.TLS.CertFile != filepath.Join(dir, "c/tls.crt") || cfg.TLS.KeyFile != "/abs/tls.key" || cfg.TLS.Mode != "auto" {
		t.Fatalf("resolved %q %q %q %q", cfg.StateDir, cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.Mode)
	}
	if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], "no credentials") {
		t.Fatalf("warnings %v", w)
	}
}

// TestTLSFunctionTrustsLocalCA: Python functions (functions:, run by
// wsgate's own runtime client) written for AWS post back to
// https://{domainName}/{stage} with boto3, trusting the local CA through
// the environment wsgate gives every function, and with the raw botocore
// recipe, whose URLLib3Session reads no variable (the runtime client points
// it at the bundle).
func TestTLSFunctionTrustsLocalCA(t *testing.T) {
	testenv.LookPath(t, "python3", "apt-get install -y python3 python3-boto3")
	code, err := filepath.Abs("testdata/tls_function")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, interopConfig+"stateDir: "+t.TempDir()+"\n"+
		"functions:\n  Post: { runtime: python3.11, handler: app.handler, codeUri: "+code+", timeoutMillis: 20000 }\n"+
		"  Recipe: { runtime: python3.11, handler: recipe.handler, codeUri: "+code+", timeoutMillis: 20000 }\n"+
		"routeSelectionExpression: $request.body.action\n"+
		"routes:\n  $default: { integration: { type: lambda, function: Post } }\n"+
		"  recipe: { integration: { type: lambda, function: Recipe } }\n")
	c, err := dialTLS(t, "wss://localhost:"+port(srv)+"/dev", rootPool(t, srv.CACertPath()), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, c), "function via https://localhost:"+port(srv)+"/dev"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"recipe"}`)); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, c), `"recipe via https://localhost:`+port(srv)+`/dev"`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
