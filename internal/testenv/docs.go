package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CheckReloadDoc fails t unless the "Reloading" section of
// docs/configuration.md names each of fixed (settings that need a restart)
// in its list of those, and each of live (settings a reload applies)
// before that list. root is the repository's root from the test's
// directory.
func CheckReloadDoc(t testing.TB, root string, fixed, live []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Reloading\n")
	section, _, _ = strings.Cut(section, "\n## ")
	applied, restart, ok2 := strings.Cut(section, "These settings need a restart:")
	if !ok || !ok2 {
		t.Fatal("docs/configuration.md: no Reloading section saying which settings need a restart")
	}
	for _, name := range fixed {
		if !strings.Contains(restart, "`"+name+"`") {
			t.Errorf("%s needs a restart, but docs/configuration.md's Reloading does not list it so", name)
		}
	}
	for _, name := range live {
		if !strings.Contains(applied, "`"+name+"`") {
			t.Errorf("%s is applied by a reload, but docs/configuration.md's Reloading does not say so", name)
		}
	}
}
