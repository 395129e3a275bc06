package main

// The management CLI: wsgate conn ... and wsgate group ... call the
// management API as the AWS CLI's apigatewaymanagementapi commands do, and
// fail the way it fails: the same error line on stderr and AWS CLI v2's exit
// statuses.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/mattn/go-isatty"

	"github.com/wsgate/wsgate/client"
)

// Exit statuses, AWS CLI v2's
// (https://docs.aws.amazon.com/cli/latest/userguide/cli-chap-returncodes.html).
const (
	exitUsage   = 252 // the command line could not be parsed
	exitConfig  = 253 // configuration or credentials are missing or invalid
	exitService = 254 // the service answered with an error
	exitOther   = 255 // anything else: connection refused, a bad response
)

// stdin is what post and publish send when neither --data nor --data-file
// is given. Tests replace it.
var stdin io.Reader = os.Stdin

// mgmtCommand is one subcommand of conn or group.
type mgmtCommand struct {
	name    string
	args    string // the synopsis of the command's own flags
	summary string
	// op is the operation name the AWS CLI would print in an error line.
	op string
	// required names the string flags that must be given.
	required []string
	// setup declares the command's own flags on fs. The function it returns
	// runs once they are parsed and checked, before any AWS configuration
	// is loaded, and returns the call to make, or a usageError (exit 252).
	setup func(fs *flag.FlagSet) func() (mgmtCall, error)
}

// mgmtCall is what a command does with the client.
type mgmtCall func(ctx context.Context, c *client.Client, stdout io.Writer) error

// ready is the setup result of a command with nothing to prepare.
func ready(call mgmtCall) func() (mgmtCall, error) {
	return func() (mgmtCall, error) { return call, nil }
}

// usageError is a command line that parsed but cannot run: a missing flag,
// conflicting flags, an unreadable --data-file.
type usageError string

func (e usageError) Error() string { return string(e) }

var connCommands = []mgmtCommand{
	{name: "post", args: "--connection-id ID [--data STRING | --data-file PATH]", summary: "send a message to one connection (stdin when no data flag)",
		op: "PostToConnection", required: []string{"connection-id"}, setup: setupPost},
	{name: "get", args: "--connection-id ID", summary: "show a connection: connectedAt, identity, lastActiveAt",
		op: "GetConnection", required: []string{"connection-id"}, setup: setupGet},
	{name: "delete", args: "--connection-id ID", summary: "close a connection",
		op: "DeleteConnection", required: []string{"connection-id"}, setup: setupDelete},
	{name: "list", args: "[--max-results N] [--next-token T] [--all]", summary: "list open connections with their groups",
		op: "ListConnections", setup: setupList},
}

var groupCommands = []mgmtCommand{
	{name: "publish", args: "--group G [--data STRING | --data-file PATH]", summary: "send a message to every member (stdin when no data flag)",
		op: "PublishToGroup", required: []string{"group"}, setup: setupPublish},
	{name: "join", args: "--group G --connection-id ID", summary: "add a connection to a group",
		op: "JoinGroup", required: []string{"group", "connection-id"}, setup: setupMembership(true)},
	{name: "leave", args: "--group G --connection-id ID", summary: "remove a connection from a group",
		op: "LeaveGroup", required: []string{"group", "connection-id"}, setup: setupMembership(false)},
	{name: "members", args: "--group G [--max-results N] [--next-token T] [--all]", summary: "list a group's members",
		op: "GetGroupMembers", required: []string{"group"}, setup: setupMembers},
}

// connCommand runs wsgate conn post|get|delete|list.
func connCommand(args []string, stdout, stderr io.Writer) int {
	return runMgmt("conn", "the @connections API", connCommands, args, stdout, stderr)
}

// groupCommand runs wsgate group publish|join|leave|members.
func groupCommand(args []string, stdout, stderr io.Writer) int {
	return runMgmt("group", "groups and broadcast", groupCommands, args, stdout, stderr)
}

