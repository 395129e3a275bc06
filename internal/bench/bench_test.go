package bench

import (
	"os"
	"strings"
	"testing"
)

// TestMain runs a role when the harness starts this test binary as one of
// its child processes.
func TestMain(m *testing.M) {
	if role := os.Getenv("WSGATE_BENCH_ROLE"); role != "" {
		os.Exit(RunRole(role, os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestScenariosSmall runs every scenario once at tiny size, so the harness
// keeps working. It checks that each produced its figures without errors,
// never the figures themselves.
func TestScenariosSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many processes")
	}
	var log strings.Builder
	res, err := Run(Options{Small: true, Runs: 1, Workers: 2, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res) != len(Scenarios) {
		t.Fatalf("got %d results, want %d", len(res), len(Scenarios))
	}
	for _, r := range res {
		if len(r.Errors) > 0 || len(r.Names) == 0 {
			t.Errorf("%s: errors %v, %d metrics\n%s", r.Scenario, r.Errors, len(r.Names), log.String())
		}
	}
	var md strings.Builder
	WriteMarkdown(&md, res)
	if !strings.Contains(md.String(), "### fanout") {
		t.Errorf("markdown lacks the fanout table:\n%s", md.String())
	}
}

func TestParseT(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"stamped", `{"t":1234,"pad":"x"}`, 1234},
		{"unstamped", `{"action":"x"}`, 0},
		{"short", `{`, 0},
	}
	for _, tt := range tests {
		if got := parseT([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: parseT(%q) = %d, want %d", tt.name, tt.in, got, tt.want)
		}
	}
}
