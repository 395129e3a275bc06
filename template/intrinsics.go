package template

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// noValue is what Ref AWS::NoValue resolves to: the property (or list
// element) holding it is removed.
type noValueType struct{}

var noValue = noValueType{}

// resolver evaluates intrinsic functions against a CloudFormation
// document: its parameters (defaults and overrides), mappings, conditions
// and the physical names its resources get locally.
type resolver struct {
	opts       *Options
	params     map[string]any // resolved parameter values
	paramErrs  map[string]error
	mappings   map[string]any
	conditions map[string]any
	condCache  map[string]bool
	condBusy   map[string]bool
	resources  map[string]*resource
	steps      int // values resolved so far, bounded by maxValues
}

type resource struct {
	ID         string
	Type       string
	Properties map[string]any
	Metadata   map[string]any
	Condition  string
	raw        map[string]any
}

// path names where a value sits in the template, for errors:
// Resources.ConnectRoute.Properties.Target.
func join(path string, elem any) string {
	switch e := elem.(type) {
	case int:
		return fmt.Sprintf("%s[%d]", path, e)
	default:
		if path == "" {
			return fmt.Sprint(e)
		}
		return fmt.Sprintf("%s.%v", path, e)
	}
}

// errAt is an error at a path in the template.
func errAt(path, format string, a ...any) error {
	return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...))
}

func newResolver(doc map[string]any, opts *Options) (*resolver, error) {
	r := &resolver{
		opts: opts, params: map[string]any{}, paramErrs: map[string]error{},
		condCache: map[string]bool{}, condBusy: map[string]bool{}, resources: map[string]*resource{},
	}
	r.mappings, _ = doc["Mappings"].(map[string]any)
	r.conditions, _ = doc["Conditions"].(map[string]any)
	params, _ := doc["Parameters"].(map[string]any)
	for name := range opts.Parameters {
		if _, ok := params[name]; !ok {
			return nil, fmt.Errorf("parameter override %s: the template has no parameter %s", name, name)
		}
	}
	for name, p := range params {
		pm, ok := p.(map[string]any)
		if !ok {
			return nil, errAt("Parameters."+name, "not a mapping")
		}
		if err := r.setParam(name, pm); err != nil {
			return nil, err
		}
	}
	res, ok := doc["Resources"].(map[string]any)
	if !ok {
		return nil, errAt("Resources", "missing or not a mapping")
	}
	for id, v := range res {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errAt("Resources."+id, "not a mapping")
		}
		t, _ := m["Type"].(string)
		if t == "" {
			return nil, errAt("Resources."+id+".Type", "missing")
		}
		props, _ := m["Properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
		}
		md, _ := m["Metadata"].(map[string]any)
		cond, _ := m["Condition"].(string)
		r.resources[id] = &resource{ID: id, Type: t, Properties: props, Metadata: md, Condition: cond, raw: m}
	}
	return r, nil
}

func (r *resolver) setParam(name string, p map[string]any) error {
	path := "Parameters." + name
	typ, _ := p["Type"].(string)
	val, set := r.opts.Parameters[name]
	var v any
	switch {
	case set:
		v = val
	case p["Default"] != nil:
		v = scalarString(p["Default"])
	default:
		r.paramErrs[name] = errAt(path, "no Default: pass --parameter-overrides %s=VALUE", name)
		return nil
	}
	s := v.(string)
	if allowed, ok := p["AllowedValues"].([]any); ok && !strings.HasPrefix(typ, "List") && typ != "CommaDelimitedList" {
		found := false
		for _, a := range allowed {
			if scalarString(a) == s {
				found = true
			}
		}
		if !found {
			return errAt(path, "value %q is not one of AllowedValues", s)
		}
	}
	switch {
	case strings.HasPrefix(typ, "AWS::SSM::Parameter::Value"):
		// The value lives in SSM Parameter Store; only an override can
		// give it locally. Referenced without one, it is an error.
		if !set {
			r.paramErrs[name] = errAt(path, "type %s reads SSM Parameter Store: pass --parameter-overrides %s=VALUE", typ, name)
			return nil
		}
		r.params[name] = s
	case typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<"):
		var l []any
		for _, e := range strings.Split(s, ",") {
			l = append(l, strings.TrimSpace(e))
		}
		r.params[name] = l
	default:
		r.params[name] = s
	}
	return nil
}

