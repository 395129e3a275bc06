package template

import (
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/streams"
)

// Options are what a template leaves to the deployment: parameter values,
// the stage and the pseudo parameters.
type Options struct {
	// Parameters override the template's parameter defaults
	// (--parameter-overrides Key=Value).
	Parameters map[string]string
	// Stage picks the stage when the template has several; for
	// serverless.yml it is ${opt:stage}. Default: the template's only stage.
	Stage string
	// API is the logical id of the WebSocket API to run when the template
	// has several.
	API string
	// Region is AWS::Region. Default "us-east-1".
	Region string
	// AccountID is AWS::AccountId. Default "000000000000".
	AccountID string
	// StackName is AWS::StackName. Default "wsgate".
	StackName string
	// APIID is what Ref of the API gives, and wsgate's apiId. Default
	// "local" (wsgate's default apiId).
	APIID string
	// BaseDir, when set, is joined to every function's codeUri so the
	// config works from any directory. Unset, codeUri stays relative to
	// the template's directory.
	BaseDir string
	// DynamoDBEndpoint is where the template's tables live locally
	// (moto_server, DynamoDB Local). It becomes the endpoint of the
	// streams and AWS_ENDPOINT_URL_DYNAMODB of every function. Default:
	// none (real AWS).
	DynamoDBEndpoint string
	// Getenv reads the environment for serverless.yml's ${env:NAME}.
	// Default: none set.
	Getenv func(string) (string, bool)
}

func (o *Options) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Region, "us-east-1")
	def(&o.AccountID, "000000000000")
	def(&o.StackName, "wsgate")
	def(&o.APIID, "local")
	if o.Getenv == nil {
		o.Getenv = func(string) (string, bool) { return "", false }
	}
}

// Config is the wsgate config a template translates to: the fields of the
// config file (server.Config) that a template sets, so Marshal prints a
// file `wsgate serve --config` reads.
type Config struct {
	gateway.Config
	Streams   []streams.Config                      `json:"streams,omitempty"`
	Functions map[string]integration.FunctionConfig `json:"functions,omitempty"`
	Globals   integration.Globals                   `json:"globals,omitzero"`
}

// Table is a DynamoDB table the template declares, created locally by
// CreateTables.
type Table struct {
	// ID is the logical id.
	ID string
	// Name is the physical name (what Ref gives).
	Name string
	// Definition is the CreateTable input as CloudFormation spells it:
	// AttributeDefinitions, KeySchema, GlobalSecondaryIndexes,
	// LocalSecondaryIndexes, StreamSpecification.
	Definition map[string]any
}

// Skipped is a resource (or section) the translation leaves out, and why.
type Skipped struct {
	ID     string
	Type   string
	Reason string
}

// Result is a translated template.
type Result struct {
	Kind   Kind
	Config Config
	// Tables are the DynamoDB tables to create locally.
	Tables []Table
	// Inline is the functions' code written in the template, which
	// WriteInlineCode puts where their codeUri points.
	Inline []InlineCode
	// Skipped lists what is not needed or not run locally, once each.
	Skipped []Skipped
	// Warnings are things that run, but not exactly as on AWS.
	Warnings []string
}

// Marshal prints the config as YAML, headed by comments that say where it
// came from, what was left out and why.
func (r *Result) Marshal(source string) ([]byte, error) {
	body, err := yaml.Marshal(r.Config)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# wsgate config translated from %s (%s).\n", source, r.Kind)
	if len(r.Config.Functions) > 0 {
		b.WriteString("# codeUri paths are relative to the template's directory.\n")
	}
	for _, in := range r.Inline {
		fmt.Fprintf(&b, "# inline code of %s (%s): written to %s/%s by `wsgate import` and `wsgate serve --template`.\n", in.Function, in.Path, in.Dir, in.File)
	}
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "# DynamoDB table %s (%s): created by `wsgate serve --template` at --dynamodb-endpoint.\n", t.Name, t.ID)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "# warning: %s\n", w)
	}
	groups := map[string][]string{}
	var order []string
	for _, s := range r.Skipped {
		if _, ok := groups[s.Reason]; !ok {
			order = append(order, s.Reason)
		}
		name := s.ID
		if s.Type != "" {
			name += " (" + s.Type + ")"
		}
		groups[s.Reason] = append(groups[s.Reason], name)
	}
	for _, reason := range order {
		fmt.Fprintf(&b, "# %s: %s\n", reason, strings.Join(groups[reason], ", "))
	}
	b.Write(body)
	return b.Bytes(), nil
}