const commonFlagsHelp = `Common flags:
  --endpoint-url URL   management endpoint with the stage, e.g. http://127.0.0.1:8080/dev
                       (default: $WSGATE_MANAGEMENT_ENDPOINT, $AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI)
  --region REGION      signing region (default: AWS_REGION, the profile's, else us-east-1)
  --profile NAME       shared config profile for credentials and region
`

func mgmtUsage(group, what string, cmds []mgmtCommand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wsgate %s: %s\n\nUsage:\n", group, what)
	for _, c := range cmds {
		fmt.Fprintf(&b, "  wsgate %s %s %s\n      %s\n", group, c.name, c.args, c.summary)
	}
	b.WriteString("\n" + commonFlagsHelp + "\nRun 'wsgate " + group + " COMMAND -h' for a command's flags.\n")
	return b.String()
}

func runMgmt(group, what string, cmds []mgmtCommand, args []string, stdout, stderr io.Writer) int {
	help := mgmtUsage(group, what, cmds)
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, help)
		return 0
	}
	for _, cmd := range cmds {
		if cmd.name == args[0] {
			return cmd.run(group, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "wsgate %s: unknown command %q\n\n%s", group, args[0], help)
	return exitUsage
}

func (cmd mgmtCommand) run(group string, args []string, stdout, stderr io.Writer) int {
	name := "wsgate " + group + " " + cmd.name
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s %s [--endpoint-url URL] [--region R] [--profile P]\n\nFlags:\n", name, cmd.args)
		fs.PrintDefaults()
	}
	// The SDK's log lines are not the AWS CLI's; failures are reported below.
	opts := client.Options{Logger: logging.Nop{}}
	fs.StringVar(&opts.EndpointURL, "endpoint-url", "", "management endpoint with the stage, e.g. http://127.0.0.1:8080/dev (default: $WSGATE_MANAGEMENT_ENDPOINT, $AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI)")
	fs.StringVar(&opts.Region, "region", "", "signing region (default: AWS_REGION, the profile's region, else us-east-1)")
	fs.StringVar(&opts.Profile, "profile", "", "shared config profile (default: AWS_PROFILE)")
	prepare := cmd.setup(fs)
	if status, done := parseFlags(fs, args, stdout, stderr, exitUsage); done {
		return status
	}
	if fs.NArg() > 0 {
		return usageFailure(stderr, name, fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if opts.EndpointURL == "" {
		opts.EndpointURL = firstEnv("WSGATE_MANAGEMENT_ENDPOINT", "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
	}
	if opts.EndpointURL == "" {
		return usageFailure(stderr, name, fs, "--endpoint-url is required (or set WSGATE_MANAGEMENT_ENDPOINT)")
	}
	for _, r := range cmd.required {
		if fs.Lookup(r).Value.String() == "" {
			return usageFailure(stderr, name, fs, "--"+r+" is required")
		}
	}
	call, err := prepare()
	var ue usageError
	if errors.As(err, &ue) {
		return usageFailure(stderr, name, fs, ue.Error())
	}
	if err != nil {
		return reportFailure(stderr, cmd.op, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := client.New(ctx, opts)
	if errors.Is(err, client.ErrInvalidEndpoint) {
		return usageFailure(stderr, name, fs, err.Error())
	}
	if err != nil {
		var noProfile config.SharedConfigProfileNotExistError
		if errors.As(err, &noProfile) {
			fmt.Fprintf(stderr, "\nThe config profile (%s) could not be found\n", noProfile.Profile)
			return exitConfig
		}
		fmt.Fprintf(stderr, "\n%s: %v\n", name, err)
		return exitConfig
	}
	// Credentials are resolved before the call so that their absence
	// reads and exits as the AWS CLI's does (253), whichever client runs;
	// the chain's own error follows, since it says which source failed.
	if _, err := c.Config().Credentials.Retrieve(ctx); err != nil {
		fmt.Fprintf(stderr, "Unable to locate credentials. You can configure credentials by running \"aws configure\".\n(%v)\n", err)
		return exitConfig
	}
	if err := call(ctx, c, stdout); err != nil {
		return reportFailure(stderr, cmd.op, err)
	}
	return 0
}

func usageFailure(stderr io.Writer, name string, fs *flag.FlagSet, msg string) int {
	fmt.Fprintf(stderr, "%s: %s\n", name, msg)
	fs.Usage()
	return exitUsage
}

// reportFailure prints err as the AWS CLI prints a failed call, blank line
// first, and returns the exit status.
func reportFailure(stderr io.Writer, op string, err error) int {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		fmt.Fprintf(stderr, "\nAn error occurred (%s) when calling the %s operation: %s\n", ae.ErrorCode(), op, ae.ErrorMessage())
		return exitService
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "\nCould not connect to the endpoint URL: %q\n", ue.URL)
		return exitOther
	}
	fmt.Fprintf(stderr, "\n%v\n", err)
	return exitOther
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// dataFlags declares --data and --data-file; the returned function reads
// the message: the string, the file, or stdin when neither is given.
func dataFlags(fs *flag.FlagSet) func() ([]byte, error) {
	data := fs.String("data", "", "the message")
	file := fs.String("data-file", "", "read the message from a file ('-' for stdin)")
	return func() ([]byte, error) {
		var dataSet bool
		fs.Visit(func(f *flag.Flag) { dataSet = dataSet || f.Name == "data" })
		switch {
		case dataSet && *file != "":
			return nil, usageError("--data and --data-file are mutually exclusive")
		case dataSet:
			return []byte(*data), nil
		case *file != "" && *file != "-":
			b, err := os.ReadFile(*file)
			if err != nil {
				return nil, usageError(fmt.Sprintf("--data-file: %v", err))
			}
			return b, nil
		}
		if f, ok := stdin.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			return nil, usageError("no message: give --data or --data-file, or pipe it to stdin")
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return b, nil
	}
}

func setupPost(fs *flag.FlagSet) func() (mgmtCall, error) {
	id := fs.String("connection-id", "", "the connection (required)")
	data := dataFlags(fs)
	return func() (mgmtCall, error) {
		b, err := data()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client, _ io.Writer) error {
			_, err := c.Management().PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: id, Data: b})
			return err
		}, nil
	}
}

// isoMillis is how the management API writes timestamps; the AWS CLI
// (v1, cli_timestamp_format none) prints them as received.
const isoMillis = "2006-01-02T15:04:05.000Z"

func formatTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(isoMillis)
}