// scalarString is a scalar's text as CloudFormation sees it.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// resolve evaluates every intrinsic in v.
func (r *resolver) resolve(v any, path string) (any, error) {
	// Fn::Sub variables and Fn::If branches are resolved at each use: a
	// few nested levels of them could otherwise cost exponential time.
	if r.steps++; r.steps > maxValues {
		return nil, errAt(path, "intrinsic functions expand to more than %d values", maxValues)
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return r.intrinsic(k, arg, join(path, k))
				}
			}
		}
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			rv, err := r.resolve(x[k], join(path, k))
			if err != nil {
				return nil, err
			}
			if rv != noValue {
				out[k] = rv
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, e := range x {
			rv, err := r.resolve(e, join(path, i))
			if err != nil {
				return nil, err
			}
			if rv != noValue {
				out = append(out, rv)
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolveString resolves v and requires a scalar, given as text.
func (r *resolver) resolveString(v any, path string) (string, error) {
	rv, err := r.resolve(v, path)
	if err != nil {
		return "", err
	}
	switch rv.(type) {
	case map[string]any, []any:
		return "", errAt(path, "want a string, got %s", describe(rv))
	}
	if rv == noValue {
		return "", nil
	}
	return scalarString(rv), nil
}

func (r *resolver) resolveList(v any, path string) ([]any, error) {
	rv, err := r.resolve(v, path)
	if err != nil {
		return nil, err
	}
	l, ok := rv.([]any)
	if !ok {
		return nil, errAt(path, "want a list, got %s", describe(rv))
	}
	return l, nil
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	default:
		return fmt.Sprintf("%q", scalarString(v))
	}
}

func (r *resolver) intrinsic(fn string, arg any, path string) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, errAt(path, "want a name")
		}
		return r.ref(name, path)
	case "Fn::GetAtt":
		var id, attr string
		switch a := arg.(type) {
		case string:
			id, attr, _ = strings.Cut(a, ".")
		case []any:
			if len(a) != 2 {
				return nil, errAt(path, "want [LogicalId, Attribute]")
			}
			id = scalarString(a[0])
			s, err := r.resolveString(a[1], join(path, 1))
			if err != nil {
				return nil, err
			}
			attr = s
		}
		if id == "" || attr == "" {
			return nil, errAt(path, "want LogicalId.Attribute")
		}
		return r.getAtt(id, attr, path)
	case "Fn::Sub":
		return r.sub(arg, path)
	case "Fn::Join":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, errAt(path, "want [delimiter, list]")
		}
		delim, err := r.resolveString(a[0], join(path, 0))
		if err != nil {
			return nil, err
		}
		l, err := r.resolveList(a[1], join(path, 1))
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(l))
		for i, e := range l {
			if _, bad := e.(map[string]any); bad {
				return nil, errAt(join(join(path, 1), i), "want a string, got a mapping")
			}
			parts[i] = scalarString(e)
		}
		return strings.Join(parts, delim), nil
	case "Fn::Select":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, errAt(path, "want [index, list]")
		}
		is, err := r.resolveString(a[0], join(path, 0))
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(is)
		if err != nil {
			return nil, errAt(join(path, 0), "index %q is not a number", is)
		}
		l, err := r.resolveList(a[1], join(path, 1))
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= len(l) {
			return nil, errAt(path, "index %d out of range (list of %d)", i, len(l))
		}
		return l[i], nil
	case "Fn::Split":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, errAt(path, "want [delimiter, string]")
		}
		delim, err := r.resolveString(a[0], join(path, 0))
		if err != nil {
			return nil, err
		}
		s, err := r.resolveString(a[1], join(path, 1))
		if err != nil {
			return nil, err
		}
		if delim == "" {
			return nil, errAt(path, "empty delimiter")
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::If":
		a, ok := arg.([]any)
		if !ok || len(a) != 3 {
			return nil, errAt(path, "want [condition, value if true, value if false]")
		}
		name, ok := a[0].(string)
		if !ok {
			return nil, errAt(join(path, 0), "want a condition name")
		}
		c, err := r.condition(name, join(path, 0))
		if err != nil {
			return nil, err
		}
		if c {
			return r.resolve(a[1], join(path, 1))
		}
		return r.resolve(a[2], join(path, 2))
	case "Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not":
		return r.evalCondition(map[string]any{fn: arg}, path)
	case "Fn::FindInMap":
		a, ok := arg.([]any)
		if !ok || len(a) < 3 {
			return nil, errAt(path, "want [MapName, TopLevelKey, SecondLevelKey]")
		}
		keys := make([]string, 3)
		for i := range keys {
			s, err := r.resolveString(a[i], join(path, i))
			if err != nil {
				return nil, err
			}
			keys[i] = s
		}
		m, _ := r.mappings[keys[0]].(map[string]any)
		if m == nil {
			return nil, errAt(path, "no mapping %q in Mappings", keys[0])
		}
		top, _ := m[keys[1]].(map[string]any)
		v, found := top[keys[2]]
		if !found {
			return nil, errAt(path, "Mappings.%s has no %s.%s", keys[0], keys[1], keys[2])
		}
		return v, nil
	case "Fn::Base64":
		s, err := r.resolveString(arg, path)
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "Fn::GetAZs":
		reg := r.opts.Region
		return []any{reg + "a", reg + "b", reg + "c"}, nil
	default:
		return nil, errAt(path, "%s cannot be evaluated locally", fn)
	}
}

