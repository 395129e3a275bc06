package chat_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/examples/internal/exampletest"
)

// buildDir holds bin/backend and bin/client, built once for the test binary.
var buildDir string

func TestMain(m *testing.M) { exampletest.Main(m, &buildDir, "./backend", "./client") }

// TestChat runs the README's three commands: the backend, wsgate with
// wsgate.yaml, and two terminal clients. A line typed into one client is
// printed by both.
func TestChat(t *testing.T) {
	backend := exampletest.Run(t, filepath.Join(buildDir, "bin", "backend"), "-listen", "127.0.0.1:0")
	addr, ok := strings.CutPrefix(backend.Stdout(t), "backend listening on http://")
	if !ok {
		t.Fatal("backend did not print its address")
	}

	cfg := exampletest.LoadConfig(t, "wsgate.yaml")
	for key, r := range cfg.Routes {
		u, err := url.Parse(r.Integration.URI)
		if err != nil {
			t.Fatalf("route %s: %v", key, err)
		}
		u.Host = addr
		r.Integration.URI = u.String()
	}
	srv := exampletest.Start(t, cfg)

	wsURL := "ws://" + srv.Addr() + "/" + cfg.Stage
	alice := exampletest.Run(t, filepath.Join(buildDir, "bin", "client"), "-url", wsURL)
	bob := exampletest.Run(t, filepath.Join(buildDir, "bin", "client"), "-url", wsURL)
	// "connected" comes after the handshake, so $connect has joined both
	// to the room before alice speaks.
	for name, c := range map[string]*exampletest.Program{"alice": alice, "bob": bob} {
		if line := c.Stderr(t); !strings.HasPrefix(line, "connected to ") {
			t.Fatalf("%s: %s", name, line)
		}
	}

	if _, err := fmt.Fprintln(alice.Stdin, "hi from alice"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*exampletest.Program{"alice": alice, "bob": bob} {
		if got := c.Stdout(t); got != "hi from alice" {
			t.Errorf("%s printed %q, want %q", name, got, "hi from alice")
		}
	}
}