func setupGet(fs *flag.FlagSet) func() (mgmtCall, error) {
	id := fs.String("connection-id", "", "the connection (required)")
	return ready(func(ctx context.Context, c *client.Client, stdout io.Writer) error {
		out, err := c.Management().GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: id})
		if err != nil {
			return err
		}
		// The AWS CLI's shape: the SDK model's member names.
		type identity struct {
			SourceIP  string `json:"SourceIp"`
			UserAgent string `json:"UserAgent"`
		}
		var ident identity
		if out.Identity != nil {
			ident = identity{aws.ToString(out.Identity.SourceIp), aws.ToString(out.Identity.UserAgent)}
		}
		return printJSON(stdout, struct {
			ConnectedAt  string   `json:"ConnectedAt"`
			Identity     identity `json:"Identity"`
			LastActiveAt string   `json:"LastActiveAt"`
		}{formatTime(out.ConnectedAt), ident, formatTime(out.LastActiveAt)})
	})
}

func setupDelete(fs *flag.FlagSet) func() (mgmtCall, error) {
	id := fs.String("connection-id", "", "the connection (required)")
	return ready(func(ctx context.Context, c *client.Client, _ io.Writer) error {
		_, err := c.Management().DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: id})
		return err
	})
}

// pageFlags declares --max-results, --next-token and --all.
type pageFlags struct {
	maxResults *int
	nextToken  *string
	all        *bool
}

