// Package template reads the infrastructure code a WebSocket API is
// deployed with (SAM and CloudFormation templates in YAML or JSON, and the
// CDK's cdk.out/*.template.json) and translates it into a wsgate config,
// so the same API runs locally unchanged.
//
// Read detects the file's kind and decodes YAML short forms (!Ref, !Sub,
// ...) into their long form. Translate evaluates the intrinsic functions
// (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If with
// Conditions, Fn::FindInMap, Fn::Base64, Fn::GetAZs), parameters with
// defaults and overrides, and the pseudo parameters, then maps the
// API Gateway v2 resources, SAM's WebSocketApi, the functions, the
// DynamoDB tables and their streams onto wsgate's config. Result.Marshal
// prints that config as YAML, so a user can take it over by hand.
//
// Only the properties that are read get evaluated: an IAM policy with an
// intrinsic wsgate cannot evaluate does not stop a template. A property
// that would change what the API does and that wsgate cannot honour is an
// error naming the logical id and property path; resources with no local
// meaning (IAM, permissions, log groups, outputs) are listed once in
// Result.Skipped. docs/templates.md lists what is read, ignored and
// refused.
//
// Translate has no side effects: a function's inline code (SAM
// InlineCode, Lambda Code.ZipFile) is returned in Result.Inline with the
// codeUri it is given, and Result.WriteInlineCode writes it there
// (index.js or index.py, as Lambda names it).
//
// Locally, Ref of a function or table gives the name set in the template
// (FunctionName, TableName), else its logical id; Ref of the API gives
// the config's apiId; functions are named by their logical id.
package template
