package servertest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/server"
)

// TestStartStateDir starts a server from config text with no stateDir, as
// most tests do: its local CA must be made under a temporary directory,
// not in the working directory (the package's source directory), where
// the product's default would put it.
func TestStartStateDir(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := os.Stat(filepath.Join(cwd, server.DefaultStateDir))
	before := !errors.Is(statErr, fs.ErrNotExist)
	cfg, err := server.ParseConfig([]byte("listen: 127.0.0.1:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := Start(t, cfg)
	ca := srv.CACertPath()
	if ca == "" {
		t.Fatal("no local CA: tls.mode auto should make one")
	}
	if strings.HasPrefix(ca, cwd+string(filepath.Separator)) {
		t.Errorf("local CA %s is under the working directory %s", ca, cwd)
	}
	if _, err := os.Stat(filepath.Join(cwd, server.DefaultStateDir)); !before && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s made in the working directory: %v", server.DefaultStateDir, err)
	}
}
