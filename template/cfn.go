package template

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/eventfilter"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/streams"
)

// Translate turns a template into a wsgate config.
func Translate(f *File, opts Options) (*Result, error) {
	if f.Kind == KindServerless {
		// The region may come from provider.region; defaults follow.
		return translateServerless(f, &opts)
	}
	opts.setDefaults()
	return translateCFN(f.Doc, f.Kind, &opts, nil)
}

// Reasons a resource is left out, as Result.Skipped lists them.
const (
	reasonNotNeeded  = "not needed locally"
	reasonNotCreated = "not created locally (functions that use it reach AWS)"
	reasonOtherAPI   = "belongs to another API"
	reasonCondition  = "left out by its condition"
	reasonUnused     = "function not used by the WebSocket API or a stream"
	reasonNotHTTP    = "not a WebSocket API (wsgate serves WebSocket APIs only)"
)

// notNeeded are the types with no local meaning: permissions, logging,
// deployment bookkeeping.
var notNeeded = map[string]bool{
	"AWS::ApiGatewayV2::Deployment":            true,
	"AWS::ApiGatewayV2::ApiMapping":            true,
	"AWS::ApiGatewayV2::DomainName":            true,
	"AWS::Lambda::Permission":                  true,
	"AWS::Lambda::Version":                     true,
	"AWS::Lambda::Alias":                       true,
	"AWS::Lambda::LayerVersion":                true,
	"AWS::Lambda::LayerVersionPermission":      true,
	"AWS::Lambda::EventInvokeConfig":           true,
	"AWS::Logs::LogGroup":                      true,
	"AWS::Logs::LogStream":                     true,
	"AWS::Logs::SubscriptionFilter":            true,
	"AWS::Logs::MetricFilter":                  true,
	"AWS::CloudWatch::Alarm":                   true,
	"AWS::CloudWatch::Dashboard":               true,
	"AWS::CDK::Metadata":                       true,
	"AWS::ApiGateway::Account":                 true,
	"AWS::CloudFormation::WaitConditionHandle": true,
	"AWS::Serverless::LayerVersion":            true,
}

type translator struct {
	r        *resolver
	opts     *Options
	out      *Result
	globals  map[string]any // SAM Globals.Function
	fnByName map[string]string
	used     map[string]bool // functions the API or a stream uses
	names    map[string]string
	errs     []error
	// routeThrottling is the stage's RouteSettings throttling by route
	// key, applied once the routes are built.
	routeThrottling map[string]routeThrottling
	// keyRes are the API keys, usage plans and plan keys read.
	keyRes map[string]bool
}

func (t *translator) fail(err error) { t.errs = append(t.errs, err) }

func (t *translator) skip(id, typ, reason string) {
	t.out.Skipped = append(t.out.Skipped, Skipped{ID: id, Type: typ, Reason: reason})
}

