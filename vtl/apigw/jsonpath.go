package apigw

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/vtl"
)

// The JSONPath subset $input.path and $input.json evaluate, with Jayway
// JsonPath's semantics (what API Gateway runs): $, .name, ['name'],
// ['a','b'], [n], [-n], [a:b], [*], .*, ..name, ..*, and a path without
// the leading $ taken as $.path. Filters ([?(...)]) and functions are not
// supported and are an error.

type segKind int

const (
	segName  segKind = iota // .name or ['name']
	segNames                // ['a','b']: a map of those keys, as Jayway answers
	segWild                 // .* or [*]
	segIndex                // [n] or [n,m]
	segSlice                // [a:b]
	segDeep                 // ..name, ..*, ..[...]: the next segment applied to every descendant
)

type segment struct {
	kind     segKind
	names    []string
	indexes  []int
	from, to *int
}

type jsonPath struct {
	segs     []segment
	definite bool
}

var errFilter = errors.New("JSONPath filters and functions are not supported")

func compilePath(p string) (*jsonPath, error) {
	p = strings.TrimSpace(p)
	switch {
	case p == "" || p == "$":
		return &jsonPath{definite: true}, nil
	case strings.HasPrefix(p, "$"):
		p = p[1:]
	case strings.HasPrefix(p, "@"):
		p = p[1:]
	case strings.HasPrefix(p, "["):
	default:
		p = "." + p
	}
	jp := &jsonPath{definite: true}
	for i := 0; i < len(p); {
		switch {
		case strings.HasPrefix(p[i:], ".."):
			jp.segs = append(jp.segs, segment{kind: segDeep})
			jp.definite = false
			i += 2
			if i < len(p) && p[i] == '[' {
				continue
			}
			n, seg, err := dotSegment(p[i:])
			if err != nil {
				return nil, err
			}
			jp.segs = append(jp.segs, seg)
			i += n
		case p[i] == '.':
			n, seg, err := dotSegment(p[i+1:])
			if err != nil {
				return nil, err
			}
			if seg.kind == segWild {
				jp.definite = false
			}
			jp.segs = append(jp.segs, seg)
			i += 1 + n
		case p[i] == '[':
			end := bracketEnd(p, i)
			if end < 0 {
				return nil, fmt.Errorf("JSONPath %q: [ is not closed", p)
			}
			seg, err := bracketSegment(p[i+1 : end])
			if err != nil {
				return nil, fmt.Errorf("JSONPath %q: %w", p, err)
			}
			if seg.kind != segName && seg.kind != segNames && !(seg.kind == segIndex && len(seg.indexes) == 1) {
				jp.definite = false
			}
			jp.segs = append(jp.segs, seg)
			i = end + 1
		default:
			return nil, fmt.Errorf("JSONPath %q: unexpected %q", p, p[i])
		}
	}
	return jp, nil
}

// dotSegment reads a name or * after a dot.
func dotSegment(p string) (int, segment, error) {
	n := strings.IndexAny(p, ".[")
	if n < 0 {
		n = len(p)
	}
	name := p[:n]
	switch {
	case name == "":
		return 0, segment{}, fmt.Errorf("JSONPath: empty property name")
	case name == "*":
		return n, segment{kind: segWild}, nil
	case strings.ContainsAny(name, "()?@ "):
		return 0, segment{}, errFilter
	}
	return n, segment{kind: segName, names: []string{name}}, nil
}

