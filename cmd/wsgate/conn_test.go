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

	"github.com/wsgate/wsgate/internal/clienttest"
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

func decodeOutput[T any](t *testing.T, s string) T {
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

	get := decodeOutput[getOutput](t, mustWsgate(t, "", "conn", "get", ep, "--connection-id", idA))
	if get.Identity.UserAgent != "conn-test/a" || get.Identity.SourceIp != "127.0.0.1" {
		t.Fatalf("get: %+v", get)
	}
	for _, ts := range []string{get.ConnectedAt, get.LastActiveAt} {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Fatalf("get: timestamp %q: %v", ts, err)
		}
	}

	// One page of one, then every page of one as one list.
	first := decodeOutput[listOutput](t, mustWsgate(t, "", "conn", "list", ep, "--max-results", "1"))
	if len(first.Connections) != 1 || first.NextToken == nil {
		t.Fatalf("list --max-results 1: %+v", first)
	}
	all := decodeOutput[listOutput](t, mustWsgate(t, "", "conn", "list", ep, "--max-results", "1", "--all"))
	var got []string
	for _, c := range all.Connections {
		got = append(got, c.ConnectionID)
	}
	if want := slices.Sorted(slices.Values([]string{idA, idB})); !slices.Equal(got, want) || all.NextToken != nil {
		t.Fatalf("list --all: ids %v next %v, want %v and no token", got, all.NextToken, want)
	}
	rest := decodeOutput[listOutput](t, mustWsgate(t, "", "conn", "list", ep, "--max-results", "1", "--next-token", *first.NextToken))
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
		m := decodeOutput[membersOutput](t, mustWsgate(t, "", append([]string{"group", "members", "--group", "room:1"}, args...)...))
		if !slices.Equal(m.ConnectionIDs, want) || m.NextToken != nil {
			t.Fatalf("members %v: %+v, want %v", args, m, want)
		}
	}
	if m := decodeOutput[membersOutput](t, mustWsgate(t, "", "group", "members", "--group", "room:1", "--max-results", "1")); len(m.ConnectionIDs) != 1 || m.NextToken == nil {
		t.Fatalf("members --max-results 1: %+v", m)
	}

	mustWsgate(t, "", "group", "leave", "--group", "room:1", "--connection-id", ids[0])
	if m := decodeOutput[membersOutput](t, mustWsgate(t, "", "group", "members", "--group", "room:1")); !slices.Equal(m.ConnectionIDs, ids[1:2]) {
		t.Fatalf("members after leave: %+v", m)
	}
	if out := mustWsgate(t, "", "group", "members", "--group", "empty"); out != "{\n    \"connectionIds\": []\n}\n" {
		t.Fatalf("members of an empty group: %q", out)
	}

	// The listing shows each connection's groups.
	l := decodeOutput[listOutput](t, mustWsgate(t, "", "conn", "list"))
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
	// Over the limit, by both clients: the SDK's (post) and this one's (publish).
	big := strings.Repeat("x", 131073)
	for _, args := range [][]string{{"conn", "post", "--connection-id", ids[1]}, {"group", "publish", "--group", "room:1"}} {
		op := map[string]string{"conn": "PostToConnection", "group": "PublishToGroup"}[args[0]]
		_, errOut, code := wsgate(t, big, args...)
		want := "\nAn error occurred (PayloadTooLargeException) when calling the " + op + " operation: "
		if !strings.HasPrefix(errOut, want) || len(errOut) == len(want)+1 || code != exitService {
			t.Fatalf("%v of 131073 bytes: exit %d, stderr %q; want %q and a message", args, code, errOut, want)
		}
	}
	_, errOut, code = wsgate(t, "", "group", "publish", "--group", "no/slash", "--data", "x")
	if !strings.HasPrefix(errOut, "\nAn error occurred (BadRequestException) when calling the PublishToGroup operation: ") || code != exitService {
		t.Fatalf("bad group name: exit %d, stderr %q", code, errOut)
	}
}

// TestAWSCLIErrorForm: the AWS CLI and wsgate print the same lines for
// the same failures, and the same document for get-connection.
func TestAWSCLIErrorForm(t *testing.T) {
	aws := testenv.LookPath(t, "aws", "apt-get install -y awscli")
	cliEnv(t)
	g := clienttest.Start(t)
	_, id := g.Dial(t, "compare/1")
	refused := refusedEndpoint(t)

	awsCLI := func(t *testing.T, endpoint string, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"apigatewaymanagementapi"}, append(args, "--endpoint-url", endpoint)...)...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			t.Fatalf("aws %v: %v", args, err)
		}
		return o.String(), e.String()
	}

	tests := []struct {
		name     string
		endpoint string
		env      map[string]string // set for both CLIs; "" unsets
		code     int
		// firstLine compares only the first line of stderr: the AWS CLI
		// signs other headers, so the canonical request after a signature
		// error's line differs; wsgate adds the chain's error to the
		// credentials line.
		firstLine bool
	}{
		{"gone", g.Endpoint, nil, exitService, false},
		{"connection refused", refused, nil, exitOther, false},
		{"no credentials", g.Endpoint, map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, exitConfig, true},
		{"unknown profile", g.Endpoint, map[string]string{"AWS_PROFILE": "nosuchprofile"}, exitConfig, false},
		{"wrong secret", g.Endpoint, map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}, exitService, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
				if v == "" {
					os.Unsetenv(k)
				}
			}
			args := []string{"--connection-id", "AAAAAAAAAAAAAAA=", "--data", "x"}
			_, awsErr := awsCLI(t, tc.endpoint, append([]string{"post-to-connection"}, args...)...)
			_, ourErr, code := wsgate(t, "", append([]string{"conn", "post", "--endpoint-url", tc.endpoint}, args...)...)
			if tc.firstLine {
				ourErr, _, _ = strings.Cut(strings.TrimPrefix(ourErr, "\n"), "\n")
				awsErr, _, _ = strings.Cut(strings.TrimPrefix(awsErr, "\n"), "\n")
			}
			if ourErr != awsErr || code != tc.code {
				t.Fatalf("wsgate exit %d, stderr %q; want exit %d and the aws CLI's %q", code, ourErr, tc.code, awsErr)
			}
		})
	}

	awsOut, _ := awsCLI(t, g.Endpoint, "get-connection", "--connection-id="+id)
	ourOut := mustWsgate(t, "", "conn", "get", "--endpoint-url", g.Endpoint, "--connection-id", id)
	if ourOut != awsOut {
		t.Fatalf("get-connection: wsgate printed\n%s\naws CLI printed\n%s", ourOut, awsOut)
	}
}

