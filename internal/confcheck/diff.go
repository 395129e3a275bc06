package confcheck

import (
	"reflect"
	"slices"
	"strings"
)

// Changed lists the top-level fields of two values of the same struct type
// that differ, by their JSON names, skipping those in skip. An embedded
// struct's fields count as the outer struct's own (as encoding/json reads
// them). A reload uses it to say which settings it changed.
func Changed(a, b any, skip ...string) []string {
	var out []string
	walk(reflect.ValueOf(a), reflect.ValueOf(b), func(name string, x, _ reflect.Value) {
		if !slices.Contains(skip, name) {
			out = append(out, name)
		}
	})
	return out
}

// Pin copies the fields named in names from running into next (both
// pointers to the same struct type) wherever they differ, and lists those
// that differed: settings a running server cannot change keep their
// running values, and the caller says that they need a restart.
func Pin(next, running any, names ...string) []string {
	var out []string
	walk(reflect.ValueOf(next).Elem(), reflect.ValueOf(running).Elem(), func(name string, x, y reflect.Value) {
		if slices.Contains(names, name) {
			out = append(out, name)
			x.Set(y)
		}
	})
	return out
}

// walk calls f for each top-level JSON field whose values in a and b
// differ.
func walk(a, b reflect.Value, f func(name string, x, y reflect.Value)) {
	t := a.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			walk(a.Field(i), b.Field(i), f)
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			f(name, a.Field(i), b.Field(i))
		}
	}
}
