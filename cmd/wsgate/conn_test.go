package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/client/clienttest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// cliEnv gives the CLI the gateway's key in the environment, as a user of
// the AWS CLI would, and nothing else: no shared files, no IMDS.
func cliEnv(t *testing.T) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           clienttest.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       clienttest.SecretAccessKey,
		"AWS_REGION":                  clienttest.Region,
		"AWS_DEFAULT_REGION":          clienttest.Region,
		"AWS_CONFIG_FILE":             filepath.Join(t.TempDir(), "none"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL",
		"WSGATE_MANAGEMENT_ENDPOINT", "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"} {
		t.Setenv(k, "") // restored when t ends
		os.Unsetenv(k)
	}
}

// wsgate runs the CLI's run with stdin as its standard input.
func wsgate(t *testing.T, in string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(in)
	defer func() { stdin = old }()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// mustWsgate runs the CLI and fails t unless it exits 0 with nothing on
// stderr; it returns stdout.
func mustWsgate(t *testing.T, in string, args ...string) string {
	t.Helper()
	out, errOut, code := wsgate(t, in, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("wsgate %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

type getOutput struct {
	ConnectedAt  string
	Identity     struct{ SourceIp, UserAgent string }
	LastActiveAt string
}

type listOutput struct {
	Connections []struct {
		ConnectionID string   `json:"connectionId"`
		ConnectedAt  string   `json:"connectedAt"`
		Groups       []string `json:"groups"`
		Identity     struct {
			UserAgent string `json:"userAgent"`
		} `json:"identity"`
	} `json:"connections"`
	NextToken *string `json:"nextToken"`
}

type membersOutput struct {
	ConnectionIDs []string `json:"connectionIds"`
	NextToken     *string  `json:"nextToken"`
}

const goneMessage = "The connection does not exist or is closed."

// TestConnCommands: post (--data, --data-file, stdin) reaches the client,
// get shows its identity, list paginates, delete closes it.
func TestConnCommands(t *testing.T) {
	cliEnv(t)
	g := clienttest.Start(t)
	ep := "--endpoint-url=" + g.Endpoint
	a, idA := g.Dial(t, "conn-test/a")
	b, idB := g.Dial(t, "conn-test/b")

	file := filepath.Join(t.TempDir(), "msg.json")
	if err := os.WriteFile(file, []byte(`{"from":"file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	posts := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"data", "", []string{"--data", "hello a"}, "hello a"},
		{"data file", "", []string{"--data-file", file}, `{"from":"file"}`},
		{"stdin", "from stdin", nil, "from stdin"},
		{"stdin dash", "dash stdin", []string{"--data-file", "-"}, "dash stdin"},
	}
	for _, tc := range posts {
		t.Run("post "+tc.name, func(t *testing.T) {
			args := append([]string{"conn", "post", ep, "--connection-id", idA}, tc.args...)
			if out := mustWsgate(t, tc.stdin, args...); out != "" {
				t.Fatalf("post printed %q", out)
			}
			if got := clienttest.Read(t, a); got != tc.want {
				t.Fatalf("client got %q, want %q", got, tc.want)
			}
		})
	}

	get := decode[getOutput](t, mustWsgate(t, "", "conn", "get", ep, "--connection-id", idA))
	if get.Identity.UserAgent != "conn-test/a" || get.Identity.SourceIp != "127.0.0.1" {
		t.Fatalf("get: %+v", get)
	}
	for _, ts := range []string{get.ConnectedAt, get.LastActiveAt} {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Fatalf("get: timestamp %q: %v", ts, err)
		}
	}

	// One page of one, then every page of one as one list.
	first := decode[listOutput](t, mustWsgate(t, "", "conn", "list", ep, "--max-results", "1"))
	if len(first.Connections) != 1 || first.NextToken == nil {
		t.Fatalf("list --max-results 1: %+v", first)
	}
	all := decode[listOutput](t, mustWsgate(t, "", "conn", "list", ep, "--max-results", "1", "--all"))
	var got []string
	for _, c := range all.Connections {
		got = append(got, c.ConnectionID)
	}
	if want := slices.Sorted(slices.Values([]string{idA, idB})); !slices.Equal(got, want) || all.NextToken != nil {
		t.Fatalf("list --all: ids %v next %v, want %v and no token", got, all.NextToken, want)
	}
	rest := decode[listOutput](t, mustWsgate(t, "", "conn", "list", ep, "--max-results", "1", "--next-token", *first.NextToken))
	if len(rest.Connections) != 1 || rest.Connections[0].ConnectionID != got[1] {
		t.Fatalf("list --next-token: %+v", rest)
	}

	if out := mustWsgate(t, "", "conn", "delete", ep, "--connection-id", idB); out != "" {
		t.Fatalf("delete printed %q", out)
	}
	if code := clienttest.ReadClose(t, b); code != websocket.CloseNormalClosure {
		t.Fatalf("deleted client closed with %d", code)
	}
	_, errOut, code := wsgate(t, "", "conn", "get", ep, "--connection-id", idB)
	if want := "\nAn error occurred (GoneException) when calling the GetConnection operation: " + goneMessage + "\n"; errOut != want || code != exitService {
		t.Fatalf("get of a deleted connection: exit %d, stderr %q; want %d, %q", code, errOut, exitService, want)
	}
}

// TestGroupCommands: publish reaches exactly the members, members lists
// them, leave removes one, join of an unknown id fails as the AWS CLI does.
func TestGroupCommands(t *testing.T) {
	cliEnv(t)
	g := clienttest.Start(t)
	t.Setenv("WSGATE_MANAGEMENT_ENDPOINT", g.Endpoint) // no --endpoint-url: the environment's
	var conns []*websocket.Conn
	var ids []string
	for range 3 {
		c, id := g.Dial(t, "")
		conns, ids = append(conns, c), append(ids, id)
	}
	for _, id := range ids[:2] {
		if out := mustWsgate(t, "", "group", "join", "--group", "room:1", "--connection-id", id); out != "" {
			t.Fatalf("join printed %q", out)
		}
	}

	file := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(file, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"data", "", []string{"--data", "to the room"}, "to the room"},
		{"data file", "", []string{"--data-file", file}, "from a file"},
		{"stdin", "from stdin", nil, "from stdin"},
	} {
		t.Run("publish "+tc.name, func(t *testing.T) {
			out := mustWsgate(t, tc.stdin, append([]string{"group", "publish", "--group", "room:1"}, tc.args...)...)
			if want := "{\n    \"delivered\": 2,\n    \"skipped\": 0\n}\n"; out != want {
				t.Fatalf("publish printed %q, want %q", out, want)
			}
			for _, c := range conns[:2] {
				if got := clienttest.Read(t, c); got != tc.want {
					t.Fatalf("member got %q, want %q", got, tc.want)
				}
			}
		})
	}
	// The non-member's next message is its own echo: no publish reached it.
	if err := conns[2].WriteMessage(websocket.TextMessage, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if got := clienttest.Read(t, conns[2]); got != "mine" {
		t.Fatalf("non-member got %q", got)
	}

	want := slices.Sorted(slices.Values(ids[:2]))
	for _, args := range [][]string{{}, {"--max-results", "1", "--all"}} {
		m := decode[membersOutput](t, mustWsgate(t, "", append([]string{"group", "members", "--group", "room:1"}, args...)...))
		if !slices.Equal(m.ConnectionIDs, want) || m.NextToken != nil {
			t.Fatalf("members %v: %+v, want %v", args, m, want)
		}
	}
	if m := decode[membersOutput](t, mustWsgate(t, "", "group", "members", "--group", "room:1", "--max-results", "1")); len(m.ConnectionIDs) != 1 || m.NextToken == nil {
		t.Fatalf("members --max-results 1: %+v", m)
	}

	mustWsgate(t, "", "group", "leave", "--group", "room:1", "--connection-id", ids[0])
	if m := decode[membersOutput](t, mustWsgate(t, "", "group", "members", "--group", "room:1")); !slices.Equal(m.ConnectionIDs, ids[1:2]) {
		t.Fatalf("members after leave: %+v", m)
	}
	if out := mustWsgate(t, "", "group", "members", "--group", "empty"); out != "{\n    \"connectionIds\": []\n}\n" {
		t.Fatalf("members of an empty group: %q", out)
	}

	// The listing shows each connection's groups.
	l := decode[listOutput](t, mustWsgate(t, "", "conn", "list"))
	groups := map[string][]string{}
	for _, c := range l.Connections {
		groups[c.ConnectionID] = c.Groups
	}
	if !slices.Equal(groups[ids[1]], []string{"room:1"}) || len(groups[ids[0]]) != 0 || len(l.Connections) != 3 {
		t.Fatalf("listing groups: %v", groups)
	}

	_, errOut, code := wsgate(t, "", "group", "join", "--group", "room:1", "--connection-id", "AAAAAAAAAAAAAAA=")
	if want := "\nAn error occurred (GoneException) when calling the JoinGroup operation: " + goneMessage + "\n"; errOut != want || code != exitService {
		t.Fatalf("join of an unknown id: exit %d, stderr %q; want %d, %q", code, errOut, exitService, want)
	}
	_, errOut, code = wsgate(t, "", "group", "publish", "--group", "no/slash", "--data", "x")
	if !strings.HasPrefix(errOut, "\nAn error occurred (BadRequestException) when calling the PublishToGroup operation: ") || code != exitService {
		t.Fatalf("bad group name: exit %d, stderr %q", code, errOut)
	}
}

// TestAWSCLIErrorForm: the AWS CLI and wsgate print the same error line for
// the same failure, and the same document for get-connection.
func TestAWSCLIErrorForm(t *testing.T) {
	aws := testenvLookAWS(t)
	cliEnv(t)
	g := clienttest.Start(t)
	_, id := g.Dial(t, "compare/1")

	awsCLI := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"apigatewaymanagementapi"}, append(args, "--endpoint-url", g.Endpoint)...)...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			t.Fatalf("aws %v: %v", args, err)
		}
		return o.String(), e.String()
	}

	_, awsErr := awsCLI("post-to-connection", "--connection-id", "AAAAAAAAAAAAAAA=", "--data", "x")
	_, ourErr, code := wsgate(t, "", "conn", "post", "--endpoint-url", g.Endpoint, "--connection-id", "AAAAAAAAAAAAAAA=", "--data", "x")
	if ourErr != awsErr || code != exitService {
		t.Fatalf("error line: wsgate %q (exit %d), aws CLI %q", ourErr, code, awsErr)
	}

	awsOut, _ := awsCLI("get-connection", "--connection-id", id)
	ourOut := mustWsgate(t, "", "conn", "get", "--endpoint-url", g.Endpoint, "--connection-id", id)
	if ourOut != awsOut {
		t.Fatalf("get-connection: wsgate printed\n%s\naws CLI printed\n%s", ourOut, awsOut)
	}
}

func testenvLookAWS(t *testing.T) string {
	return testenv.LookPath(t, "aws", "apt-get install -y awscli")
}
