package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCACommand: `wsgate ca` creates the CA in .wsgate beside the config
// (0700) and says where it is and how to trust it; a second run shows the
// same CA.
func TestCACommand(t *testing.T) {
	bin := wsgateBinary(t)
	cfg := writeConfig(t, "stage: dev\n")
	state := filepath.Join(filepath.Dir(cfg), ".wsgate")
	run := func(args ...string) string {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("wsgate %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("ca", "--config", cfg)
	root := filepath.Join(state, "ca", "root.crt")
	for _, want := range []string{"Local CA certificate: " + root, "update-ca-certificates", "AWS_CA_BUNDLE=" + root, "NODE_EXTRA_CA_CERTS=" + root, "REQUESTS_CA_BUNDLE=", "security add-trusted-cert"} {
		if !strings.Contains(out, want) {
			t.Fatalf("wsgate ca output lacks %q:\n%s", want, out)
		}
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v, mode %v", err, fi.Mode().Perm())
	}
	first, _ := os.ReadFile(root)
	run("ca", "--config", cfg)
	if again, _ := os.ReadFile(root); string(again) != string(first) {
		t.Fatal("a second wsgate ca made a new CA")
	}
	other := filepath.Join(t.TempDir(), "elsewhere")
	if out := run("ca", "--state-dir", other); !strings.Contains(out, filepath.Join(other, "ca", "root.crt")) {
		t.Fatalf("--state-dir ignored:\n%s", out)
	}
	if out, err := exec.Command(bin, "ca", "uninstal").CombinedOutput(); err == nil || !strings.Contains(string(out), `unknown subcommand "uninstal"`) {
		t.Fatalf("unknown subcommand: %v\n%s", err, out)
	}
}

// TestServeCheckWarnsWithoutCredentials: --check passes but says what a
// config without credentials means.
func TestServeCheckWarnsWithoutCredentials(t *testing.T) {
	bin := wsgateBinary(t)
	for _, tc := range []struct {
		name, text string
		warn       bool
	}{
		{"none", "stage: dev\n", true},
		{"some", "stage: dev\ncredentials: [{ accessKeyId: AKID, secretAccessKey: s }]\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, "serve", "--config", writeConfig(t, tc.text), "--check").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "configuration is valid") {
				t.Fatalf("--check: %v\n%s", err, out)
			}
			if got := strings.Contains(string(out), "warning: no credentials configured"); got != tc.warn {
				t.Fatalf("warning shown %v, want %v:\n%s", got, tc.warn, out)
			}
		})
	}
	out, err := exec.Command(bin, "serve", "--check", "--config", writeConfig(t, "tls: { certFile: missing.crt, keyFile: missing.key }\n")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing.crt") {
		t.Fatalf("--check with a missing certFile: %v\n%s", err, out)
	}
}