// condition evaluates a named condition of the Conditions section.
func (r *resolver) condition(name, path string) (bool, error) {
	if v, ok := r.condCache[name]; ok {
		return v, nil
	}
	def, ok := r.conditions[name]
	if !ok {
		return false, errAt(path, "no condition %q in Conditions", name)
	}
	if r.condBusy[name] {
		return false, errAt("Conditions."+name, "refers to itself")
	}
	r.condBusy[name] = true
	v, err := r.evalCondition(def, "Conditions."+name)
	delete(r.condBusy, name)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, errAt("Conditions."+name, "does not evaluate to true or false")
	}
	r.condCache[name] = b
	return b, nil
}

// evalCondition evaluates a condition expression: Fn::Equals, Fn::And,
// Fn::Or, Fn::Not, {Condition: Name}.
func (r *resolver) evalCondition(v any, path string) (any, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, errAt(path, "want a condition function")
	}
	for fn, arg := range m {
		p := join(path, fn)
		if fn == "Condition" {
			name, ok := arg.(string)
			if !ok {
				return nil, errAt(p, "want a condition name")
			}
			return r.condition(name, p)
		}
		a, ok := arg.([]any)
		if !ok {
			return nil, errAt(p, "want a list")
		}
		switch fn {
		case "Fn::Equals":
			if len(a) != 2 {
				return nil, errAt(p, "want two values")
			}
			x, err := r.resolve(a[0], join(p, 0))
			if err != nil {
				return nil, err
			}
			y, err := r.resolve(a[1], join(p, 1))
			if err != nil {
				return nil, err
			}
			return fmt.Sprint(normalize(x)) == fmt.Sprint(normalize(y)), nil
		case "Fn::And", "Fn::Or", "Fn::Not":
			if fn == "Fn::Not" && len(a) != 1 {
				return nil, errAt(p, "want one condition")
			}
			if fn != "Fn::Not" && (len(a) < 2 || len(a) > 10) {
				return nil, errAt(p, "want 2 to 10 conditions")
			}
			res := fn == "Fn::And"
			for i, c := range a {
				cv, err := r.evalCondition(c, join(p, i))
				if err != nil {
					return nil, err
				}
				b, ok := cv.(bool)
				if !ok {
					return nil, errAt(join(p, i), "not a condition")
				}
				switch fn {
				case "Fn::Not":
					return !b, nil
				case "Fn::And":
					res = res && b
				default:
					res = res || b
				}
			}
			return res, nil
		default:
			// Fn::If and friends inside a condition are resolved as values.
			return r.intrinsic(fn, arg, p)
		}
	}
	return nil, nil
}

// normalize makes scalars compare as CloudFormation compares them: as text.
func normalize(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = scalarString(e)
		}
		return out
	case map[string]any:
		return x
	default:
		return scalarString(v)
	}
}

// pseudo returns a pseudo parameter's value.
func (r *resolver) pseudo(name string) (any, bool) {
	switch name {
	case "AWS::Region":
		return r.opts.Region, true
	case "AWS::AccountId":
		return r.opts.AccountID, true
	case "AWS::StackName":
		return r.opts.StackName, true
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/00000000-0000-0000-0000-000000000000", r.opts.Region, r.opts.AccountID, r.opts.StackName), true
	case "AWS::Partition":
		return "aws", true
	case "AWS::URLSuffix":
		return "amazonaws.com", true
	case "AWS::NoValue":
		return noValue, true
	case "AWS::NotificationARNs":
		return []any{}, true
	}
	return nil, false
}

