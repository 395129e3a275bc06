package tlsca

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// SystemStore is a trust store that takes a root by copying it into a
// directory and running a command: Debian's (and Ubuntu's, Alpine's)
// /usr/local/share/ca-certificates with update-ca-certificates.
type SystemStore struct {
	// Dir receives the root as wsgate-{fingerprint prefix}.crt.
	Dir string
	// Update is the command that rebuilds the system bundle.
	Update []string
}

// DebianStore is the Debian-family store.
var DebianStore = SystemStore{Dir: "/usr/local/share/ca-certificates", Update: []string{"update-ca-certificates"}}

// ErrNoStore says the platform has no trust store wsgate can install into;
// the error's text says what to do instead.
var ErrNoStore = errors.New("no supported system trust store")

// FileName is the root's file name in the store: one file per CA, so two
// state directories' CAs can both be trusted.
func (ca *CA) FileName() string { return "wsgate-" + ca.Fingerprint()[:16] + ".crt" }

// Install copies the root into the store and runs its update command,
// returning the installed path. Without the store's directory and command
// it returns ErrNoStore; without permission, an error that says to run as
// root.
func (ca *CA) Install(s SystemStore) (string, error) {
	if len(s.Update) == 0 {
		return "", ErrNoStore
	}
	if _, err := exec.LookPath(s.Update[0]); err != nil {
		return "", fmt.Errorf("%w: %s not found", ErrNoStore, s.Update[0])
	}
	if fi, err := os.Stat(s.Dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: %s is not a directory", ErrNoStore, s.Dir)
	}
	dst := filepath.Join(s.Dir, ca.FileName())
	if err := os.WriteFile(dst, ca.certPEM, 0o644); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return "", fmt.Errorf("writing %s: permission denied (run as root, e.g. with sudo)", dst)
		}
		return "", err
	}
	out, err := exec.Command(s.Update[0], s.Update[1:]...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", strings.Join(s.Update, " "), err, strings.TrimSpace(string(out)))
	}
	return dst, nil
}

// Instructions say how to trust the root at certPath: the system store on
// Debian-family Linux, macOS and Windows, and per process through the
// environment variables each runtime reads.
func Instructions(certPath, fileName string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Local CA certificate: %s\n\n", certPath)
	b.WriteString("Trust it system-wide (or run 'wsgate ca install'):\n")
	fmt.Fprintf(&b, "  Debian, Ubuntu:  sudo cp %s /usr/local/share/ca-certificates/%s && sudo update-ca-certificates\n", certPath, fileName)
	fmt.Fprintf(&b, "  Fedora, RHEL:    sudo cp %s /etc/pki/ca-trust/source/anchors/%s && sudo update-ca-trust\n", certPath, fileName)
	fmt.Fprintf(&b, "  macOS:           sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %s\n", certPath)
	fmt.Fprintf(&b, "  Windows:         certutil -addstore -f ROOT %s\n", certPath)
	b.WriteString("\nOr trust it in one process only, through the variable its runtime reads:\n")
	fmt.Fprintf(&b, "  AWS CLI, boto3, botocore, AWS SDKs:  AWS_CA_BUNDLE=%s\n", certPath)
	fmt.Fprintf(&b, "  Node.js (added to its own CAs):     NODE_EXTRA_CA_CERTS=%s\n", certPath)
	fmt.Fprintf(&b, "  Python requests:                    REQUESTS_CA_BUNDLE=%s\n", certPath)
	fmt.Fprintf(&b, "  OpenSSL, Python ssl, Go on Linux:   SSL_CERT_FILE=%s\n", certPath)
	b.WriteString("  (these replace the system CAs for that process, except NODE_EXTRA_CA_CERTS;\n")
	b.WriteString("   handlers wsgate starts get a bundle of both automatically)\n")
	if runtime.GOOS == "darwin" {
		b.WriteString("\nFirefox keeps its own store: Settings > Privacy & Security > Certificates > Import.\n")
	}
	return b.String()
}
