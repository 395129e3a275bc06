package eventfilter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Limits of a FilterCriteria, as Lambda sets them.
const (
	// MaxPatternBytes is the longest pattern: Lambda's Filter.Pattern
	// length constraint.
	MaxPatternBytes = 4096
	// MaxFilters is the most filters in a Criteria. Lambda's default
	// quota is 5 per event source mapping and can be raised to 10; wsgate
	// accepts the 10 a raised quota allows.
	MaxFilters = 10
)

// Criteria is Lambda's FilterCriteria: a record passes when it matches
// any of Filters. The JSON field names match the Lambda API's
// (Filters, Pattern) case-insensitively.
type Criteria struct {
	Filters []Filter `json:"filters"`
}

// Filter is one filter of a Criteria.
type Filter struct {
	// Pattern is the JSON text of the filter rule.
	Pattern Text `json:"pattern"`
}

// Text is a pattern's JSON text. Decoded from JSON it is either a string
// holding the text (the Lambda API's form) or the pattern object itself,
// which is kept as its JSON text (handier in a YAML config).
type Text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text(s)
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return errors.New("a pattern is a JSON object, or a string holding one")
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return err
	}
	*t = Text(c.String())
	return nil
}

// Matcher is a compiled Criteria: its patterns, ORed. The zero Matcher
// passes everything.
type Matcher struct {
	patterns []*Pattern
}

// Compile checks every filter of c and compiles them. A nil c compiles to
// the zero Matcher. Each problem is named by its filter's index:
// "filters[1].pattern: dynamodb.NewImage: ...".
func (c *Criteria) Compile() (Matcher, error) {
	if c == nil {
		return Matcher{}, nil
	}
	var errs []error
	if len(c.Filters) > MaxFilters {
		errs = append(errs, fmt.Errorf("filters: %d filters (at most %d)", len(c.Filters), MaxFilters))
	}
	var m Matcher
	for i, f := range c.Filters {
		p, err := Compile(string(f.Pattern))
		if err != nil {
			errs = append(errs, fmt.Errorf("filters[%d].pattern: %w", i, err))
			continue
		}
		m.patterns = append(m.patterns, p)
	}
	if err := errors.Join(errs...); err != nil {
		return Matcher{}, err
	}
	return m, nil
}

// Empty reports whether m passes everything without looking.
func (m Matcher) Empty() bool { return len(m.patterns) == 0 }

// Match reports whether event, a decoded JSON value (see Decode), matches
// any pattern of m. The zero Matcher matches everything.
func (m Matcher) Match(event any) bool {
	if len(m.patterns) == 0 {
		return true
	}
	for _, p := range m.patterns {
		if p.Match(event) {
			return true
		}
	}
	return false
}

// MatchJSON decodes data and matches it. Text that is not JSON matches
// nothing, unless m is the zero Matcher.
func (m Matcher) MatchJSON(data []byte) bool {
	if len(m.patterns) == 0 {
		return true
	}
	v, err := Decode(data)
	if err != nil {
		return false
	}
	return m.Match(v)
}

// Decode decodes JSON as Match expects it: objects as map[string]any,
// numbers as json.Number (matched by their text).
func Decode(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("text after the JSON value")
	}
	return v, nil
}

// Pattern is one compiled filter pattern.
type Pattern struct {
	root *object
}

// object is a pattern object: fields that must all match, and $or groups
// of which one alternative must match.
type object struct {
	fields []field
	ors    [][]*object
}

// field is one key of a pattern object: either a nested object or the
// rules for the field's leaf values.
type field struct {
	key   string
	sub   *object
	rules []rule
}

// Compile parses and checks a pattern's JSON text. Errors name the path
// of the offending key ("dynamodb.NewImage.status: ...").
func Compile(text string) (*Pattern, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty pattern")
	}
	if len(text) > MaxPatternBytes {
		return nil, fmt.Errorf("%d bytes (at most %d)", len(text), MaxPatternBytes)
	}
	v, err := Decode([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("a pattern is a JSON object")
	}
	root, err := compileObject(m, "")
	if err != nil {
		return nil, err
	}
	return &Pattern{root: root}, nil
}

func compileObject(m map[string]any, path string) (*object, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o := &object{}
	for _, k := range keys {
		p := join(path, k)
		switch v := m[k].(type) {
		case map[string]any:
			sub, err := compileObject(v, p)
			if err != nil {
				return nil, err
			}
			o.fields = append(o.fields, field{key: k, sub: sub})
		case []any:
			if k == "$or" {
				alts, err := compileOr(v, p)
				if err != nil {
					return nil, err
				}
				o.ors = append(o.ors, alts)
				continue
			}
			if len(v) == 0 {
				return nil, fmt.Errorf("%s: an empty list of rules matches nothing", p)
			}
			f := field{key: k}
			for i, r := range v {
				rl, err := compileRule(r)
				if err != nil {
					return nil, fmt.Errorf("%s[%d]: %w", p, i, err)
				}
				f.rules = append(f.rules, rl)
			}
			o.fields = append(o.fields, f)
		default:
			return nil, fmt.Errorf("%s: want a list of rules or an object, got %s", p, describe(v))
		}
	}
	return o, nil
}

func compileOr(alts []any, path string) ([]*object, error) {
	if len(alts) == 0 {
		return nil, fmt.Errorf("%s: wants a list of patterns", path)
	}
	var out []*object
	for i, a := range alts {
		m, ok := a.(map[string]any)
		if !ok || len(m) == 0 {
			return nil, fmt.Errorf("%s[%d]: want a non-empty pattern object", path, i)
		}
		o, err := compileObject(m, path+"["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Match reports whether event, a decoded JSON value (see Decode), matches
// the pattern.
func (p *Pattern) Match(event any) bool {
	var objs []map[string]any
	if m, ok := event.(map[string]any); ok {
		objs = []map[string]any{m}
	}
	return p.root.match(objs)
}

// match reports whether the pattern object matches at the level where the
// record has objs: one object, several (a path through an array of
// objects, flattened), or none (the path does not exist).
func (o *object) match(objs []map[string]any) bool {
	for i := range o.fields {
		f := &o.fields[i]
		var vals []any
		for _, m := range objs {
			if v, ok := m[f.key]; ok {
				vals = flatten(vals, v)
			}
		}
		if f.sub != nil {
			var sub []map[string]any
			for _, v := range vals {
				if m, ok := v.(map[string]any); ok {
					sub = append(sub, m)
				}
			}
			if !f.sub.match(sub) {
				return false
			}
			continue
		}
		leaves := vals[:0:0]
		for _, v := range vals {
			if _, isObj := v.(map[string]any); !isObj {
				leaves = append(leaves, v)
			}
		}
		if !matchRules(f.rules, leaves) {
			return false
		}
	}
	for _, alts := range o.ors {
		ok := false
		for _, a := range alts {
			if a.match(objs) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// flatten appends v to out, and the elements of arrays (at any depth)
// instead of the arrays themselves.
func flatten(out []any, v any) []any {
	if a, ok := v.([]any); ok {
		for _, e := range a {
			out = flatten(out, e)
		}
		return out
	}
	return append(out, v)
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprintf("%T", v)
}
