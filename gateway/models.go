package gateway

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/vtl/apigw"
)

// frameBadBody answers a message its route's request model refuses:
// API Gateway's BAD_REQUEST_BODY gateway response.
const frameBadBody = "Invalid request body"

// requestModels is a route's request validation: the model selection
// expression and the compiled JSON schema of each request model key.
type requestModels struct {
	selection *apigw.Selection
	schemas   map[string]*jsonschema.Schema
}

// errNoLoader refuses every $ref outside the model itself: models are
// compiled offline, never fetched.
var errNoLoader = errors.New("models may not reference other documents")

type noLoader struct{}

func (noLoader) Load(url string) (any, error) { return nil, fmt.Errorf("%s: %w", url, errNoLoader) }

// compileModel compiles one model (JSON Schema draft 4, API Gateway's
// dialect, unless the schema names another with $schema).
func compileModel(name string, schema any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.UseLoader(noLoader{})
	loc := "model:///" + name
	if err := c.AddResource(loc, schema); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

// buildRequestModels compiles a route's request models; nil when the
// route has none.
func buildRequestModels(r *Route, models map[string]any) (*requestModels, error) {
	if len(r.RequestModels) == 0 {
		if r.ModelSelectionExpression != "" {
			var e confcheck.Errors
			e.Addf("modelSelectionExpression", "set but the route has no requestModels")
			return nil, e.Err()
		}
		return nil, nil
	}
	var e confcheck.Errors
	expr := r.ModelSelectionExpression
	if expr == "" {
		expr = `\$default`
	}
	sel, err := apigw.ParseSelection(expr)
	if err != nil {
		e.Addf("modelSelectionExpression", "%v", err)
	}
	rm := &requestModels{selection: sel, schemas: map[string]*jsonschema.Schema{}}
	for _, key := range slices.Sorted(maps.Keys(r.RequestModels)) {
		name := r.RequestModels[key]
		schema, ok := models[name]
		if !ok {
			e.Addf(confcheck.Key("requestModels", key), "no model %q under models", name)
			continue
		}
		s, err := compileModel(name, schema)
		if err != nil {
			e.Addf(confcheck.Key("requestModels", key), "model %q: %v", name, err)
			continue
		}
		rm.schemas[key] = s
	}
	return rm, e.Err()
}

// valid reports whether body passes the model the selection expression
// picks (else the $default model). No model for the key, or a body that is
// not JSON, fails, as on AWS.
func (rm *requestModels) valid(body string) bool {
	key := rm.selection.Eval(&apigw.Request{Body: body}, "")
	s, ok := rm.schemas[key]
	if !ok {
		if s, ok = rm.schemas["$default"]; !ok {
			return false
		}
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		return false
	}
	return s.Validate(v) == nil
}
