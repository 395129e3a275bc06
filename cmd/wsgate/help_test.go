package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpExitsZero asks every command for its help, as -h and as --help:
// the usage goes to stdout, nothing to stderr, and the exit status is 0. A
// flag that does not exist is a misuse instead: the error and the usage go
// to stderr, nothing to stdout, and the status is 2 (252 for conn and
// group, which exit as the AWS CLI does).
func TestHelpExitsZero(t *testing.T) {
	commands := []struct {
		name    string
		args    []string
		usage   string // in the help text
		misuse  int    // the status of an unknown flag
		noFlags bool   // the command reads no flags of its own
	}{
		{name: "top level", usage: "wsgate serve --config FILE", noFlags: true},
		{name: "serve", args: []string{"serve"}, usage: "wsgate serve --template FILE", misuse: 2},
		{name: "import", args: []string{"import"}, usage: "wsgate import [flags] TEMPLATE", misuse: 2},
		{name: "import after the template", args: []string{"import", "template.yaml"}, usage: "wsgate import [flags] TEMPLATE", misuse: 2},
		{name: "demo", args: []string{"demo"}, usage: "wsgate demo [flags]", misuse: 2},
		{name: "ca", args: []string{"ca"}, usage: "wsgate ca install", misuse: 2},
		{name: "ca install", args: []string{"ca", "install"}, usage: "wsgate ca install", misuse: 2},
		{name: "conn", args: []string{"conn"}, usage: "wsgate conn post", noFlags: true},
		{name: "conn post", args: []string{"conn", "post"}, usage: "-data-file", misuse: exitUsage},
		{name: "conn list", args: []string{"conn", "list"}, usage: "-max-results", misuse: exitUsage},
		{name: "group", args: []string{"group"}, usage: "wsgate group publish", noFlags: true},
		{name: "group members", args: []string{"group", "members"}, usage: "-next-token", misuse: exitUsage},
	}
	for _, c := range commands {
		for _, h := range []string{"-h", "--help"} {
			t.Run(c.name+" "+h, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				args := append(append([]string(nil), c.args...), h)
				if code := run(args, &stdout, &stderr); code != 0 {
					t.Errorf("wsgate %s: exit %d, want 0; stderr:\n%s", strings.Join(args, " "), code, stderr.String())
				}
				if !strings.Contains(stdout.String(), c.usage) {
					t.Errorf("wsgate %s: stdout lacks %q:\n%s", strings.Join(args, " "), c.usage, stdout.String())
				}
				if stderr.Len() != 0 {
					t.Errorf("wsgate %s: stderr not empty:\n%s", strings.Join(args, " "), stderr.String())
				}
			})
		}
		if c.noFlags {
			continue
		}
		t.Run(c.name+" unknown flag", func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(append([]string(nil), c.args...), "--no-such-flag")
			if code := run(args, &stdout, &stderr); code != c.misuse {
				t.Errorf("wsgate %s: exit %d, want %d; stderr:\n%s", strings.Join(args, " "), code, c.misuse, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("wsgate %s: stdout not empty:\n%s", strings.Join(args, " "), stdout.String())
			}
			if !strings.Contains(stderr.String(), "flag provided but not defined: -no-such-flag") || !strings.Contains(stderr.String(), c.usage) {
				t.Errorf("wsgate %s: stderr lacks the error or the usage %q:\n%s", strings.Join(args, " "), c.usage, stderr.String())
			}
		})
	}
	// The help command and asking for a command's help by name.
	for _, args := range [][]string{{"help"}, {"ca", "help"}, {"conn", "help"}, {"group", "help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 || stdout.Len() == 0 || stderr.Len() != 0 {
			t.Errorf("wsgate %s: exit %d, stdout %d bytes, stderr %q; want 0, the usage, nothing", strings.Join(args, " "), code, stdout.Len(), stderr.String())
		}
	}
}
