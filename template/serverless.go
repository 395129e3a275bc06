package template

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/eventfilter"
)

// Serverless Framework defaults that differ from Lambda's.
const (
	slsDefaultTimeout = 6    // seconds
	slsDefaultMemory  = 1024 // MB
)

// translateServerless resolves a serverless.yml's variables, builds the
// CloudFormation the Framework would deploy for its WebSocket API,
// functions and stream events, adds resources.Resources, and translates
// that. Functions keep their serverless.yml names.
func translateServerless(f *File, opts *Options) (*Result, error) {
	if opts.Getenv == nil {
		opts.Getenv = func(string) (string, bool) { return "", false }
	}
	v := &slsVars{doc: f.Doc, opts: opts, busy: map[string]bool{}}
	provider, _ := f.Doc["provider"].(map[string]any)
	// The stage and region come first: ${sls:stage} and ${aws:region}
	// depend on them.
	v.stage = opts.Stage
	if v.stage == "" {
		s, err := v.resolveString(provider["stage"], "provider.stage")
		if err != nil {
			return nil, err
		}
		v.stage = cmpOr(s, "dev")
	}
	if opts.Region == "" {
		s, err := v.resolveString(provider["region"], "provider.region")
		if err != nil {
			return nil, err
		}
		opts.Region = cmpOr(s, "us-east-1")
	}
	opts.setDefaults()
	opts.Stage = v.stage
	rv, err := v.resolve(f.Doc, "")
	if err != nil {
		return nil, err
	}
	doc := rv.(map[string]any)
	b := &slsBuilder{doc: doc, stage: v.stage, names: map[string]string{}, res: map[string]any{}}
	if err := b.build(); err != nil {
		return nil, err
	}
	cfn := map[string]any{"Resources": b.res}
	if r, ok := doc["resources"].(map[string]any); ok {
		for _, k := range sortedKeys(r) {
			switch k {
			case "Resources":
				extra, _ := r[k].(map[string]any)
				for id, def := range extra {
					if _, clash := b.res[id]; clash {
						// The Framework merges such an entry into its own
						// resource; wsgate does not.
						return nil, errAt("resources.Resources."+id, "overrides a resource the Framework generates; not supported by wsgate")
					}
					b.res[id] = def
				}
			case "Conditions", "Mappings", "Parameters", "Outputs":
				cfn[k] = r[k]
			default:
				return nil, errAt("resources."+k, "not supported by wsgate")
			}
		}
	}
	res, err := translateCFN(cfn, KindServerless, opts, b.names)
	if err != nil {
		return nil, err
	}
	res.Skipped = append(b.skipped, res.Skipped...)
	res.Warnings = append(b.warnings, res.Warnings...)
	return res, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// slsVars resolves the Framework's variables: ${self:a.b}, ${env:NAME},
// ${opt:stage}, ${opt:region}, ${sls:stage}, ${aws:region},
// ${aws:accountId}, quoted literals, and fallbacks (${opt:stage, 'dev'}).
type slsVars struct {
	doc   map[string]any
	opts  *Options
	stage string
	busy  map[string]bool // self: paths being resolved, to catch cycles
	steps int             // values resolved so far, bounded by maxValues
}

// innermostVar matches a ${...} with no ${ inside, so nested variables
// resolve inside out.
var innermostVar = regexp.MustCompile(`\$\{([^${}]*)\}`)

func (v *slsVars) resolve(x any, path string) (any, error) {
	// ${self:} copies subtrees: a chain of them could grow without bound.
	if v.steps++; v.steps > maxValues {
		return nil, errAt(path, "variables expand to more than %d values", maxValues)
	}
	switch t := x.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for _, k := range sortedKeys(t) {
			r, err := v.resolve(t[k], join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			r, err := v.resolve(e, join(path, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case string:
		return v.resolveText(t, path)
	default:
		return x, nil
	}
}

func (v *slsVars) resolveString(x any, path string) (string, error) {
	r, err := v.resolve(x, path)
	if err != nil {
		return "", err
	}
	return scalarString(r), nil
}

// maxVarRounds bounds how deeply variables may nest in one string.
const maxVarRounds = 20

func (v *slsVars) resolveText(s, path string) (any, error) {
	for range maxVarRounds {
		loc := innermostVar.FindStringSubmatchIndex(s)
		if loc == nil {
			return s, nil
		}
		val, err := v.variable(s[loc[2]:loc[3]], path)
		if err != nil {
			return nil, err
		}
		if loc[0] == 0 && loc[1] == len(s) {
			// A value that is one variable keeps its type (a number, a
			// list, a mapping), as in the Framework.
			if str, ok := val.(string); ok {
				s = str
				continue
			}
			return val, nil
		}
		switch val.(type) {
		case map[string]any, []any:
			return nil, errAt(path, "${%s} is %s, not text", s[loc[2]:loc[3]], describe(val))
		}
		s = s[:loc[0]] + scalarString(val) + s[loc[1]:]
	}
	return nil, errAt(path, "variables nested more than %d deep", maxVarRounds)
}

// variable resolves one variable's body: sources separated by commas,
// the first that has a value wins.
func (v *slsVars) variable(body, path string) (any, error) {
	for _, src := range splitFallbacks(body) {
		src = strings.TrimSpace(src)
		val, ok, err := v.source(src, path)
		if err != nil {
			return nil, err
		}
		if ok {
			return val, nil
		}
	}
	return nil, errAt(path, "${%s}: no value (set it, or give a fallback: ${%s, 'default'})", body, body)
}

func splitFallbacks(s string) []string {
	var (
		out   []string
		quote rune
		start int
	)
	for i, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func (v *slsVars) source(src, path string) (any, bool, error) {
	if len(src) >= 2 && (src[0] == '\'' || src[0] == '"') && src[len(src)-1] == src[0] {
		return src[1 : len(src)-1], true, nil
	}
	if n, err := strconv.ParseFloat(src, 64); err == nil {
		return n, true, nil
	}
	kind, arg, _ := strings.Cut(src, ":")
	switch kind {
	case "self":
		return v.self(arg, path)
	case "env":
		s, ok := v.opts.Getenv(arg)
		return s, ok && s != "", nil
	case "opt":
		switch arg {
		case "stage":
			return v.opts.Stage, v.opts.Stage != "", nil
		case "region":
			return v.opts.Region, v.opts.Region != "", nil
		}
		return nil, false, nil
	case "sls":
		switch arg {
		case "stage":
			return v.stage, true, nil
		case "instanceId":
			return "local", true, nil
		}
	case "aws":
		switch arg {
		case "region":
			return cmpOr(v.opts.Region, "us-east-1"), true, nil
		case "accountId":
			return cmpOr(v.opts.AccountID, "000000000000"), true, nil
		}
	}
	return nil, false, errAt(path, "${%s}: this variable source is not resolved by wsgate (self, env, opt, sls, aws are)", src)
}

// self looks a path up in the document and resolves what it finds.
func (v *slsVars) self(p, path string) (any, bool, error) {
	if p == "" {
		return v.doc, true, nil
	}
	if v.busy[p] {
		return nil, false, errAt(path, "${self:%s} refers to itself", p)
	}
	var cur any = v.doc
	for _, part := range strings.Split(p, ".") {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[part]
			if !ok {
				return nil, false, nil
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false, nil
			}
			cur = c[i]
		default:
			return nil, false, nil
		}
	}
	v.busy[p] = true
	defer delete(v.busy, p)
	r, err := v.resolve(cur, p)
	if err != nil {
		return nil, false, err
	}
	return r, r != nil, nil
}

// slsBuilder generates the CloudFormation resources the Framework would,
// under the logical ids it uses (ConnectLambdaFunction, ...), so
// resources.Resources can refer to them as on AWS.
type slsBuilder struct {
	doc      map[string]any
	stage    string
	res      map[string]any
	names    map[string]string // function logical id -> serverless.yml name
	skipped  []Skipped
	warnings []string
}

// slsNormalize is the Framework's normalization of a name in logical ids.
func slsNormalize(s string) string {
	s = strings.NewReplacer("-", "Dash", "_", "Underscore").Replace(s)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// slsRouteName normalizes a route key for logical ids ($connect ->
// SconnectWebsocketsRoute in the Framework; here alphanumerics only).
func slsRouteName(route string) string {
	var b strings.Builder
	for _, c := range route {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	if strings.HasPrefix(route, "$") {
		return "S" + b.String()
	}
	return slsNormalize(b.String())
}

var (
	slsProviderRead    = "name runtime stage region environment timeout memorySize websocketsApiName websocketsApiRouteSelectionExpression websocketsDescription"
	slsProviderIgnored = "iam iamRoleStatements iamManagedPolicies role deploymentBucket deploymentPrefix logs tracing tags stackTags stackName " +
		"architecture versionFunctions apiGateway httpApi logRetentionInDays profile lambdaHashingVersion deploymentMethod " +
		"apiName endpointType vpc kmsKeyArn layers cfnRole rollbackConfiguration notificationArns stackPolicy ecr runtimeManagement websocket"
	slsFunctionRead    = "handler runtime environment timeout memorySize events name reservedConcurrency layers image"
	slsFunctionIgnored = "description role tags vpc architecture package provisionedConcurrency tracing logRetentionInDays " +
		"iamRoleStatements iamRoleStatementsName onError destinations maximumEventAge maximumRetryAttempts disableLogs url " +
		"kmsKeyArn snapStart ephemeralStorageSize condition dependsOn versionFunction runtimeManagement logs"
)

func (b *slsBuilder) build() error {
	doc := b.doc
	service := ""
	switch s := doc["service"].(type) {
	case string:
		service = s
	case map[string]any:
		service = scalarString(s["name"])
	}
	if service == "" {
		return errAt("service", "missing")
	}
	provider, _ := doc["provider"].(map[string]any)
	if provider == nil {
		return errAt("provider", "missing")
	}
	if n := scalarString(provider["name"]); n != "aws" {
		return errAt("provider.name", "%q: wsgate reads AWS services only", n)
	}
	if err := checkKeys(provider, "provider", slsProviderRead, slsProviderIgnored); err != nil {
		return err
	}
	if plugins, ok := doc["plugins"]; ok {
		b.warnings = append(b.warnings, fmt.Sprintf("plugins %v are not run: functions run from the service directory as it is (build bundled code first)", plugins))
	}
	for _, k := range sortedKeys(doc) {
		switch k {
		case "service", "provider", "functions", "resources", "plugins", "custom", "frameworkVersion",
			"configValidationMode", "useDotenv", "variablesResolutionMode", "package", "app", "org", "params", "outputs", "stages", "build":
		default:
			return errAt(k, "not supported by wsgate")
		}
	}
	apiID := "WebsocketsApi"
	b.res[apiID] = map[string]any{"Type": "AWS::ApiGatewayV2::Api", "Properties": map[string]any{
		"Name":                     cmpOr(scalarString(provider["websocketsApiName"]), b.stage+"-"+service+"-websockets"),
		"ProtocolType":             "WEBSOCKET",
		"RouteSelectionExpression": cmpOr(scalarString(provider["websocketsApiRouteSelectionExpression"]), "$request.body.action"),
	}}
	b.res["WebsocketsDeploymentStage"] = map[string]any{"Type": "AWS::ApiGatewayV2::Stage", "Properties": map[string]any{
		"ApiId": map[string]any{"Ref": apiID}, "StageName": b.stage,
	}}
	functions, _ := doc["functions"].(map[string]any)
	// Authorizers are named by function; a websocket authorizer may name
	// any function of the service.
	for _, name := range sortedKeys(functions) {
		fn, ok := functions[name].(map[string]any)
		if !ok {
			return errAt("functions."+name, "want a mapping")
		}
		if err := b.function(service, name, fn, provider); err != nil {
			return err
		}
	}
	return nil
}

// checkKeys refuses keys outside read and ignored.
func checkKeys(m map[string]any, path, read, ignored string) error {
	r, ig := strings.Fields(read), strings.Fields(ignored)
	for _, k := range sortedKeys(m) {
		if !contains(r, k) && !contains(ig, k) {
			return errAt(join(path, k), "not supported by wsgate")
		}
	}
	return nil
}

func (b *slsBuilder) function(service, name string, fn, provider map[string]any) error {
	path := "functions." + name
	if err := checkKeys(fn, path, slsFunctionRead, slsFunctionIgnored); err != nil {
		return err
	}
	if _, ok := fn["image"]; ok {
		return errAt(path+".image", "container image functions are not run by wsgate")
	}
	if _, ok := fn["layers"]; ok {
		b.warnings = append(b.warnings, path+".layers: layers are not mounted; the function sees only its own code")
	}
	id := slsNormalize(name) + "LambdaFunction"
	b.names[id] = name
	env := map[string]any{}
	for _, src := range []any{provider["environment"], fn["environment"]} {
		if m, ok := src.(map[string]any); ok {
			for k, v := range m {
				env[k] = v
			}
		}
	}
	pick := func(key string, def any) any {
		if v, ok := fn[key]; ok {
			return v
		}
		if v, ok := provider[key]; ok {
			return v
		}
		return def
	}
	props := map[string]any{
		"FunctionName": cmpOr(scalarString(fn["name"]), service+"-"+b.stage+"-"+name),
		"Handler":      fn["handler"],
		"Runtime":      pick("runtime", nil),
		"Code":         ".",
		"Timeout":      pick("timeout", slsDefaultTimeout),
		"MemorySize":   pick("memorySize", slsDefaultMemory),
	}
	if props["Runtime"] == nil {
		return errAt(path+".runtime", "missing (and no provider.runtime)")
	}
	if props["Handler"] == nil {
		return errAt(path+".handler", "missing")
	}
	if len(env) > 0 {
		props["Environment"] = map[string]any{"Variables": env}
	}
	if rc, ok := fn["reservedConcurrency"]; ok {
		props["ReservedConcurrentExecutions"] = rc
	}
	b.res[id] = map[string]any{"Type": "AWS::Lambda::Function", "Properties": props}
	events, _ := fn["events"].([]any)
	for i, e := range events {
		ep := fmt.Sprintf("%s.events[%d]", path, i)
		em, ok := e.(map[string]any)
		if !ok || len(em) != 1 {
			return errAt(ep, "want one event type")
		}
		for typ, spec := range em {
			var err error
			switch typ {
			case "websocket":
				err = b.websocket(id, spec, ep+".websocket")
			case "stream":
				err = b.stream(id, name, i, spec, ep+".stream")
			default:
				b.skipped = append(b.skipped, Skipped{ID: ep, Type: typ, Reason: "event source not run locally (only websocket and DynamoDB stream events are)"})
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// invocationURI is the API Gateway integration URI of a function, as the
// Framework writes it.
func invocationURI(fnArn any) any {
	return map[string]any{"Fn::Join": []any{"", []any{
		"arn:", map[string]any{"Ref": "AWS::Partition"}, ":apigateway:", map[string]any{"Ref": "AWS::Region"},
		":lambda:path/2015-03-31/functions/", fnArn, "/invocations",
	}}}
}

func (b *slsBuilder) websocket(fnID string, spec any, path string) error {
	var ws map[string]any
	switch s := spec.(type) {
	case string:
		ws = map[string]any{"route": s}
	case map[string]any:
		ws = s
	default:
		return errAt(path, "want a route or a mapping")
	}
	if err := checkKeys(ws, path, "route routeResponseSelectionExpression authorizer", ""); err != nil {
		return err
	}
	route := scalarString(ws["route"])
	if route == "" {
		return errAt(path+".route", "missing")
	}
	rn := slsRouteName(route)
	integ := rn + "WebsocketsIntegration"
	b.res[integ] = map[string]any{"Type": "AWS::ApiGatewayV2::Integration", "Properties": map[string]any{
		"ApiId": map[string]any{"Ref": "WebsocketsApi"}, "IntegrationType": "AWS_PROXY",
		"IntegrationUri": invocationURI(map[string]any{"Fn::GetAtt": []any{fnID, "Arn"}}),
	}}
	rprops := map[string]any{
		"ApiId": map[string]any{"Ref": "WebsocketsApi"}, "RouteKey": route, "AuthorizationType": "NONE",
		"Target": map[string]any{"Fn::Join": []any{"/", []any{"integrations", map[string]any{"Ref": integ}}}},
	}
	routeID := rn + "WebsocketsRoute"
	if rrse := scalarString(ws["routeResponseSelectionExpression"]); rrse != "" {
		rprops["RouteResponseSelectionExpression"] = rrse
		b.res[rn+"WebsocketsRouteResponse"] = map[string]any{"Type": "AWS::ApiGatewayV2::RouteResponse", "Properties": map[string]any{
			"ApiId": map[string]any{"Ref": "WebsocketsApi"}, "RouteId": map[string]any{"Ref": routeID}, "RouteResponseKey": "$default",
		}}
	}
	if a, ok := ws["authorizer"]; ok {
		if route != "$connect" {
			return errAt(path+".authorizer", "authorizers run on $connect only")
		}
		id, err := b.authorizer(a, path+".authorizer")
		if err != nil {
			return err
		}
		rprops["AuthorizationType"] = "CUSTOM"
		rprops["AuthorizerId"] = map[string]any{"Ref": id}
	}
	b.res[routeID] = map[string]any{"Type": "AWS::ApiGatewayV2::Route", "Properties": rprops}
	return nil
}

// authorizer builds the Authorizer of a websocket $connect event:
// `authorizer: fnName`, `{name: fnName}` or `{arn: ...}`, with
// identitySource defaulting to the Auth header as in the Framework.
func (b *slsBuilder) authorizer(a any, path string) (string, error) {
	var am map[string]any
	switch x := a.(type) {
	case string:
		if strings.HasPrefix(x, "arn:") {
			am = map[string]any{"arn": x}
		} else {
			am = map[string]any{"name": x}
		}
	case map[string]any:
		am = x
	default:
		return "", errAt(path, "want a function name, or {name | arn, identitySource}")
	}
	if err := checkKeys(am, path, "name arn identitySource", ""); err != nil {
		return "", err
	}
	var fnArn any
	name := scalarString(am["name"])
	switch {
	case name != "":
		fnArn = map[string]any{"Fn::GetAtt": []any{slsNormalize(name) + "LambdaFunction", "Arn"}}
	case am["arn"] != nil:
		fnArn = am["arn"]
		name = "External"
	default:
		return "", errAt(path, "want name or arn")
	}
	ids := am["identitySource"]
	if ids == nil {
		ids = []any{"route.request.header.Auth"}
	}
	id := slsNormalize(name) + "WebsocketsAuthorizer"
	b.res[id] = map[string]any{"Type": "AWS::ApiGatewayV2::Authorizer", "Properties": map[string]any{
		"ApiId": map[string]any{"Ref": "WebsocketsApi"}, "Name": name, "AuthorizerType": "REQUEST",
		"AuthorizerUri": invocationURI(fnArn), "IdentitySource": ids,
	}}
	return id, nil
}

// stream builds the EventSourceMapping of a `stream` event.
func (b *slsBuilder) stream(fnID, fnName string, i int, spec any, path string) error {
	var s map[string]any
	switch x := spec.(type) {
	case string:
		s = map[string]any{"arn": x}
	case map[string]any:
		s = x
	default:
		return errAt(path, "want an ARN or a mapping")
	}
	if err := checkKeys(s, path, "arn type batchSize startingPosition batchWindow maximumRetryAttempts "+
		"bisectBatchOnFunctionError maximumRecordAgeInSeconds functionResponseType enabled filterPatterns",
		"parallelizationFactor destinations consumer"); err != nil {
		return err
	}
	arn := s["arn"]
	if arn == nil {
		return errAt(path+".arn", "missing")
	}
	if typ := scalarString(s["type"]); typ != "" && typ != "dynamodb" {
		b.skipped = append(b.skipped, Skipped{ID: path, Type: typ, Reason: "event source not run locally (only websocket and DynamoDB stream events are)"})
		return nil
	}
	props := map[string]any{
		"FunctionName":     map[string]any{"Ref": fnID},
		"EventSourceArn":   arn,
		"StartingPosition": cmpOrAny(s["startingPosition"], "TRIM_HORIZON"), // the Framework's default
		"BatchSize":        cmpOrAny(s["batchSize"], 10),
	}
	for from, to := range map[string]string{
		"batchWindow": "MaximumBatchingWindowInSeconds", "maximumRetryAttempts": "MaximumRetryAttempts",
		"bisectBatchOnFunctionError": "BisectBatchOnFunctionError", "maximumRecordAgeInSeconds": "MaximumRecordAgeInSeconds",
		"enabled": "Enabled",
	} {
		if v, ok := s[from]; ok {
			props[to] = v
		}
	}
	if v, ok := s["functionResponseType"]; ok {
		props["FunctionResponseTypes"] = []any{v}
	}
	if v, ok := s["filterPatterns"]; ok {
		fc, err := slsFilterPatterns(v, path+".filterPatterns")
		if err != nil {
			return err
		}
		props["FilterCriteria"] = fc
	}
	id := fmt.Sprintf("%sEventSourceMappingDynamodb%d", slsNormalize(fnName), i)
	b.res[id] = map[string]any{"Type": "AWS::Lambda::EventSourceMapping", "Properties": props}
	return nil
}

// slsFilterPatterns turns a stream event's filterPatterns (pattern
// objects) into a FilterCriteria, as the Framework does: each object
// becomes one filter's Pattern, its JSON text.
func slsFilterPatterns(v any, path string) (map[string]any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, errAt(path, "want a list of patterns")
	}
	var filters []any
	for i, p := range l {
		pp := fmt.Sprintf("%s[%d]", path, i)
		if _, ok := p.(map[string]any); !ok {
			return nil, errAt(pp, "want a pattern object")
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, errAt(pp, "%v", err)
		}
		if _, err := eventfilter.Compile(string(b)); err != nil {
			return nil, errAt(pp, "%v", err)
		}
		filters = append(filters, map[string]any{"Pattern": string(b)})
	}
	return map[string]any{"Filters": filters}, nil
}

func cmpOrAny(v, def any) any {
	if v == nil {
		return def
	}
	return v
}
