package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/tlsca"
)

const caUsage = `Usage:
  wsgate ca [--config FILE] [--state-dir DIR]          print the local CA's path and how to trust it
  wsgate ca install [--config FILE] [--state-dir DIR]  add it to the system trust store (Debian family)

The CA is created the first time it is needed, in the state directory
(default: .wsgate beside the config file).
`

// caCommand prints where the local CA is and how to trust it, or installs
// it into the system store.
func caCommand(args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	if sub == "help" {
		fmt.Fprint(stdout, caUsage)
		return 0
	}
	if sub != "" && sub != "install" {
		fmt.Fprintf(stderr, "wsgate ca: unknown subcommand %q\n\n%s", sub, caUsage)
		return 2
	}
	fs := flag.NewFlagSet("ca", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), caUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "wsgate.yaml", "config file whose state directory holds the CA")
	stateDir := fs.String("state-dir", "", "state directory, overriding the config's")
	if status, done := parseFlags(fs, args, stdout, stderr, 2); done {
		return status
	}
	dir := *stateDir
	if dir == "" {
		dir = server.DefaultStateDir
		cfg, err := server.LoadConfig(*configPath)
		switch {
		case err == nil:
			dir = cfg.StateDir
			if cfg.TLS.CertFile != "" {
				fmt.Fprintf(stderr, "wsgate ca: note: %s serves tls.certFile %s; the local CA below is not used by it\n", *configPath, cfg.TLS.CertFile)
			}
		case errors.Is(err, os.ErrNotExist):
			// No config: the state directory of the working directory.
		default:
			fmt.Fprintf(stderr, "wsgate ca: %s: %v\n", *configPath, err)
			return 1
		}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	ca, err := tlsca.Open(dir)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate ca: %v\n", err)
		return 1
	}
	if sub == "" {
		fmt.Fprint(stdout, tlsca.Instructions(ca.CertPath(), ca.FileName()))
		return 0
	}
	dst, err := ca.Install(tlsca.DebianStore)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate ca install: %v\n", err)
		if errors.Is(err, tlsca.ErrNoStore) {
			fmt.Fprintf(stderr, "\nInstall it by hand instead:\n\n%s", tlsca.Instructions(ca.CertPath(), ca.FileName()))
		}
		return 1
	}
	fmt.Fprintf(stdout, "installed %s as %s (system trust store updated)\n", ca.CertPath(), dst)
	fmt.Fprintln(stdout, "Node.js does not read the system store: give it NODE_EXTRA_CA_CERTS="+ca.CertPath())
	return 0
}
