package gateway

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testenv"
)

// jsonFields lists the JSON names of t's fields, embedded structs' fields
// included, as confcheck.Changed and Pin see them.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// TestEveryFieldReloadsOrNeedsRestart: each config field is either
// applied by a reload or reported as needing a restart, never neither
// (silently ignored) nor both.
func TestEveryFieldReloadsOrNeedsRestart(t *testing.T) {
	for _, name := range jsonFields(reflect.TypeFor[Config]()) {
		if slices.Contains(fixedFields, name) == slices.Contains(liveFields, name) {
			t.Errorf("%s: list it in exactly one of fixedFields (needs a restart) and liveFields (read through the live snapshot)", name)
		}
	}
}

// TestReloadingDocNamesEveryField: docs/configuration.md's Reloading
// section says of each setting whether a reload applies it or it needs a
// restart, as fixedFields and liveFields do.
func TestReloadingDocNamesEveryField(t *testing.T) {
	testenv.CheckReloadDoc(t, "..", fixedFields, liveFields)
}