func (r *resolver) ref(name, path string) (any, error) {
	if v, ok := r.pseudo(name); ok {
		return v, nil
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if err, ok := r.paramErrs[name]; ok {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	res, ok := r.resources[name]
	if !ok {
		return nil, errAt(path, "Ref to %q: no such parameter or resource", name)
	}
	if err := r.mustExist(res, path); err != nil {
		return nil, err
	}
	return r.physicalName(res, path)
}

// mustExist refuses a reference to a resource its condition leaves out.
func (r *resolver) mustExist(res *resource, path string) error {
	if res.Condition == "" {
		return nil
	}
	ok, err := r.condition(res.Condition, "Resources."+res.ID+".Condition")
	if err != nil {
		return err
	}
	if !ok {
		return errAt(path, "refers to %s, which condition %s leaves out", res.ID, res.Condition)
	}
	return nil
}

// physicalName is what Ref gives for a resource locally: the name it is
// given in the template, else its logical id (CloudFormation would add the
// stack name and a random suffix; locally the logical id is the name).
func (r *resolver) physicalName(res *resource, path string) (string, error) {
	nameProp := map[string]string{
		"AWS::Lambda::Function":        "FunctionName",
		"AWS::Serverless::Function":    "FunctionName",
		"AWS::DynamoDB::Table":         "TableName",
		"AWS::Serverless::SimpleTable": "TableName",
		"AWS::ApiGatewayV2::Stage":     "StageName",
	}[res.Type]
	switch res.Type {
	case "AWS::ApiGatewayV2::Api", "AWS::Serverless::WebSocketApi":
		return r.opts.APIID, nil
	}
	if nameProp != "" {
		if v, ok := res.Properties[nameProp]; ok {
			return r.resolveString(v, "Resources."+res.ID+".Properties."+nameProp)
		}
		if res.Type == "AWS::ApiGatewayV2::Stage" {
			return "", errAt("Resources."+res.ID+".Properties.StageName", "missing")
		}
	}
	return res.ID, nil
}

func (r *resolver) getAtt(id, attr, path string) (any, error) {
	res, ok := r.resources[id]
	if !ok {
		return nil, errAt(path, "Fn::GetAtt of %q: no such resource", id)
	}
	if err := r.mustExist(res, path); err != nil {
		return nil, err
	}
	name, err := r.physicalName(res, path)
	if err != nil {
		return nil, err
	}
	reg, acct := r.opts.Region, r.opts.AccountID
	switch res.Type {
	case "AWS::Lambda::Function", "AWS::Serverless::Function":
		if attr == "Arn" {
			return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", reg, acct, name), nil
		}
	case "AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable":
		switch attr {
		case "Arn":
			return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", reg, acct, name), nil
		case "StreamArn":
			if _, ok := res.Properties["StreamSpecification"]; !ok {
				return nil, errAt(path, "%s has no StreamSpecification, so no StreamArn", id)
			}
			return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/%s", reg, acct, name, streamLabel), nil
		}
	case "AWS::ApiGatewayV2::Api", "AWS::Serverless::WebSocketApi":
		switch attr {
		case "ApiEndpoint":
			return fmt.Sprintf("wss://%s.execute-api.%s.amazonaws.com", name, reg), nil
		case "ApiId":
			return name, nil
		}
	}
	if attr == "Arn" {
		// Roles, queues, topics: not created locally; an ARN of the right
		// shape keeps policies and environment values well formed.
		svc := strings.ToLower(strings.Split(res.Type, "::")[1])
		return fmt.Sprintf("arn:aws:%s:%s:%s:%s", svc, reg, acct, name), nil
	}
	return nil, errAt(path, "Fn::GetAtt %s.%s: attribute not known locally for %s", id, attr, res.Type)
}

// streamLabel is the label in the stream ARNs of tables: the fixed time
// stands in for the creation time a real table's stream is labelled with.
const streamLabel = "1970-01-01T00:00:00.000"

var subVarRe = regexp.MustCompile(`\$\{([^}]*)\}`)

// sub evaluates Fn::Sub, in its string and its [string, {vars}] form.
func (r *resolver) sub(arg any, path string) (any, error) {
	var (
		text string
		vars map[string]any
	)
	switch a := arg.(type) {
	case string:
		text = a
	case []any:
		if len(a) != 2 {
			return nil, errAt(path, "want a string or [string, {variables}]")
		}
		s, ok := a[0].(string)
		m, ok2 := a[1].(map[string]any)
		if !ok || !ok2 {
			return nil, errAt(path, "want [string, {variables}]")
		}
		text, vars = s, m
	default:
		return nil, errAt(path, "want a string or [string, {variables}]")
	}
	var firstErr error
	out := subVarRe.ReplaceAllStringFunc(text, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		if firstErr != nil {
			return ""
		}
		var (
			v   any
			err error
		)
		if vv, ok := vars[name]; ok {
			v, err = r.resolve(vv, join(path, name))
		} else if id, attr, dotted := strings.Cut(name, "."); dotted && r.resources[id] != nil {
			v, err = r.getAtt(id, attr, path)
		} else {
			v, err = r.ref(name, path)
		}
		if err == nil {
			switch v.(type) {
			case map[string]any, []any:
				err = errAt(path, "${%s} is %s, not a string", name, describe(v))
			}
		}
		if err != nil {
			firstErr = err
			return ""
		}
		return scalarString(v)
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}
