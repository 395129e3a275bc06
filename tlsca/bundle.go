package tlsca

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// SystemBundles are where distributions keep the system's CA bundle; the
// first that exists is used.
var SystemBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
	"/etc/ssl/ca-bundle.pem",             // openSUSE
	"/etc/ssl/cert.pem",                  // macOS, BSDs
}

// BundleFile is the bundle's name in the state directory.
const BundleFile = "ca-bundle.pem"

// WriteBundle writes path: the system's CA bundle (the first of
// SystemBundles that exists; none when none does) followed by the local
// root, replacing the file atomically. Handlers given this file in
// AWS_CA_BUNDLE or SSL_CERT_FILE trust both public endpoints and wsgate.
func (ca *CA) WriteBundle(path string) error {
	var b bytes.Buffer
	for _, sys := range SystemBundles {
		if data, err := os.ReadFile(sys); err == nil {
			b.Write(data)
			if !bytes.HasSuffix(data, []byte("\n")) {
				b.WriteByte('\n')
			}
			break
		}
	}
	b.WriteString("# wsgate local CA " + ca.Fingerprint() + "\n")
	b.Write(ca.certPEM)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bundle-")
	if err != nil {
		return fmt.Errorf("writing CA bundle: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("writing CA bundle: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