// bracketEnd finds the ] closing the [ at i, skipping quoted names.
func bracketEnd(p string, i int) int {
	var quote byte
	for j := i + 1; j < len(p); j++ {
		c := p[j]
		switch {
		case quote != 0:
			if c == '\\' {
				j++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ']':
			return j
		}
	}
	return -1
}

func bracketSegment(in string) (segment, error) {
	in = strings.TrimSpace(in)
	switch {
	case in == "*":
		return segment{kind: segWild}, nil
	case strings.HasPrefix(in, "?") || strings.HasPrefix(in, "("):
		return segment{}, errFilter
	case strings.HasPrefix(in, "'") || strings.HasPrefix(in, `"`):
		var names []string
		for _, part := range splitOutsideQuotes(in) {
			part = strings.TrimSpace(part)
			if len(part) < 2 || part[0] != part[len(part)-1] || part[0] != '\'' && part[0] != '"' {
				return segment{}, fmt.Errorf("bad property %s", part)
			}
			names = append(names, strings.ReplaceAll(part[1:len(part)-1], `\`+part[:1], part[:1]))
		}
		if len(names) == 1 {
			return segment{kind: segName, names: names}, nil
		}
		return segment{kind: segNames, names: names}, nil
	case strings.Contains(in, ":"):
		a, b, _ := strings.Cut(in, ":")
		seg := segment{kind: segSlice}
		for _, x := range []struct {
			s   string
			dst **int
		}{{a, &seg.from}, {b, &seg.to}} {
			if s := strings.TrimSpace(x.s); s != "" {
				n, err := strconv.Atoi(s)
				if err != nil {
					return segment{}, fmt.Errorf("bad slice %q", in)
				}
				*x.dst = &n
			}
		}
		return seg, nil
	}
	seg := segment{kind: segIndex}
	for _, part := range strings.Split(in, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return segment{}, fmt.Errorf("bad index %q", in)
		}
		seg.indexes = append(seg.indexes, n)
	}
	return seg, nil
}

func splitOutsideQuotes(s string) []string {
	var parts []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ',':
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// eval applies the path to doc. A definite path answers the value or
// found false; an indefinite one a JSON list of every match.
func (jp *jsonPath) eval(doc any) (v any, found bool) {
	nodes := []any{doc}
	for i := 0; i < len(jp.segs); i++ {
		seg := jp.segs[i]
		if seg.kind == segDeep {
			var all []any
			for _, n := range nodes {
				all = descendants(all, n)
			}
			nodes = all
			i++
			if i == len(jp.segs) {
				break
			}
			seg = jp.segs[i]
		}
		next := make([]any, 0, len(nodes))
		for _, n := range nodes {
			next = apply(next, seg, n)
		}
		nodes = next
	}
	if jp.definite {
		if len(nodes) == 0 {
			return nil, false
		}
		return nodes[0], true
	}
	return &vtl.List{Items: nodes, JSON: true}, true
}

// descendants appends n and everything under it, in document order.
func descendants(out []any, n any) []any {
	out = append(out, n)
	switch x := n.(type) {
	case *vtl.Map:
		for _, k := range x.Keys() {
			v, _ := x.Get(k)
			out = descendants(out, v)
		}
	case *vtl.List:
		for _, v := range x.Items {
			out = descendants(out, v)
		}
	}
	return out
}

func apply(out []any, seg segment, n any) []any {
	switch x := n.(type) {
	case *vtl.Map:
		switch seg.kind {
		case segName:
			if v, ok := x.Get(seg.names[0]); ok {
				out = append(out, v)
			}
		case segNames:
			m := vtl.NewMap(len(seg.names))
			for _, k := range seg.names {
				if v, ok := x.Get(k); ok {
					m.Put(k, v)
				}
			}
			out = append(out, m)
		case segWild:
			for _, k := range x.Keys() {
				v, _ := x.Get(k)
				out = append(out, v)
			}
		}
	case *vtl.List:
		n := len(x.Items)
		switch seg.kind {
		case segWild:
			out = append(out, x.Items...)
		case segIndex:
			for _, i := range seg.indexes {
				if i < 0 {
					i += n
				}
				if i >= 0 && i < n {
					out = append(out, x.Items[i])
				}
			}
		case segSlice:
			from, to := 0, n
			if seg.from != nil {
				from = *seg.from
				if from < 0 {
					from = max(n+from, 0)
				}
			}
			if seg.to != nil {
				to = *seg.to
				if to < 0 {
					to = n + to
				}
			}
			from, to = min(from, n), min(to, n)
			if from < to {
				out = append(out, x.Items[from:to]...)
			}
		}
	}
	return out
}