// refusedEndpoint returns an endpoint on a loopback port that refuses
// connections for the whole test (testenv.RefusedAddr). A port found free
// and closed again was taken by another test while the AWS CLI retried:
// the CLI then saw "Connection was closed", wsgate "Could not connect".
func refusedEndpoint(t *testing.T) string {
	t.Helper()
	return "http://" + testenv.RefusedAddr(t) + "/dev"
}

// TestUsage: help, and usage errors (252) found before any configuration
// is loaded: there are no credentials here.
func TestUsage(t *testing.T) {
	cliEnv(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		os.Unsetenv(k) // cliEnv's t.Setenv restores them
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring, "" for empty
		stderr string // a substring, "" for empty
	}{
		{"conn help", []string{"conn", "-h"}, 0, "wsgate conn post --connection-id", ""},
		{"group help", []string{"group", "--help"}, 0, "wsgate group members --group", ""},
		{"post help", []string{"conn", "post", "-h"}, 0, "-data-file", ""},
		{"no subcommand", []string{"group"}, exitUsage, "", "wsgate group publish"},
		{"unknown subcommand", []string{"conn", "send"}, exitUsage, "", `unknown command "send"`},
		{"unknown flag", []string{"conn", "get", "--bogus"}, exitUsage, "", "flag provided but not defined: -bogus"},
		{"no endpoint", []string{"conn", "get", "--connection-id", "x"}, exitUsage, "", "--endpoint-url is required"},
		{"no connection id", []string{"conn", "get", "--endpoint-url", "http://127.0.0.1:1/dev"}, exitUsage, "", "--connection-id is required"},
		{"no group", []string{"group", "members", "--endpoint-url", "http://127.0.0.1:1/dev"}, exitUsage, "", "--group is required"},
		{"data and data file", []string{"conn", "post", "--endpoint-url", "http://127.0.0.1:1/dev", "--connection-id", "x", "--data", "a", "--data-file", "f"}, exitUsage, "", "mutually exclusive"},
		{"missing data file", []string{"group", "publish", "--endpoint-url", "http://127.0.0.1:1/dev", "--group", "g", "--data-file", "/nonexistent/msg"}, exitUsage, "", "no such file"},
		{"extra argument", []string{"conn", "list", "--endpoint-url", "http://127.0.0.1:1/dev", "more"}, exitUsage, "", `unexpected argument "more"`},
		{"bad endpoint", []string{"conn", "list", "--endpoint-url", "ftp://x/dev"}, exitUsage, "", "want http:// or https://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := wsgate(t, "", tc.args...)
			if code != tc.code || (tc.stdout == "") != (out == "") || !strings.Contains(out, tc.stdout) ||
				(tc.stderr == "") != (errOut == "") || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", code, out, errOut, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestProfileAndEnvironment: credentials and region from a named profile
// of the shared files, the endpoint from
// AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI.
func TestProfileAndEnvironment(t *testing.T) {
	cliEnv(t)
	g := clienttest.Start(t)
	_, id := g.Dial(t, "")
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		os.Unsetenv(k) // cliEnv's t.Setenv restores them
	}
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	text := "[gw]\naws_access_key_id = " + clienttest.AccessKeyID + "\naws_secret_access_key = " + clienttest.SecretAccessKey + "\n"
	if err := os.WriteFile(creds, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte("[profile gw]\nregion = "+clienttest.Region+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", conf)
	t.Setenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", g.Endpoint)

	l := decodeOutput[listOutput](t, mustWsgate(t, "", "conn", "list", "--profile", "gw"))
	if len(l.Connections) != 1 || l.Connections[0].ConnectionID != id {
		t.Fatalf("list with --profile: %+v", l)
	}
	// Without the profile there are no credentials at all.
	if _, errOut, code := wsgate(t, "", "conn", "list"); code != exitConfig || !strings.HasPrefix(errOut, "Unable to locate credentials.") {
		t.Fatalf("list without credentials: exit %d, stderr %q", code, errOut)
	}
}
