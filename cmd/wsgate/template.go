package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/template"
)

// templateFlags are the flags that run or print a template: serve's
// --template and the import command share them.
type templateFlags struct {
	path      string
	params    paramFlag
	stage     string
	api       string
	region    string
	accountID string
	stackName string
	dynamodb  string

	res  *template.Result // set by translate
	file string           // the template file read, set by translate
}

// paramFlag collects --parameter-overrides: Key=Value pairs, several per
// flag separated by spaces (as sam deploy takes them) or the flag
// repeated; ParameterKey=K,ParameterValue=V is read too.
type paramFlag map[string]string

func (p paramFlag) String() string { return "" }

func (p paramFlag) Set(s string) error {
	for _, pair := range strings.Fields(s) {
		if k, ok := strings.CutPrefix(pair, "ParameterKey="); ok {
			key, val, found := strings.Cut(k, ",ParameterValue=")
			if !found {
				return fmt.Errorf("%q: want ParameterKey=K,ParameterValue=V", pair)
			}
			p[key] = val
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q: want Key=Value", pair)
		}
		p[k] = v
	}
	return nil
}

func addTemplateFlags(fs *flag.FlagSet, withPath bool) *templateFlags {
	tf := &templateFlags{params: paramFlag{}}
	if withPath {
		fs.StringVar(&tf.path, "template", "", "run a SAM/CloudFormation template, a cdk.out directory or template instead of --config")
	}
	fs.Var(tf.params, "parameter-overrides", "template parameters: Key=Value (several space-separated, or repeat the flag)")
	fs.StringVar(&tf.stage, "stage", "", "the template's stage to run, when it has several")
	fs.StringVar(&tf.api, "api", "", "logical id of the WebSocket API to run, when the template has several")
	fs.StringVar(&tf.region, "region", "us-east-1", "AWS::Region of the template, and wsgate's region")
	fs.StringVar(&tf.accountID, "account-id", "000000000000", "AWS::AccountId of the template")
	fs.StringVar(&tf.stackName, "stack-name", "wsgate", "AWS::StackName of the template")
	fs.StringVar(&tf.dynamodb, "dynamodb-endpoint", os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"),
		"DynamoDB endpoint for the template's tables and streams (default $AWS_ENDPOINT_URL_DYNAMODB)")
	return tf
}

// translate reads and translates the template, and writes the functions'
// inline code beside it (template.InlineDir). With absolute set, codeUri
// paths are made absolute, so the config works from any directory.
func (tf *templateFlags) translate(absolute bool) (*template.File, error) {
	f, err := template.Read(tf.path)
	if err != nil {
		return nil, err
	}
	tf.file = f.Path
	opts := template.Options{
		Parameters: tf.params, Stage: tf.stage, API: tf.api, Region: tf.region,
		AccountID: tf.accountID, StackName: tf.stackName, DynamoDBEndpoint: tf.dynamodb,
		Getenv: os.LookupEnv,
	}
	if absolute {
		if opts.BaseDir, err = filepath.Abs(f.Dir); err != nil {
			return nil, err
		}
	}
	tf.res, err = template.Translate(f, opts)
	if err != nil {
		return nil, err
	}
	// Inline code runs from files, for serve and for the config import
	// prints alike.
	if err := tf.res.WriteInlineCode(f.Dir); err != nil {
		return nil, err
	}
	return f, nil
}

// load translates the template and reads the result through the same
// parser as a --config file.
func (tf *templateFlags) load() (*server.Config, error) {
	f, err := tf.translate(true)
	if err != nil {
		return nil, err
	}
	b, err := tf.res.Marshal(filepath.Base(f.Path))
	if err != nil {
		return nil, err
	}
	cfg, err := server.ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("translated config: %w", err)
	}
	// A template has no management API keys; the caller's own are the
	// natural ones (the CLI and SDKs sign with them, and wsgate hands
	// the first credential to the functions it runs).
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if len(cfg.Credentials) == 0 && id != "" && secret != "" {
		cfg.Credentials = []gateway.Credential{{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN")}}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// watched names the file serve --watch reloads on: the template file
// (as found in a directory or cdk.out at the first translation), or the
// config file when no template is served.
func (tf *templateFlags) watched(configPath string) string {
	if tf.path == "" {
		return configPath
	}
	return tf.file
}

// summary says what the template runs.
func (tf *templateFlags) summary(w io.Writer) {
	r := tf.res
	c := &r.Config
	fmt.Fprintf(w, "%s (%s): stage %s\n", tf.path, r.Kind, cmp.Or(c.Stage, "dev"))
	keys := make([]string, 0, len(c.Routes))
	for k := range c.Routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		target := "groups"
		if in := c.Routes[k].Integration; in != nil {
			target = in.Type
			if in.Function != "" {
				target += " " + in.Function
			}
		}
		fmt.Fprintf(w, "  route %s -> %s\n", k, target)
	}
	if c.Authorizer != nil {
		fmt.Fprintf(w, "  authorizer -> %s %s\n", c.Authorizer.Integration.Type, c.Authorizer.Integration.Function)
	}
	names := make([]string, 0, len(c.Functions))
	for n := range c.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  function %s (%s, %s)\n", n, c.Functions[n].Runtime, c.Functions[n].CodeURI)
	}
	for _, t := range r.Tables {
		fmt.Fprintf(w, "  table %s\n", t.Name)
	}
	for _, s := range c.Streams {
		fmt.Fprintf(w, "  stream %s -> %s\n", s.DisplayName(), s.Target.Integration.Function)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", s)
	}
}

// createTables creates the template's tables at the DynamoDB endpoint.
func (tf *templateFlags) createTables(ctx context.Context, w io.Writer) error {
	if len(tf.res.Tables) == 0 {
		return nil
	}
	if tf.dynamodb == "" {
		fmt.Fprintf(w, "  tables not created: no --dynamodb-endpoint (or AWS_ENDPOINT_URL_DYNAMODB)\n")
		return nil
	}
	db, err := template.NewDynamoDBClient(ctx, tf.dynamodb, tf.region)
	if err != nil {
		return err
	}
	created, err := template.CreateTables(ctx, db, tf.res.Tables)
	for _, n := range created {
		fmt.Fprintf(w, "  created table %s at %s\n", n, tf.dynamodb)
	}
	return err
}

// importCommand prints the wsgate config a template translates to.
func importCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: wsgate import [flags] TEMPLATE (template.yaml, template.json, cdk.out, a directory)\n\nFlags:")
		fs.PrintDefaults()
	}
	tf := addTemplateFlags(fs, false)
	if status, done := parseFlags(fs, args, stdout, stderr, 2); done {
		return status
	}
	// The template may come before the flags: wsgate import t.yaml --stage x.
	if fs.NArg() > 0 {
		tf.path = fs.Arg(0)
		if status, done := parseFlags(fs, fs.Args()[1:], stdout, stderr, 2); done {
			return status
		}
	}
	if tf.path == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	f, err := tf.translate(false)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return 1
	}
	b, err := tf.res.Marshal(filepath.Base(f.Path))
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return 1
	}
	stdout.Write(b)
	return 0
}
