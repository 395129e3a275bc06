package server

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestEveryFieldReloadsOrNeedsRestart: each of the server's own config
// fields (the gateway checks its own) is either applied by a reload or
// reported as needing a restart.
func TestEveryFieldReloadsOrNeedsRestart(t *testing.T) {
	ty := reflect.TypeFor[Config]()
	for i := range ty.NumField() {
		f := ty.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous || name == "" || name == "-" {
			continue
		}
		if slices.Contains(fixedFields, name) == slices.Contains(liveFields, name) {
			t.Errorf("%s: list it in exactly one of fixedFields (needs a restart) and liveFields", name)
		}
	}
}

// TestReloadingDocNamesEveryField: docs/configuration.md's Reloading
// section says of each setting whether a reload applies it or it needs a
// restart, as fixedFields and liveFields do.
func TestReloadingDocNamesEveryField(t *testing.T) {
	testenv.CheckReloadDoc(t, "..", fixedFields, liveFields)
}
