package vtl

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// List is a Java List. A JSON list (JSON true) is what API Gateway's
// JSONPath and JSON parser return (json-smart's JSONArray): it renders as
// compact JSON, everything inside it included. Other lists render as Java's
// ArrayList does: [a, b].
type List struct {
	Items []any
	JSON  bool
}

// Map is a Java Map with string keys that keeps insertion order. It renders
// as Java's maps do: {a=1, b=x}.
type Map struct {
	keys []string
	vals map[string]any
}

// NewMap returns an empty map with room for n entries.
func NewMap(n int) *Map { return &Map{keys: make([]string, 0, n), vals: make(map[string]any, n)} }

// Get returns the value at k.
func (m *Map) Get(k string) (any, bool) {
	v, ok := m.vals[k]
	return v, ok
}

// Put sets k to v (a new key goes last) and returns the previous value.
func (m *Map) Put(k string, v any) any {
	old, ok := m.vals[k]
	if !ok {
		m.keys = append(m.keys, k)
	}
	m.vals[k] = v
	return old
}

// Remove deletes k and returns its value.
func (m *Map) Remove(k string) any {
	old, ok := m.vals[k]
	if !ok {
		return nil
	}
	delete(m.vals, k)
	for i, key := range m.keys {
		if key == k {
			m.keys = append(m.keys[:i], m.keys[i+1:]...)
			break
		}
	}
	return old
}

// Keys returns the keys in insertion order; the caller must not change it.
func (m *Map) Keys() []string { return m.keys }

// Len is the number of entries.
func (m *Map) Len() int { return len(m.keys) }

// Object is a host value with properties and methods ($input, $util).
type Object interface {
	// Property returns $obj.name; ok false renders as null.
	Property(name string) (v any, ok bool)
	// Call runs $obj.name(args). ok false means there is no such method
	// (the call is null, as Velocity makes it); an error stops the render.
	Call(name string, args []any) (v any, ok bool, err error)
}

// block is a #define'd body, rendered where it is referenced.
type block struct {
	body []node
}

// Value converts a Go value to the kinds templates see: Go maps become
// *Map (keys sorted, as Go maps have no order), slices *List, integers
// int64, floats float64, json.Number int64 or float64. Values already of
// those kinds, and Objects, are returned as they are.
func Value(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, *List, *Map, Object:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]string:
		m := NewMap(len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			m.Put(k, x[k])
		}
		return m
	case map[string]any:
		m := NewMap(len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			m.Put(k, Value(x[k]))
		}
		return m
	case []string:
		l := &List{Items: make([]any, len(x))}
		for i, s := range x {
			l.Items[i] = s
		}
		return l
	case []any:
		l := &List{Items: make([]any, len(x))}
		for i, e := range x {
			l.Items[i] = Value(e)
		}
		return l
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u)
		}
		return float64(rv.Uint())
	case reflect.String:
		return rv.String()
	}
	return fmt.Sprint(v)
}

// truthy is Velocity 1.7's condition: null and false are false, anything
// else (an empty string too) is true.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	}
	return true
}

// FormatDouble renders f as Java's Double.toString does: 1.0, 0.5, 1.0E10,
// 1.0E-5, NaN, Infinity.
func FormatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, 64) // 1.5E+10, 1E-05
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// typeName names a value's Java-ish type for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "Boolean"
	case int64:
		return "Integer"
	case float64:
		return "Double"
	case string:
		return "String"
	case *List:
		return "List"
	case *Map:
		return "Map"
	case *block:
		return "block"
	}
	return "Object"
}

// equal is Velocity 1.7's ==: numbers by value, same kinds by value, null
// only equals null, other kinds by their string forms.
func (s *state) equal(a, b any) (bool, error) {
	if a == nil || b == nil {
		return a == nil && b == nil, nil
	}
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			return x == y, nil
		}
	}
	switch x := a.(type) {
	case bool:
		if y, ok := b.(bool); ok {
			return x == y, nil
		}
	case string:
		if y, ok := b.(string); ok {
			return x == y, nil
		}
	case *List:
		if y, ok := b.(*List); ok {
			return s.listsEqual(x, y, 0)
		}
	case *Map:
		if y, ok := b.(*Map); ok {
			return s.mapsEqual(x, y, 0)
		}
	}
	as, err := s.str(a)
	if err != nil {
		return false, err
	}
	bs, err := s.str(b)
	if err != nil {
		return false, err
	}
	return as == bs, nil
}

// deepEqual is Java's equals for values inside collections.
func (s *state) deepEqual(a, b any, depth int) (bool, error) {
	if depth > s.lim.Depth {
		return false, s.limitErr("collections nested deeper than %d", s.lim.Depth)
	}
	if err := s.step(); err != nil {
		return false, err
	}
	switch x := a.(type) {
	case *List:
		y, ok := b.(*List)
		if !ok {
			return false, nil
		}
		return s.listsEqual(x, y, depth+1)
	case *Map:
		y, ok := b.(*Map)
		if !ok {
			return false, nil
		}
		return s.mapsEqual(x, y, depth+1)
	case int64, float64:
		xf, _ := number(a)
		yf, ok := number(b)
		return ok && xf == yf, nil
	}
	return a == b, nil
}

func (s *state) listsEqual(x, y *List, depth int) (bool, error) {
	if len(x.Items) != len(y.Items) {
		return false, nil
	}
	for i := range x.Items {
		if eq, err := s.deepEqual(x.Items[i], y.Items[i], depth); err != nil || !eq {
			return false, err
		}
	}
	return true, nil
}

func (s *state) mapsEqual(x, y *Map, depth int) (bool, error) {
	if x.Len() != y.Len() {
		return false, nil
	}
	for _, k := range x.keys {
		yv, ok := y.vals[k]
		if !ok {
			return false, nil
		}
		if eq, err := s.deepEqual(x.vals[k], yv, depth); err != nil || !eq {
			return false, err
		}
	}
	return true, nil
}

// number returns a numeric value as float64 for comparisons.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