func declarePageFlags(fs *flag.FlagSet) pageFlags {
	return pageFlags{
		maxResults: fs.Int("max-results", 0, "page size, 1 to 1000 (default: the server's, 100)"),
		nextToken:  fs.String("next-token", "", "start at this page (the nextToken of the previous one)"),
		all:        fs.Bool("all", false, "read every page and print them as one"),
	}
}

// walk reads one page, or with --all every page from --next-token on as
// one list; page returns a page's items and next token.
func walk[T any](ctx context.Context, pf pageFlags, page func(ctx context.Context, token string) ([]T, string, error)) ([]T, string, error) {
	token := *pf.nextToken
	items, next, err := page(ctx, token)
	for *pf.all && err == nil && next != "" && next != token { // a repeated token would loop
		var more []T
		token = next
		more, next, err = page(ctx, token)
		items = append(items, more...)
	}
	return items, next, err
}

// connectionJSON is a listing entry as the API sends it, times included.
type connectionJSON struct {
	ConnectionID string          `json:"connectionId"`
	ConnectedAt  string          `json:"connectedAt"`
	LastActiveAt string          `json:"lastActiveAt"`
	Identity     client.Identity `json:"identity"`
	Groups       []string        `json:"groups"`
}

func setupList(fs *flag.FlagSet) func() (mgmtCall, error) {
	pf := declarePageFlags(fs)
	return ready(func(ctx context.Context, c *client.Client, stdout io.Writer) error {
		items, next, err := walk(ctx, pf, func(ctx context.Context, token string) ([]connectionJSON, string, error) {
			p, err := c.ListConnections(ctx, *pf.maxResults, token)
			out := make([]connectionJSON, len(p.Connections))
			for i, in := range p.Connections {
				groups := in.Groups
				if groups == nil {
					groups = []string{}
				}
				out[i] = connectionJSON{in.ConnectionID, formatTime(&in.ConnectedAt), formatTime(&in.LastActiveAt), in.Identity, groups}
			}
			return out, p.NextToken, err
		})
		if err != nil {
			return err
		}
		return printJSON(stdout, struct {
			Connections []connectionJSON `json:"connections"`
			NextToken   string           `json:"nextToken,omitempty"`
		}{items, next})
	})
}

func setupPublish(fs *flag.FlagSet) func() (mgmtCall, error) {
	group := fs.String("group", "", "the group (required)")
	data := dataFlags(fs)
	return func() (mgmtCall, error) {
		b, err := data()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client, stdout io.Writer) error {
			d, err := c.Publish(ctx, *group, b)
			if err != nil {
				return err
			}
			return printJSON(stdout, d)
		}, nil
	}
}

func setupMembership(join bool) func(fs *flag.FlagSet) func() (mgmtCall, error) {
	return func(fs *flag.FlagSet) func() (mgmtCall, error) {
		group := fs.String("group", "", "the group (required)")
		id := fs.String("connection-id", "", "the connection (required)")
		return ready(func(ctx context.Context, c *client.Client, _ io.Writer) error {
			if join {
				return c.Join(ctx, *group, *id)
			}
			return c.Leave(ctx, *group, *id)
		})
	}
}

func setupMembers(fs *flag.FlagSet) func() (mgmtCall, error) {
	group := fs.String("group", "", "the group (required)")
	pf := declarePageFlags(fs)
	return ready(func(ctx context.Context, c *client.Client, stdout io.Writer) error {
		ids, next, err := walk(ctx, pf, func(ctx context.Context, token string) ([]string, string, error) {
			p, err := c.Members(ctx, *group, *pf.maxResults, token)
			return p.ConnectionIDs, p.NextToken, err
		})
		if err != nil {
			return err
		}
		if ids == nil {
			ids = []string{}
		}
		return printJSON(stdout, client.MembersPage{ConnectionIDs: ids, NextToken: next})
	})
}

// printJSON prints v as the AWS CLI prints output: four-space indent, no
// HTML escaping.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
