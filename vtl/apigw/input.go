package apigw

import (
	"maps"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/vtl"
)

// Input is $input. It parses the body once, at the first $input.path or
// $input.json, and keeps the compiled paths of that render.
type Input struct {
	req    *Request
	parsed bool
	doc    any
	docErr error
	paths  map[string]*jsonPath
}

var _ vtl.Object = (*Input)(nil)

// Property answers $input.body: the raw body, or {} when it is empty
// (what API Gateway renders for an empty body).
func (in *Input) Property(name string) (any, bool) {
	switch name {
	case "body":
		if in.req.Body == "" {
			return "{}", true
		}
		return in.req.Body, true
	}
	return nil, false
}

// Call answers $input.json(path), $input.path(path), $input.params() and
// $input.params(name).
func (in *Input) Call(name string, args []any) (any, bool, error) {
	switch name {
	case "json", "path":
		if len(args) != 1 {
			return nil, false, nil
		}
		p, ok := args[0].(string)
		if !ok {
			return nil, true, nil
		}
		v, found, err := in.lookup(p)
		if err != nil || !found {
			return nil, true, err
		}
		if name == "json" {
			return vtl.JSON(v), true, nil
		}
		return deepCopy(v), true, nil
	case "params":
		switch len(args) {
		case 0:
			m := vtl.NewMap(3)
			m.Put("path", stringMap(in.req.Path))
			m.Put("querystring", stringMap(in.req.QueryString))
			m.Put("header", stringMap(in.req.Header))
			return m, true, nil
		case 1:
			p, ok := args[0].(string)
			if !ok {
				return nil, true, nil
			}
			return in.param(p), true, nil
		}
	}
	return nil, false, nil
}

// param looks a parameter up in the path, the query string, then the
// headers (by exact name, then ignoring case); "" when absent.
func (in *Input) param(name string) string {
	for _, m := range []map[string]string{in.req.Path, in.req.QueryString, in.req.Header} {
		if v, ok := m[name]; ok {
			return v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(in.req.Header)) {
		if strings.EqualFold(k, name) {
			return in.req.Header[k]
		}
	}
	return ""
}

// lookup evaluates a JSONPath on the body. A body that is not JSON
// matches nothing.
func (in *Input) lookup(p string) (any, bool, error) {
	jp, ok := in.paths[p]
	if !ok {
		var err error
		if jp, err = compilePath(p); err != nil {
			return nil, false, err
		}
		if in.paths == nil {
			in.paths = map[string]*jsonPath{}
		}
		if len(in.paths) < 64 {
			in.paths[p] = jp
		}
	}
	if !in.parsed {
		in.parsed = true
		body := strings.TrimSpace(in.req.Body)
		if body == "" {
			body = "{}"
		}
		in.doc, in.docErr = parseJSON(body)
	}
	if in.docErr != nil {
		return nil, false, nil
	}
	v, found := jp.eval(in.doc)
	return v, found, nil
}
