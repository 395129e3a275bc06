package server_test

import (
	"os/exec"
	"testing"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestBasePathsAWSClients: behind a base path over TLS, as a custom
// domain's clients are, a WebSocket client connects at wss://HOST/chat and
// the AWS CLI v1 and v2 and boto3 reach it at the endpoint a handler on
// AWS uses for a custom domain, https://HOST/chat (no stage).
func TestBasePathsAWSClients(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install -y python3 python3-boto3")
	clis := awsCLIs(t)
	srv := startServer(t, tlsConfig(t, "basePaths: { \"/chat\": dev }\n"))
	c, err := dialTLS(t, "wss://localhost:"+port(srv)+"/chat", rootPool(t, srv.CACertPath()), "")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, c, "mapped")
	id := connectionIDs(t, srv, 1)[0]
	endpoint := "https://localhost:" + port(srv) + "/chat"
	env := awsEnv(t.TempDir(), srv.CACertPath())
	for _, v := range []string{"v1", "v2"} {
		cmd := exec.Command(clis[v], "apigatewaymanagementapi", "post-to-connection", "--endpoint-url", endpoint,
			"--connection-id="+id, "--data", "from the CLI "+v, "--cli-binary-format", "raw-in-base64-out")
		if v == "v1" {
			cmd.Args = cmd.Args[:len(cmd.Args)-2] // v1 sends --data as it is
		}
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("CLI %s: %v\n%s", v, err, out)
		}
		if got := read(t, c); got != "from the CLI "+v {
			t.Fatalf("client got %q", got)
		}
	}
	cmd := exec.Command(py, "-c", `import sys, boto3
c = boto3.client("apigatewaymanagementapi", endpoint_url=sys.argv[1])
c.post_to_connection(ConnectionId=sys.argv[2], Data=b"from boto3")
print(c.get_connection(ConnectionId=sys.argv[2])["Identity"]["SourceIp"])`, endpoint, id)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "127.0.0.1\n" {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	if got := read(t, c); got != "from boto3" {
		t.Fatalf("client got %q", got)
	}
}