// translateCFN translates a CloudFormation document. names, when set, maps
// a function's logical id to the name it gets in the config (serverless.yml
// keeps its own function names); unset, functions are named by logical id.
func translateCFN(doc map[string]any, kind Kind, opts *Options, names map[string]string) (*Result, error) {
	r, err := newResolver(doc, opts)
	if err != nil {
		return nil, err
	}
	t := &translator{r: r, opts: opts, out: &Result{Kind: kind}, fnByName: map[string]string{}, used: map[string]bool{}, names: names}
	if g, ok := doc["Globals"].(map[string]any); ok {
		t.globals, _ = g["Function"].(map[string]any)
		for _, k := range sortedKeys(g) {
			if k != "Function" {
				t.skip("Globals."+k, "", reasonNotNeeded)
			}
		}
	}
	t.out.Config.Region = opts.Region
	if opts.AccountID != "000000000000" {
		t.out.Config.AccountID = opts.AccountID
	}
	if opts.APIID != "local" {
		t.out.Config.APIID = opts.APIID
	}
	ids := sortedKeys(r.resources)
	var live []*resource
	for _, id := range ids {
		res := r.resources[id]
		if res.Condition != "" {
			ok, err := r.condition(res.Condition, "Resources."+id+".Condition")
			if err != nil {
				return nil, err
			}
			if !ok {
				t.skip(id, res.Type, reasonCondition)
				continue
			}
		}
		live = append(live, res)
		if isFunction(res.Type) {
			name, err := r.physicalName(res, "Resources."+id)
			if err != nil {
				return nil, err
			}
			t.fnByName[name] = id
		}
	}
	api, err := t.pickAPI(live)
	if err != nil {
		return nil, err
	}
	if api.Type == "AWS::Serverless::WebSocketApi" {
		t.samWebSocketAPI(api, live)
	} else {
		t.v2API(api, live)
	}
	t.applyRouteThrottling()
	t.tablesAndStreams(live)
	if len(t.errs) > 0 {
		return nil, errors.Join(t.errs...)
	}
	// Functions last: the API and the streams decide which are used.
	t.out.Config.Functions = map[string]integration.FunctionConfig{}
	for _, res := range live {
		if !isFunction(res.Type) {
			continue
		}
		if !t.used[res.ID] {
			t.skip(res.ID, res.Type, reasonUnused)
			continue
		}
		if fn, ok := t.function(res); ok {
			t.out.Config.Functions[t.fnName(res.ID)] = fn
		}
	}
	if len(t.out.Config.Functions) == 0 {
		t.out.Config.Functions = nil
	}
	if opts.DynamoDBEndpoint != "" && len(t.out.Config.Functions) > 0 {
		t.out.Config.Globals = integration.Globals{Env: map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": opts.DynamoDBEndpoint}}
	}
	for _, res := range live {
		t.classify(res, api)
	}
	if _, ok := doc["Outputs"]; ok {
		t.skip("Outputs", "", reasonNotNeeded)
	}
	if _, ok := doc["Rules"]; ok {
		t.skip("Rules", "", reasonNotNeeded)
	}
	if len(t.errs) > 0 {
		return nil, errors.Join(t.errs...)
	}
	return t.out, nil
}

// fnName is the config's name for the function with logical id id.
func (t *translator) fnName(id string) string {
	if n, ok := t.names[id]; ok {
		return n
	}
	return id
}

func isFunction(typ string) bool {
	return typ == "AWS::Lambda::Function" || typ == "AWS::Serverless::Function"
}

// handled are the types the translation reads; classify lists the rest.
var handled = map[string]bool{
	"AWS::ApiGatewayV2::Api": true, "AWS::ApiGatewayV2::Route": true, "AWS::ApiGatewayV2::Integration": true,
	"AWS::ApiGatewayV2::IntegrationResponse": true, "AWS::ApiGatewayV2::RouteResponse": true,
	"AWS::ApiGatewayV2::Authorizer": true, "AWS::ApiGatewayV2::Stage": true, "AWS::ApiGatewayV2::Model": true,
	"AWS::Serverless::WebSocketApi": true, "AWS::Lambda::Function": true, "AWS::Serverless::Function": true,
	"AWS::DynamoDB::Table": true, "AWS::Serverless::SimpleTable": true, "AWS::Lambda::EventSourceMapping": true,
}

// classify lists a resource the translation did not read.
func (t *translator) classify(res, api *resource) {
	switch {
	case notNeeded[res.Type] || strings.HasPrefix(res.Type, "AWS::IAM::"):
		t.skip(res.ID, res.Type, reasonNotNeeded)
	case res.Type == "AWS::ApiGatewayV2::Api" && res != api:
		if p, _ := t.r.resolveString(res.Properties["ProtocolType"], ""); p != "WEBSOCKET" {
			t.skip(res.ID, res.Type, reasonNotHTTP)
		} else {
			t.skip(res.ID, res.Type, reasonOtherAPI)
		}
	case t.keyRes[res.ID]:
	case res.Type == "AWS::Serverless::HttpApi" || res.Type == "AWS::Serverless::Api" || strings.HasPrefix(res.Type, "AWS::ApiGateway::"):
		t.skip(res.ID, res.Type, reasonNotHTTP)
	case handled[res.Type]:
	default:
		t.skip(res.ID, res.Type, reasonNotCreated)
	}
}

// pickAPI finds the one WebSocket API to run.
func (t *translator) pickAPI(live []*resource) (*resource, error) {
	var apis []*resource
	for _, res := range live {
		switch res.Type {
		case "AWS::Serverless::WebSocketApi":
			apis = append(apis, res)
		case "AWS::ApiGatewayV2::Api":
			p, err := t.r.resolveString(res.Properties["ProtocolType"], "Resources."+res.ID+".Properties.ProtocolType")
			if err != nil {
				return nil, err
			}
			if p == "WEBSOCKET" {
				apis = append(apis, res)
			}
		}
	}
	if t.opts.API != "" {
		for _, a := range apis {
			if a.ID == t.opts.API {
				return a, nil
			}
		}
		return nil, fmt.Errorf("no WebSocket API %q in the template", t.opts.API)
	}
	switch len(apis) {
	case 0:
		return nil, errors.New("no WebSocket API in the template (AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET, or AWS::Serverless::WebSocketApi)")
	case 1:
		return apis[0], nil
	}
	var names []string
	for _, a := range apis {
		names = append(names, a.ID)
	}
	return nil, fmt.Errorf("%d WebSocket APIs (%s): choose one with --api", len(apis), strings.Join(names, ", "))
}

// propRules is how a resource type's properties are treated: read (and
// honoured), ignored (no local meaning), and any other is refused.
type propRules struct{ read, ignored string }

var rules = map[string]propRules{
	"AWS::ApiGatewayV2::Api": {
		read:    "ProtocolType RouteSelectionExpression ApiKeySelectionExpression Name",
		ignored: "Description Tags DisableExecuteApiEndpoint DisableSchemaValidation Version IpAddressType FailOnWarnings",
	},
	"AWS::ApiGatewayV2::Route": {
		read:    "ApiId RouteKey AuthorizationType AuthorizerId RouteResponseSelectionExpression Target ApiKeyRequired RequestModels ModelSelectionExpression",
		ignored: "OperationName AuthorizationScopes",
	},
	"AWS::ApiGatewayV2::Integration": {
		read: "ApiId IntegrationType IntegrationUri TimeoutInMillis RequestTemplates TemplateSelectionExpression " +
			"RequestParameters IntegrationMethod CredentialsArn PassthroughBehavior ContentHandlingStrategy IntegrationResponseSelectionExpression",
		ignored: "Description PayloadFormatVersion ConnectionType",
	},
	"AWS::ApiGatewayV2::IntegrationResponse": {
		read: "ApiId IntegrationId IntegrationResponseKey ResponseTemplates TemplateSelectionExpression ContentHandlingStrategy",
		// A WebSocket frame has no headers for ResponseParameters to set.
		ignored: "ResponseParameters",
	},
	"AWS::ApiGatewayV2::Model": {
		read:    "ApiId Name Schema",
		ignored: "ContentType Description",
	},
	"AWS::ApiGatewayV2::RouteResponse": {
		read:    "ApiId RouteId RouteResponseKey",
		ignored: "ModelSelectionExpression ResponseModels ResponseParameters",
	},
	"AWS::ApiGatewayV2::Authorizer": {
		read:    "ApiId AuthorizerType AuthorizerUri IdentitySource AuthorizerResultTtlInSeconds Name",
		ignored: "AuthorizerCredentialsArn IdentityValidationExpression",
	},
	"AWS::ApiGatewayV2::Stage": {
		read:    "ApiId StageName StageVariables DefaultRouteSettings RouteSettings",
		ignored: "DeploymentId Description Tags AccessLogSettings AutoDeploy ClientCertificateId AccessPolicyId",
	},
	"AWS::Serverless::WebSocketApi": {
		read:    "RouteSelectionExpression ApiKeySelectionExpression Routes Auth StageName StageVariables DefaultRouteSettings RouteSettings Name",
		ignored: "AccessLogSettings Description DisableExecuteApiEndpoint DisableSchemaValidation IpAddressType PropagateTags Tags Domain",
	},
	"AWS::Serverless::Function": {
		read: "Runtime Handler CodeUri Environment Timeout MemorySize ReservedConcurrentExecutions FunctionName Events PackageType InlineCode ImageUri Layers",
		ignored: "Architectures Policies Role Description Tags Tracing VpcConfig AutoPublishAlias AutoPublishCodeSha256 DeploymentPreference " +
			"KmsKeyArn DeadLetterQueue EventInvokeConfig LoggingConfig RuntimeManagementConfig SnapStart EphemeralStorage " +
			"PermissionsBoundary ProvisionedConcurrencyConfig FunctionUrlConfig AssumeRolePolicyDocument CodeSigningConfigArn " +
			"RecursiveLoop PropagateTags VersionDescription RolePath AutoPublishAliasAllProperties SourceKMSKeyArn",
	},
	"AWS::Lambda::Function": {
		read: "Runtime Handler Code Environment Timeout MemorySize ReservedConcurrentExecutions FunctionName PackageType Layers",
		ignored: "Architectures Role Description Tags TracingConfig VpcConfig LoggingConfig DeadLetterConfig KmsKeyArn " +
			"EphemeralStorage SnapStart RuntimeManagementConfig CodeSigningConfigArn RecursiveLoop",
	},
	"AWS::Lambda::EventSourceMapping": {
		read: "FunctionName EventSourceArn BatchSize StartingPosition MaximumBatchingWindowInSeconds MaximumRetryAttempts " +
			"BisectBatchOnFunctionError MaximumRecordAgeInSeconds FunctionResponseTypes Enabled FilterCriteria StartingPositionTimestamp",
		ignored: "ParallelizationFactor DestinationConfig Tags MetricsConfig",
	},
}

// props returns a resource's properties after checking each against its
// type's rules: a property that would change what the API does and that
// wsgate cannot honour is an error naming the logical id and path.
func (t *translator) props(res *resource) map[string]any {
	rl, ok := rules[res.Type]
	if !ok {
		return res.Properties
	}
	read, ignored := strings.Fields(rl.read), strings.Fields(rl.ignored)
	for _, k := range sortedKeys(res.Properties) {
		if !contains(read, k) && !contains(ignored, k) {
			t.fail(errAt("Resources."+res.ID+".Properties."+k, "not supported by wsgate (%s)", res.Type))
		}
	}
	return res.Properties
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

// str resolves an optional string property; "" when absent.
func (t *translator) str(res *resource, props map[string]any, key string) string {
	v, ok := props[key]
	if !ok {
		return ""
	}
	s, err := t.r.resolveString(v, "Resources."+res.ID+".Properties."+key)
	if err != nil {
		t.fail(err)
	}
	return s
}

// num resolves an optional integer property; 0 when absent.
func (t *translator) num(res *resource, props map[string]any, key string) int {
	s := t.str(res, props, key)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.fail(errAt("Resources."+res.ID+".Properties."+key, "%q is not a whole number", s))
	}
	return n
}

func (t *translator) boolean(res *resource, props map[string]any, key string) bool {
	s := t.str(res, props, key)
	return strings.EqualFold(s, "true")
}

func (t *translator) v2API(api *resource, live []*resource) {
	props := t.props(api)
	cfg := &t.out.Config
	cfg.RouteSelectionExpression = t.str(api, props, "RouteSelectionExpression")
	if cfg.RouteSelectionExpression == "" {
		t.fail(errAt("Resources."+api.ID+".Properties.RouteSelectionExpression", "required for a WEBSOCKET API"))
	}
	apiKeys := t.str(api, props, "ApiKeySelectionExpression")
	var (
		routes, integ, integResp, routeResp, authz, stages, models []*resource
	)
	for _, res := range live {
		switch res.Type {
		case "AWS::ApiGatewayV2::Route":
			routes = append(routes, res)
		case "AWS::ApiGatewayV2::Integration":
			integ = append(integ, res)
		case "AWS::ApiGatewayV2::IntegrationResponse":
			integResp = append(integResp, res)
		case "AWS::ApiGatewayV2::RouteResponse":
			routeResp = append(routeResp, res)
		case "AWS::ApiGatewayV2::Authorizer":
			authz = append(authz, res)
		case "AWS::ApiGatewayV2::Stage":
			stages = append(stages, res)
		case "AWS::ApiGatewayV2::Model":
			models = append(models, res)
		default:
			continue
		}
	}
	mine := func(l []*resource) []*resource {
		var out []*resource
		for _, res := range l {
			if id, _ := t.r.resolveString(res.Properties["ApiId"], ""); id == t.opts.APIID {
				out = append(out, res)
			} else {
				t.skip(res.ID, res.Type, reasonOtherAPI)
			}
		}
		return out
	}
	routes, integ, integResp, routeResp, authz, stages = mine(routes), mine(integ), mine(integResp), mine(routeResp), mine(authz), mine(stages)
	t.models(mine(models))

	t.stage(pickStage(t, stages))

	// integration id -> its responses by IntegrationResponseKey
	responses := map[string]map[string]integration.IntegrationResponse{}
	for _, res := range integResp {
		props := t.props(res)
		path := "Resources." + res.ID + ".Properties."
		key := t.str(res, props, "IntegrationResponseKey")
		id := t.str(res, props, "IntegrationId")
		ir := integration.IntegrationResponse{
			ResponseTemplates:           t.strMap(res, props, "ResponseTemplates"),
			TemplateSelectionExpression: t.str(res, props, "TemplateSelectionExpression"),
			ContentHandlingStrategy:     t.str(res, props, "ContentHandlingStrategy"),
		}
		if key == "" {
			t.fail(errAt(path+"IntegrationResponseKey", "missing"))
			continue
		}
		if responses[id] == nil {
			responses[id] = map[string]integration.IntegrationResponse{}
		}
		responses[id][key] = ir
	}
	integrations := map[string]*integration.Config{}
	for _, res := range integ {
		if ic := t.v2Integration(res, responses[res.ID]); ic != nil {
			integrations[res.ID] = ic
		}
	}
	authorizers := map[string]*gateway.AuthorizerConfig{}
	for _, res := range authz {
		if a := t.v2Authorizer(res); a != nil {
			authorizers[res.ID] = a
		}
	}
	twoWay := map[string]bool{}
	for _, res := range routeResp {
		props := t.props(res)
		if key := t.str(res, props, "RouteResponseKey"); key != "$default" {
			t.fail(errAt("Resources."+res.ID+".Properties.RouteResponseKey", "%q: only $default is supported (as on AWS for WebSocket APIs)", key))
		}
		twoWay[t.str(res, props, "RouteId")] = true
	}
	cfg.Routes = map[string]gateway.Route{}
	var keyRoutes []string
	for _, res := range routes {
		props := t.props(res)
		path := "Resources." + res.ID + ".Properties."
		key := t.str(res, props, "RouteKey")
		requireKey := t.boolean(res, props, "ApiKeyRequired")
		authType := t.str(res, props, "AuthorizationType")
		switch {
		case authType == "" || authType == "NONE":
		case key != "$connect":
			t.fail(errAt(path+"AuthorizationType", "%s on route %s: WebSocket APIs authorize $connect only", authType, key))
		case authType == "AWS_IAM":
			cfg.AuthorizationType = "AWS_IAM"
			t.out.Warnings = append(t.out.Warnings, "AuthorizationType AWS_IAM on $connect: add the access keys clients sign with under credentials:")
		case authType == "CUSTOM":
			id := t.str(res, props, "AuthorizerId")
			a, ok := authorizers[id]
			if !ok {
				t.fail(errAt(path+"AuthorizerId", "%q is not an authorizer of this API", id))
				break
			}
			cfg.Authorizer = a
		default:
			t.fail(errAt(path+"AuthorizationType", "%q: want NONE, AWS_IAM or CUSTOM", authType))
		}
		var route gateway.Route
		target := t.str(res, props, "Target")
		id, ok := strings.CutPrefix(target, "integrations/")
		switch {
		case target == "":
			t.fail(errAt(path+"Target", "missing: wsgate needs an integration for route %s", key))
		case !ok || integrations[id] == nil:
			t.fail(errAt(path+"Target", "%q is not integrations/{id} of an integration of this API", target))
		default:
			route.Integration = integrations[id]
		}
		if rrse := t.str(res, props, "RouteResponseSelectionExpression"); rrse != "" {
			if twoWay[res.ID] {
				route.RouteResponseSelectionExpression = rrse
			} else {
				t.out.Warnings = append(t.out.Warnings, fmt.Sprintf("route %s (%s) has a RouteResponseSelectionExpression but no RouteResponse: one-way, as on AWS", key, res.ID))
			}
		}
		route.RequestModels = t.strMap(res, props, "RequestModels")
		route.ModelSelectionExpression = t.str(res, props, "ModelSelectionExpression")
		if requireKey {
			route.APIKeyRequired = true
			keyRoutes = append(keyRoutes, path+"ApiKeyRequired")
		}
		if _, dup := cfg.Routes[key]; dup {
			t.fail(errAt(path+"RouteKey", "route %s is defined twice", key))
		}
		cfg.Routes[key] = route
	}
	cfg.APIKeySelectionExpression = apiKeys
	t.keysAndPlans(live, keyRoutes)
}

// keysAndPlans reads the API keys and usage plans when routes (at the
// paths keyRoutes) require a key: AWS::ApiGateway::ApiKey with a Value,
// and AWS::ApiGateway::UsagePlan (with its UsagePlanKeys) for this API.
func (t *translator) keysAndPlans(live []*resource, keyRoutes []string) {
	if len(keyRoutes) == 0 {
		return
	}
	t.apiKeys(live)
	for _, p := range keyRoutes {
		if len(t.out.Config.APIKeys) == 0 {
			t.fail(errAt(p, "the route requires an API key, but the template has no AWS::ApiGateway::ApiKey with a Value for wsgate to accept (AWS generates the others)"))
		}
	}
	t.usagePlans(live)
}

func pickStage(t *translator, stages []*resource) *resource {
	if len(stages) == 0 {
		return nil
	}
	var names []string
	for _, s := range stages {
		name, err := t.r.physicalName(s, "Resources."+s.ID)
		if err != nil {
			t.fail(err)
			return nil
		}
		if t.opts.Stage == "" && len(stages) == 1 || name == t.opts.Stage {
			return s
		}
		names = append(names, name)
	}
	if t.opts.Stage == "" {
		t.fail(fmt.Errorf("%d stages (%s): choose one with --stage", len(stages), strings.Join(names, ", ")))
	} else {
		t.fail(fmt.Errorf("no stage %q (the template has %s)", t.opts.Stage, strings.Join(names, ", ")))
	}
	return nil
}

// stage reads an AWS::ApiGatewayV2::Stage (nil: none, --stage or wsgate's
// default names it).
func (t *translator) stage(res *resource) {
	cfg := &t.out.Config
	if res == nil {
		cfg.Stage = t.opts.Stage
		return
	}
	props := t.props(res)
	cfg.Stage = t.str(res, props, "StageName")
	t.stageSettings(res.ID, props)
}

// stageSettings reads StageVariables, DefaultRouteSettings and
// RouteSettings of a v2 stage or a SAM WebSocketApi.
func (t *translator) stageSettings(id string, props map[string]any) {
	path := "Resources." + id + ".Properties."
	if v, ok := props["StageVariables"]; ok {
		m, err := t.r.resolve(v, path+"StageVariables")
		if err != nil {
			t.fail(err)
			return
		}
		vars, ok := m.(map[string]any)
		if !ok {
			t.fail(errAt(path+"StageVariables", "want a mapping"))
			return
		}
		t.out.Config.StageVariables = map[string]string{}
		for k, v := range vars {
			t.out.Config.StageVariables[k] = scalarString(v)
		}
	}
	// settings reads one route settings object; its throttling (nil when
	// it sets none) takes AWS's account-level value (10,000 requests a
	// second, a burst of 5,000) for the half it leaves out.
	settings := func(p string, v any) *gateway.Throttling {
		m, err := t.r.resolve(v, p)
		if err != nil {
			t.fail(err)
			return nil
		}
		mm, _ := m.(map[string]any)
		var th *gateway.Throttling
		for _, k := range sortedKeys(mm) {
			switch k {
			case "DataTraceEnabled", "DetailedMetricsEnabled", "LoggingLevel":
			case "ThrottlingBurstLimit", "ThrottlingRateLimit":
				if th == nil {
					th = &gateway.Throttling{RateLimit: 10000, BurstLimit: 5000}
				}
				n, err := strconv.ParseFloat(scalarString(mm[k]), 64)
				switch {
				case err != nil || n <= 0:
					t.fail(errAt(p+"."+k, "%v: wsgate needs a number above 0", mm[k]))
				case k == "ThrottlingRateLimit":
					th.RateLimit = n
				case n != float64(int(n)):
					t.fail(errAt(p+"."+k, "%v: want an integer", mm[k]))
				default:
					th.BurstLimit = int(n)
				}
			default:
				t.fail(errAt(p+"."+k, "not supported by wsgate"))
			}
		}
		return th
	}
	if v, ok := props["DefaultRouteSettings"]; ok {
		t.out.Config.Throttling = settings(path+"DefaultRouteSettings", v)
	}
	if v, ok := props["RouteSettings"]; ok {
		m, _ := t.r.resolve(v, path+"RouteSettings")
		mm, _ := m.(map[string]any)
		for _, k := range sortedKeys(mm) {
			if th := settings(path+"RouteSettings."+k, mm[k]); th != nil {
				if t.routeThrottling == nil {
					t.routeThrottling = map[string]routeThrottling{}
				}
				t.routeThrottling[k] = routeThrottling{th, path + "RouteSettings." + k}
			}
		}
	}
}

// routeThrottling is a stage's RouteSettings throttling for one route key,
// and where the template says it.
type routeThrottling struct {
	th   *gateway.Throttling
	path string
}

// applyRouteThrottling gives the routes, once built, their RouteSettings
// throttling.
func (t *translator) applyRouteThrottling() {
	cfg := &t.out.Config
	for _, key := range sortedKeys(t.routeThrottling) {
		rt := t.routeThrottling[key]
		r, ok := cfg.Routes[key]
		switch {
		case !ok:
			t.fail(errAt(rt.path, "no route %q", key))
		case key == "$disconnect":
			t.out.Warnings = append(t.out.Warnings, rt.path+": wsgate never throttles $disconnect (its event would be lost)")
		default:
			r.Throttling = rt.th
			cfg.Routes[key] = r
		}
	}
}

var (
	invocationsRe = regexp.MustCompile(`/functions/(.+)/invocations$`)
	functionArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:[^:]*:[^:]*:function:([^:]+)(?::[^:]+)?$`)
)

// lambdaTarget turns a function ARN (or an API Gateway invocation URI
// around one) into a lambda integration: a function of the template runs
// locally under its logical id; any other is invoked on AWS Lambda.
func (t *translator) lambdaTarget(uri, path string) *integration.Config {
	arn := uri
	if m := invocationsRe.FindStringSubmatch(uri); m != nil {
		arn = m[1]
	}
	name := arn
	if m := functionArnRe.FindStringSubmatch(arn); m != nil {
		name = m[1]
	} else if strings.HasPrefix(arn, "arn:") || strings.Contains(arn, "/") {
		t.fail(errAt(path, "%q is not a Lambda function ARN or invocation URI", uri))
		return nil
	}
	if id, ok := t.fnByName[name]; ok {
		t.used[id] = true
		return &integration.Config{Type: "lambda", Function: t.fnName(id)}
	}
	t.out.Warnings = append(t.out.Warnings, fmt.Sprintf("%s: function %s is not in the template; it is invoked on AWS Lambda", path, arn))
	return &integration.Config{Type: "lambda", Function: arn}
}

func (t *translator) v2Integration(res *resource, responses map[string]integration.IntegrationResponse) *integration.Config {
	props := t.props(res)
	path := "Resources." + res.ID + ".Properties."
	typ := t.str(res, props, "IntegrationType")
	var ic *integration.Config
	switch typ {
	case "AWS_PROXY":
		for _, k := range []string{"RequestTemplates", "TemplateSelectionExpression"} {
			if _, ok := props[k]; ok {
				t.fail(errAt(path+k, "mapping templates are not evaluated by wsgate"))
			}
		}
		uri := t.str(res, props, "IntegrationUri")
		if uri == "" {
			t.fail(errAt(path+"IntegrationUri", "missing"))
			return nil
		}
		ic = t.lambdaTarget(uri, path+"IntegrationUri")
	case "MOCK":
		ic = t.mockIntegration(res, props, responses)
	case "AWS", "HTTP", "HTTP_PROXY":
		ic = t.nonProxyIntegration(res, props, typ, responses)
	case "":
		t.fail(errAt(path+"IntegrationType", "missing"))
		return nil
	default:
		t.fail(errAt(path+"IntegrationType", "%s is not an integration type of WebSocket APIs (AWS_PROXY, AWS, HTTP, HTTP_PROXY, MOCK)", typ))
		return nil
	}
	if ic != nil {
		ic.TimeoutMillis = t.num(res, props, "TimeoutInMillis")
	}
	return ic
}

func (t *translator) v2Authorizer(res *resource) *gateway.AuthorizerConfig {
	props := t.props(res)
	path := "Resources." + res.ID + ".Properties."
	if typ := t.str(res, props, "AuthorizerType"); typ != "REQUEST" {
		t.fail(errAt(path+"AuthorizerType", "%q: WebSocket APIs have REQUEST authorizers only", typ))
		return nil
	}
	uri := t.str(res, props, "AuthorizerUri")
	if uri == "" {
		t.fail(errAt(path+"AuthorizerUri", "missing"))
		return nil
	}
	a := &gateway.AuthorizerConfig{Integration: t.lambdaTarget(uri, path+"AuthorizerUri")}
	a.IdentitySource = t.strList(res.ID, props, "IdentitySource")
	if _, ok := props["AuthorizerResultTtlInSeconds"]; ok {
		n := t.num(res, props, "AuthorizerResultTtlInSeconds")
		a.ResultTTLSeconds = &n
	}
	return a
}

// strList resolves an optional list of strings (a single string counts as
// a list of one, as IdentitySource may be written).
func (t *translator) strList(id string, props map[string]any, key string) []string {
	v, ok := props[key]
	if !ok {
		return nil
	}
	path := "Resources." + id + ".Properties." + key
	rv, err := t.r.resolve(v, path)
	if err != nil {
		t.fail(err)
		return nil
	}
	switch x := rv.(type) {
	case string:
		var out []string
		for _, s := range strings.Split(x, ",") {
			out = append(out, strings.TrimSpace(s))
		}
		return out
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = scalarString(e)
		}
		return out
	}
	t.fail(errAt(path, "want a list of strings"))
	return nil
}

// samWebSocketAPI reads an AWS::Serverless::WebSocketApi.
func (t *translator) samWebSocketAPI(api *resource, live []*resource) {
	props := t.props(api)
	path := "Resources." + api.ID + ".Properties."
	cfg := &t.out.Config
	cfg.APIKeySelectionExpression = t.str(api, props, "ApiKeySelectionExpression")
	var keyRoutes []string
	cfg.RouteSelectionExpression = t.str(api, props, "RouteSelectionExpression")
	if cfg.RouteSelectionExpression == "" {
		cfg.RouteSelectionExpression = "$request.body.action"
	}
	cfg.Stage = t.str(api, props, "StageName")
	if cfg.Stage == "" {
		cfg.Stage = "default" // SAM's default StageName
	}
	if t.opts.Stage != "" && t.opts.Stage != cfg.Stage {
		t.fail(fmt.Errorf("no stage %q (%s has stage %s)", t.opts.Stage, api.ID, cfg.Stage))
	}
	t.stageSettings(api.ID, props)
	if v, ok := props["Auth"]; ok {
		m, err := t.r.resolve(v, path+"Auth")
		if err != nil {
			t.fail(err)
		}
		auth, _ := m.(map[string]any)
		for _, k := range sortedKeys(auth) {
			switch k {
			case "AuthType", "AuthArn", "IdentitySource", "Name", "InvokeRole":
			default:
				t.fail(errAt(path+"Auth."+k, "not supported by wsgate"))
			}
		}
		switch typ := scalarString(auth["AuthType"]); typ {
		case "NONE", "":
		case "AWS_IAM":
			cfg.AuthorizationType = "AWS_IAM"
			t.out.Warnings = append(t.out.Warnings, "Auth AWS_IAM on $connect: add the access keys clients sign with under credentials:")
		case "CUSTOM":
			arn := scalarString(auth["AuthArn"])
			if arn == "" {
				t.fail(errAt(path+"Auth.AuthArn", "required with AuthType CUSTOM"))
				break
			}
			a := &gateway.AuthorizerConfig{Integration: t.lambdaTarget(arn, path+"Auth.AuthArn")}
			if v, ok := auth["IdentitySource"]; ok {
				a.IdentitySource = t.strList(api.ID, map[string]any{"Auth.IdentitySource": v}, "Auth.IdentitySource")
			}
			cfg.Authorizer = a
		default:
			t.fail(errAt(path+"Auth.AuthType", "%q: want NONE, AWS_IAM or CUSTOM", typ))
		}
	}
	rv, err := t.r.resolve(props["Routes"], path+"Routes")
	if err != nil {
		t.fail(err)
		return
	}
	routes, _ := rv.(map[string]any)
	if len(routes) == 0 {
		t.fail(errAt(path+"Routes", "missing: no routes"))
	}
	cfg.Routes = map[string]gateway.Route{}
	for _, key := range sortedKeys(routes) {
		rp := path + "Routes." + key
		rc, ok := routes[key].(map[string]any)
		if !ok {
			t.fail(errAt(rp, "want a mapping"))
			continue
		}
		var route gateway.Route
		for _, k := range sortedKeys(rc) {
			switch k {
			case "FunctionArn":
				route.Integration = t.lambdaTarget(scalarString(rc[k]), rp+".FunctionArn")
			case "IntegrationTimeout": // below, once the integration is known
			case "RouteResponseSelectionExpression":
				route.RouteResponseSelectionExpression = scalarString(rc[k])
			case "ApiKeyRequired":
				if strings.EqualFold(scalarString(rc[k]), "true") {
					route.APIKeyRequired = true
					keyRoutes = append(keyRoutes, rp+".ApiKeyRequired")
				}
			case "OperationName", "ModelSelectionExpression":
			default:
				t.fail(errAt(rp+"."+k, "not supported by wsgate"))
			}
		}
		if route.Integration == nil {
			t.fail(errAt(rp+".FunctionArn", "missing"))
			continue
		}
		if v, ok := rc["IntegrationTimeout"]; ok {
			n, err := strconv.Atoi(scalarString(v))
			if err != nil {
				t.fail(errAt(rp+".IntegrationTimeout", "not a whole number"))
			}
			route.Integration.TimeoutMillis = n
		}
		cfg.Routes[key] = route
	}
	t.keysAndPlans(live, keyRoutes)
}

// function translates a used function.
func (t *translator) function(res *resource) (integration.FunctionConfig, bool) {
	props := res.Properties
	if res.Type == "AWS::Serverless::Function" && t.globals != nil {
		props = mergeGlobals(t.globals, props)
	}
	shadow := &resource{ID: res.ID, Type: res.Type, Properties: props, Metadata: res.Metadata}
	t.props(shadow)
	path := "Resources." + res.ID + ".Properties."
	fn := integration.FunctionConfig{
		Runtime:       t.str(shadow, props, "Runtime"),
		Handler:       t.str(shadow, props, "Handler"),
		TimeoutMillis: t.num(shadow, props, "Timeout") * 1000,
		MemorySizeMB:  t.num(shadow, props, "MemorySize"),
	}
	if pt := t.str(shadow, props, "PackageType"); pt != "" && pt != "Zip" {
		t.fail(errAt(path+"PackageType", "%s: container image functions are not run by wsgate", pt))
		return fn, false
	}
	if _, ok := props["ImageUri"]; ok {
		t.fail(errAt(path+"ImageUri", "container image functions are not run by wsgate"))
	}
	if bm, ok := res.Metadata["BuildMethod"].(string); ok {
		t.out.Warnings = append(t.out.Warnings, fmt.Sprintf("Resources.%s.Metadata.BuildMethod %s: wsgate does not build; run sam build and serve .aws-sam/build/template.yaml, or put the built code in codeUri", res.ID, bm))
	}
	if _, ok := props["Layers"]; ok {
		t.out.Warnings = append(t.out.Warnings, path+"Layers: layers are not mounted; the function sees only its own code")
	}
	if fn.Runtime == "" {
		t.fail(errAt(path+"Runtime", "missing"))
	}
	if n := t.num(shadow, props, "ReservedConcurrentExecutions"); n > 0 {
		fn.Concurrency = min(n, 64)
	}
	if dir, ok := t.inlineCode(res, props, t.fnName(res.ID), fn.Runtime, fn.Handler); ok {
		fn.CodeURI = dir
	} else if code := t.codeURI(shadow, props); code != "" {
		if t.opts.BaseDir != "" && !filepath.IsAbs(code) {
			code = filepath.Join(t.opts.BaseDir, code)
		}
		fn.CodeURI = code
	}
	if env, ok := props["Environment"]; ok {
		ev, err := t.r.resolve(env, path+"Environment")
		if err != nil {
			t.fail(err)
		}
		em, _ := ev.(map[string]any)
		vars, _ := em["Variables"].(map[string]any)
		if len(vars) > 0 {
			fn.Env = map[string]string{}
			for k, v := range vars {
				if _, bad := v.(map[string]any); bad {
					t.fail(errAt(path+"Environment.Variables."+k, "want a string"))
				}
				fn.Env[k] = scalarString(v)
			}
		}
	}
	return fn, true
}

// mergeGlobals applies SAM's Globals.Function under a function's own
// properties: maps (Environment.Variables) merge, everything else the
// function's value wins.
func mergeGlobals(g, props map[string]any) map[string]any {
	out := make(map[string]any, len(props)+len(g))
	for k, v := range g {
		out[k] = v
	}
	for k, v := range props {
		gm, gok := out[k].(map[string]any)
		pm, pok := v.(map[string]any)
		if gok && pok && !isIntrinsic(pm) && !isIntrinsic(gm) {
			out[k] = mergeGlobals(gm, pm)
			continue
		}
		out[k] = v
	}
	return out
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// codeURI finds a function's code directory: SAM's CodeUri, or for
// AWS::Lambda::Function the CDK asset its Metadata names.
func (t *translator) codeURI(res *resource, props map[string]any) string {
	path := "Resources." + res.ID + ".Properties."
	if res.Type == "AWS::Serverless::Function" {
		v, ok := props["CodeUri"]
		if !ok {
			t.fail(errAt(path+"CodeUri", "missing"))
			return ""
		}
		rv, err := t.r.resolve(v, path+"CodeUri")
		if err != nil {
			t.fail(err)
			return ""
		}
		s, ok := rv.(string)
		if !ok || strings.HasPrefix(s, "s3://") {
			t.fail(errAt(path+"CodeUri", "code in S3 is not fetched by wsgate: give a local directory"))
			return ""
		}
		return filepath.Clean(s)
	}
	if asset, _ := res.Metadata["aws:asset:path"].(string); asset != "" {
		if prop, _ := res.Metadata["aws:asset:property"].(string); prop == "" || prop == "Code" {
			return filepath.Clean(asset)
		}
	}
	if dir, ok := props["Code"].(string); ok {
		// aws cloudformation package's form: a local directory.
		return filepath.Clean(dir)
	}
	code, _ := props["Code"].(map[string]any)
	switch {
	case code == nil:
		t.fail(errAt(path+"Code", "missing"))
	case code["ImageUri"] != nil:
		t.fail(errAt(path+"Code.ImageUri", "container image functions are not run by wsgate"))
	default:
		t.fail(errAt(path+"Code", "code in S3 with no aws:asset:path metadata: wsgate needs the code on disk"))
	}
	return ""
}

// tablesAndStreams reads the DynamoDB tables, functions' DynamoDB events
// and event source mappings.
func (t *translator) tablesAndStreams(live []*resource) {
	tableByName := map[string]bool{}
	for _, res := range live {
		switch res.Type {
		case "AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable":
			if tb, ok := t.table(res); ok {
				t.out.Tables = append(t.out.Tables, tb)
				tableByName[tb.Name] = true
			}
		}
	}
	for _, res := range live {
		switch res.Type {
		case "AWS::Serverless::Function":
			ev, ok := res.Properties["Events"]
			if !ok {
				continue
			}
			path := "Resources." + res.ID + ".Properties.Events"
			em, _ := ev.(map[string]any)
			for _, name := range sortedKeys(em) {
				e, _ := em[name].(map[string]any)
				typ, _ := e["Type"].(string)
				if typ != "DynamoDB" {
					t.skip(res.ID+".Events."+name, typ, "event source not run locally (only DynamoDB streams are)")
					continue
				}
				p, _ := e["Properties"].(map[string]any)
				ep := &resource{ID: res.ID, Type: "event", Properties: p}
				t.stream(ep, res.ID+"."+name, res.ID, "Stream", path+"."+name+".Properties.", tableByName)
			}
		case "AWS::Lambda::EventSourceMapping":
			props := t.props(res)
			fn := t.str(res, props, "FunctionName")
			if m := functionArnRe.FindStringSubmatch(fn); m != nil {
				fn = m[1]
			}
			id, ok := t.fnByName[fn]
			if !ok {
				t.fail(errAt("Resources."+res.ID+".Properties.FunctionName", "%q is not a function of the template", fn))
				continue
			}
			src := t.str(res, props, "EventSourceArn")
			if !strings.Contains(src, ":dynamodb:") {
				t.skip(res.ID, res.Type, "event source not run locally (only DynamoDB streams are)")
				continue
			}
			t.stream(res, res.ID, id, "EventSourceArn", "Resources."+res.ID+".Properties.", tableByName)
		}
	}
}

// errAtTimestamp is why a DynamoDB stream cannot start AT_TIMESTAMP: AWS
// refuses such a mapping too ("AT_TIMESTAMP is supported only for Amazon
// Kinesis streams", CreateEventSourceMapping), as DynamoDB Streams have no
// timestamp iterator.
const errAtTimestamp = "AT_TIMESTAMP: Lambda starts only Kinesis streams at a timestamp, and AWS refuses it on a DynamoDB stream (DynamoDB Streams have no timestamp iterator); use LATEST or TRIM_HORIZON"

var streamArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:dynamodb:[^:]*:[^:]*:table/([^/]+)/stream/`)

// stream turns an event source (a SAM DynamoDB event's Properties or an
// EventSourceMapping) into a streams entry targeting function fnID.
func (t *translator) stream(res *resource, name, fnID, arnKey, path string, tables map[string]bool) {
	props := res.Properties
	str := func(k string) string {
		v, ok := props[k]
		if !ok {
			return ""
		}
		s, err := t.r.resolveString(v, path+k)
		if err != nil {
			t.fail(err)
		}
		return s
	}
	num := func(k string) (int, bool) {
		s := str(k)
		if s == "" {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			t.fail(errAt(path+k, "%q is not a whole number", s))
		}
		return n, true
	}
	if res.Type == "event" {
		for _, k := range sortedKeys(props) {
			switch k {
			case "Stream", "StartingPosition", "BatchSize", "MaximumBatchingWindowInSeconds", "MaximumRetryAttempts",
				"BisectBatchOnFunctionError", "MaximumRecordAgeInSeconds", "FunctionResponseTypes", "Enabled", "FilterCriteria",
				"StartingPositionTimestamp":
			case "ParallelizationFactor", "DestinationConfig", "MetricsConfig":
			default:
				t.fail(errAt(path+k, "not supported by wsgate"))
			}
		}
	}
	if _, ok := props["StartingPositionTimestamp"]; ok && str("StartingPosition") != "AT_TIMESTAMP" {
		t.fail(errAt(path+"StartingPositionTimestamp", "goes with StartingPosition AT_TIMESTAMP only"))
	}
	if e := str("Enabled"); strings.EqualFold(e, "false") {
		t.skip(name, "", "event source disabled (Enabled: false)")
		return
	}
	arn := str(arnKey)
	sc := streams.Config{Name: name}
	sc.Source.Type = "dynamodb"
	sc.Source.Endpoint = t.opts.DynamoDBEndpoint
	if m := streamArnRe.FindStringSubmatch(arn); m != nil && tables[m[1]] {
		sc.Source.Table = m[1]
	} else {
		sc.Source.StreamARN = arn
	}
	switch pos := str("StartingPosition"); pos {
	case "LATEST", "TRIM_HORIZON":
		sc.Source.StartingPosition = pos
	case "":
		t.fail(errAt(path+"StartingPosition", "missing (LATEST or TRIM_HORIZON)"))
	case "AT_TIMESTAMP":
		t.fail(errAt(path+"StartingPosition", "%s", errAtTimestamp))
	default:
		t.fail(errAt(path+"StartingPosition", "%q: wsgate reads LATEST or TRIM_HORIZON", pos))
	}
	sc.Target.Integration = &integration.Config{Type: "lambda", Function: t.fnName(fnID)}
	t.used[fnID] = true
	sc.Target.BatchSize, _ = num("BatchSize")
	sc.Target.MaximumBatchingWindowInSeconds, _ = num("MaximumBatchingWindowInSeconds")
	if n, ok := num("MaximumRetryAttempts"); ok {
		sc.Target.MaximumRetryAttempts = &n
	}
	if n, ok := num("MaximumRecordAgeInSeconds"); ok {
		sc.Target.MaximumRecordAgeInSeconds = &n
	}
	sc.Target.BisectBatchOnFunctionError = strings.EqualFold(str("BisectBatchOnFunctionError"), "true")
	if _, ok := props["FunctionResponseTypes"]; ok {
		l, err := t.r.resolveList(props["FunctionResponseTypes"], path+"FunctionResponseTypes")
		if err != nil {
			t.fail(err)
		}
		for _, e := range l {
			sc.Target.FunctionResponseTypes = append(sc.Target.FunctionResponseTypes, scalarString(e))
		}
	}
	if v, ok := props["FilterCriteria"]; ok {
		sc.Target.FilterCriteria = t.filterCriteria(v, path+"FilterCriteria")
	}
	if err := sc.Target.Validate(); err != nil {
		t.fail(errAt(path, "%v", err))
	}
	t.out.Config.Streams = append(t.out.Config.Streams, sc)
}

// filterCriteria reads an event source's FilterCriteria ({Filters:
// [{Pattern: "<JSON>"}]}); each pattern is checked here, so an error
// names its path in the template. No filter (or {}) is nil.
func (t *translator) filterCriteria(v any, path string) *eventfilter.Criteria {
	rv, err := t.r.resolve(v, path)
	if err != nil {
		t.fail(err)
		return nil
	}
	m, ok := rv.(map[string]any)
	if !ok {
		t.fail(errAt(path, "want {Filters: [{Pattern: ...}]}"))
		return nil
	}
	var fc eventfilter.Criteria
	for _, k := range sortedKeys(m) {
		if k != "Filters" {
			t.fail(errAt(path+"."+k, "not supported by wsgate"))
		}
	}
	filters, ok := m["Filters"].([]any)
	if !ok && m["Filters"] != nil {
		t.fail(errAt(path+".Filters", "want a list"))
	}
	if len(filters) > eventfilter.MaxFilters {
		t.fail(errAt(path+".Filters", "%d filters (at most %d)", len(filters), eventfilter.MaxFilters))
	}
	for i, f := range filters {
		fp := fmt.Sprintf("%s.Filters[%d].Pattern", path, i)
		fm, _ := f.(map[string]any)
		pat, ok := fm["Pattern"].(string)
		if !ok || len(fm) != 1 {
			t.fail(errAt(fp, "want a string holding the pattern's JSON"))
			continue
		}
		if _, err := eventfilter.Compile(pat); err != nil {
			t.fail(errAt(fp, "%v", err))
			continue
		}
		fc.Filters = append(fc.Filters, eventfilter.Filter{Pattern: eventfilter.Text(pat)})
	}
	if len(fc.Filters) == 0 {
		return nil
	}
	return &fc
}

// table reads a DynamoDB table's definition.
func (t *translator) table(res *resource) (Table, bool) {
	path := "Resources." + res.ID + ".Properties"
	name, err := t.r.physicalName(res, "Resources."+res.ID)
	if err != nil {
		t.fail(err)
		return Table{}, false
	}
	pv, err := t.r.resolve(res.Properties, path)
	if err != nil {
		t.fail(err)
		return Table{}, false
	}
	props := pv.(map[string]any)
	def := map[string]any{}
	if res.Type == "AWS::Serverless::SimpleTable" {
		pk, _ := props["PrimaryKey"].(map[string]any)
		kname, ktype := "id", "S"
		if pk != nil {
			kname = scalarString(pk["Name"])
			ktype = map[string]string{"String": "S", "Number": "N", "Binary": "B"}[scalarString(pk["Type"])]
		}
		def["AttributeDefinitions"] = []any{map[string]any{"AttributeName": kname, "AttributeType": ktype}}
		def["KeySchema"] = []any{map[string]any{"AttributeName": kname, "KeyType": "HASH"}}
		return Table{ID: res.ID, Name: name, Definition: def}, true
	}
	for _, k := range []string{"AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"} {
		if v, ok := props[k]; ok {
			def[k] = v
		}
	}
	if def["KeySchema"] == nil {
		t.fail(errAt(path+".KeySchema", "missing"))
		return Table{}, false
	}
	return Table{ID: res.ID, Name: name, Definition: def}, true
}

// mockIntegration translates a MOCK integration. The common static form
// (a $default request template {"statusCode": 200}, at most a static
// $default response) becomes a fixed response; anything else runs API
// Gateway's mapping templates (docs/vtl.md).
func (t *translator) mockIntegration(res *resource, props map[string]any, responses map[string]integration.IntegrationResponse) *integration.Config {
	req := t.strMap(res, props, "RequestTemplates")
	sel := t.str(res, props, "TemplateSelectionExpression")
	static := (sel == "" || sel == `\$default`) && len(responses) <= 1
	for k, s := range req {
		if k != "$default" || !regexp.MustCompile(`^\s*\{\s*"statusCode"\s*:\s*200\s*\}\s*$`).MatchString(s) {
			static = false
		}
	}
	var body string
	if def, ok := responses["$default"]; ok {
		body = def.ResponseTemplates["$default"]
		if len(def.ResponseTemplates) > 1 || def.TemplateSelectionExpression != "" || strings.ContainsAny(body, "$#") {
			static = false
		}
	} else if len(responses) > 0 {
		static = false
	}
	if !static {
		return &integration.Config{Type: "mock", RequestTemplates: req, TemplateSelectionExpression: sel, IntegrationResponses: responses,
			PassthroughBehavior: t.str(res, props, "PassthroughBehavior")}
	}
	// With no integration response AWS sends the client nothing; an empty
	// proxy response does the same in wsgate.
	resp := map[string]any{"statusCode": 200}
	if body != "" {
		resp["body"] = body
	}
	return &integration.Config{Type: "mock", Response: resp}
}

// nonProxyIntegration translates an AWS, HTTP or HTTP_PROXY integration:
// aws, http with mapping fields, http_proxy. An HTTP integration without
// templates still gets a template selection expression, which makes
// wsgate's http the non-proxy type (its message passes through) rather
// than the Lambda-event poster.
func (t *translator) nonProxyIntegration(res *resource, props map[string]any, typ string, responses map[string]integration.IntegrationResponse) *integration.Config {
	path := "Resources." + res.ID + ".Properties."
	ic := &integration.Config{
		URI:                                    t.str(res, props, "IntegrationUri"),
		IntegrationMethod:                      t.str(res, props, "IntegrationMethod"),
		CredentialsArn:                         t.str(res, props, "CredentialsArn"),
		RequestParameters:                      t.strMap(res, props, "RequestParameters"),
		RequestTemplates:                       t.strMap(res, props, "RequestTemplates"),
		TemplateSelectionExpression:            t.str(res, props, "TemplateSelectionExpression"),
		IntegrationResponses:                   responses,
		PassthroughBehavior:                    t.str(res, props, "PassthroughBehavior"),
		ContentHandlingStrategy:                t.str(res, props, "ContentHandlingStrategy"),
		IntegrationResponseSelectionExpression: t.str(res, props, "IntegrationResponseSelectionExpression"),
	}
	if ic.URI == "" {
		t.fail(errAt(path+"IntegrationUri", "missing"))
		return nil
	}
	switch typ {
	case "AWS":
		ic.Type = "aws"
	case "HTTP":
		ic.Type = "http"
		if ic.TemplateSelectionExpression == "" {
			ic.TemplateSelectionExpression = `\$default`
		}
	default:
		ic.Type = "http_proxy"
		// AWS keeps a passthrough behaviour on a proxy integration but
		// never uses it.
		ic.PassthroughBehavior = ""
		for _, k := range []string{"RequestTemplates", "TemplateSelectionExpression"} {
			if _, ok := props[k]; ok {
				t.fail(errAt(path+k, "an HTTP_PROXY integration has no mapping templates"))
			}
		}
		if len(responses) > 0 {
			t.fail(errAt(path+"IntegrationType", "an HTTP_PROXY integration has no integration responses"))
		}
	}
	if err := ic.Validate(); err != nil {
		t.fail(errAt(path+"IntegrationType", "%v", err))
		return nil
	}
	return ic
}

// models reads the API's models into the config's models, by Name.
func (t *translator) models(models []*resource) {
	for _, res := range models {
		props := t.props(res)
		path := "Resources." + res.ID + ".Properties."
		name := t.str(res, props, "Name")
		v, err := t.r.resolve(props["Schema"], path+"Schema")
		if err != nil {
			t.fail(err)
			continue
		}
		if s, ok := v.(string); ok { // a schema written as JSON text
			var doc any
			if err := json.Unmarshal([]byte(s), &doc); err != nil {
				t.fail(errAt(path+"Schema", "not JSON: %v", err))
				continue
			}
			v = doc
		}
		if name == "" || v == nil {
			t.fail(errAt(path, "a model needs Name and Schema"))
			continue
		}
		if t.out.Config.Models == nil {
			t.out.Config.Models = map[string]any{}
		}
		t.out.Config.Models[name] = v
	}
}

// apiKeys reads the AWS::ApiGateway::ApiKey resources that carry their
// Value (AWS generates the others, which wsgate cannot know).
func (t *translator) apiKeys(live []*resource) {
	for _, res := range live {
		if res.Type != "AWS::ApiGateway::ApiKey" {
			continue
		}
		path := "Resources." + res.ID + ".Properties."
		value, err := t.r.resolveString(res.Properties["Value"], path+"Value")
		if err != nil {
			t.fail(err)
			continue
		}
		if value == "" {
			t.out.Warnings = append(t.out.Warnings, fmt.Sprintf("%s: an API key without a Value is generated by AWS: add it under apiKeys", res.ID))
			t.markKeyRes(res.ID)
			continue
		}
		name, _ := t.r.resolveString(res.Properties["Name"], path+"Name")
		k := gateway.APIKey{ID: res.ID, Name: cmp.Or(name, res.ID), Value: value}
		if en, _ := t.r.resolveString(res.Properties["Enabled"], path+"Enabled"); strings.EqualFold(en, "false") {
			k.Enabled = new(bool)
		}
		t.out.Config.APIKeys = append(t.out.Config.APIKeys, k)
		t.markKeyRes(res.ID)
	}
}

// usagePlans reads the AWS::ApiGateway::UsagePlan resources whose
// ApiStages name this API (a plan without ApiStages applies too) and puts
// the keys their AWS::ApiGateway::UsagePlanKey resources name in them. A
// key wsgate has no value for (AWS generated it) is left out with a
// warning.
func (t *translator) usagePlans(live []*resource) {
	cfg := &t.out.Config
	keyNames := map[string]string{} // the key's Ref (its logical id) -> its name in apiKeys
	for _, k := range cfg.APIKeys {
		keyNames[k.ID] = k.Name
	}
	plans := map[string]int{} // plan logical id -> index in cfg.UsagePlans
	for _, res := range live {
		if res.Type != "AWS::ApiGateway::UsagePlan" {
			continue
		}
		path := "Resources." + res.ID + ".Properties."
		pv, err := t.r.resolve(res.Properties, path)
		if err != nil {
			t.fail(err)
			continue
		}
		props, _ := pv.(map[string]any)
		if stages, ok := props["ApiStages"].([]any); ok && len(stages) > 0 {
			mine := false
			for i, st := range stages {
				m, _ := st.(map[string]any)
				if scalarString(m["ApiId"]) != t.opts.APIID {
					continue
				}
				mine = true
				if stage := scalarString(m["Stage"]); stage != "" && stage != cfg.Stage {
					mine = false
				}
				if _, ok := m["Throttle"]; ok && mine {
					t.out.Warnings = append(t.out.Warnings, fmt.Sprintf("%sApiStages[%d].Throttle: per-route throttling of a usage plan is not applied (the plan's Throttle is)", path, i))
				}
			}
			if !mine {
				continue
			}
		}
		plan := gateway.UsagePlan{Name: cmp.Or(scalarString(props["UsagePlanName"]), res.ID)}
		if th, ok := props["Throttle"].(map[string]any); ok {
			plan.Throttle = &gateway.Throttling{RateLimit: 10000, BurstLimit: 5000} // AWS's account-level values for a missing half
			if v, ok := th["RateLimit"]; ok {
				plan.Throttle.RateLimit, _ = strconv.ParseFloat(scalarString(v), 64)
			}
			if v, ok := th["BurstLimit"]; ok {
				plan.Throttle.BurstLimit, _ = strconv.Atoi(scalarString(v))
			}
		}
		if q, ok := props["Quota"].(map[string]any); ok {
			plan.Quota = &gateway.Quota{Period: scalarString(q["Period"])}
			plan.Quota.Limit, _ = strconv.Atoi(scalarString(q["Limit"]))
			if v, ok := q["Offset"]; ok {
				plan.Quota.Offset, _ = strconv.Atoi(scalarString(v))
			}
		}
		for _, k := range sortedKeys(props) {
			switch k {
			case "ApiStages", "Throttle", "Quota", "UsagePlanName", "Description", "Tags":
			default:
				t.fail(errAt(path+k, "not supported by wsgate"))
			}
		}
		plans[res.ID] = len(cfg.UsagePlans)
		cfg.UsagePlans = append(cfg.UsagePlans, plan)
		t.markKeyRes(res.ID)
	}
	for _, res := range live {
		if res.Type != "AWS::ApiGateway::UsagePlanKey" {
			continue
		}
		path := "Resources." + res.ID + ".Properties."
		planID, err := t.r.resolveString(res.Properties["UsagePlanId"], path+"UsagePlanId")
		if err != nil {
			t.fail(err)
			continue
		}
		keyID, err := t.r.resolveString(res.Properties["KeyId"], path+"KeyId")
		if err != nil {
			t.fail(err)
			continue
		}
		i, ok := plans[planID]
		if !ok {
			continue // a plan of another API
		}
		name, ok := keyNames[keyID]
		if !ok {
			t.out.Warnings = append(t.out.Warnings, fmt.Sprintf("%s: key %s has no Value in the template: add it under apiKeys and usagePlans", res.ID, keyID))
			t.markKeyRes(res.ID)
			continue
		}
		cfg.UsagePlans[i].APIKeys = append(cfg.UsagePlans[i].APIKeys, name)
		t.markKeyRes(res.ID)
	}
}

func (t *translator) markKeyRes(id string) {
	if t.keyRes == nil {
		t.keyRes = map[string]bool{}
	}
	t.keyRes[id] = true
}

// strMap reads a map of strings (mapping templates by key); nil when the
// property is absent.
func (t *translator) strMap(res *resource, props map[string]any, key string) map[string]string {
	m, ok := props[key].(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		s, err := t.r.resolveString(m[k], "Resources."+res.ID+".Properties."+key+"."+k)
		if err != nil {
			t.fail(err)
			continue
		}
		out[k] = s
	}
	return out
}
