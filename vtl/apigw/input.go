package apigw

import (
	"fmt"
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
	// What this render's calls produced: bytes of JSON text, values
	// copied.
	jsonBytes, copied int
}

// Bounds on what one render's $input.json and $input.path calls produce in
// all: a template calling them in a loop over a large body stops with an
// error wrapping vtl.ErrLimit. The text $input.json returns is charged to
// vtl.Limits.Alloc as well; the values $input.path copies are not, so
// their bound is here.
const (
	maxJSONBytes   = 64 << 20
	maxCopiedValue = 1 << 20
)

var (
	errJSONBytes = fmt.Errorf("$input.json produced more than %d bytes: %w", maxJSONBytes, vtl.ErrLimit)
	errCopied    = fmt.Errorf("$input.path produced more than %d values: %w", maxCopiedValue, vtl.ErrLimit)
)

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
			text, ok := vtl.JSONLimit(v, maxJSONBytes-in.jsonBytes)
			in.jsonBytes += len(text)
			if !ok {
				return nil, true, errJSONBytes
			}
			return text, true, nil
		}
		// A copy, so what the template changes is not seen by the next
		// call (Java reads the body anew each time); within one result
		// shared values stay shared, as in Java's.
		c := copier{seen: map[any]any{}, budget: maxCopiedValue - in.copied}
		out := c.copy(v)
		in.copied = maxCopiedValue - c.budget
		if c.budget < 0 {
			return nil, true, errCopied
		}
		return out, true, nil
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
