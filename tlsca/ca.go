package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RootLifetime is how long a new root certificate is valid (Caddy's
// local root lives 10 years as well).
const RootLifetime = 10 * 365 * 24 * time.Hour

// File names inside the CA directory (StateDir/ca).
const (
	RootCertFile = "root.crt"
	RootKeyFile  = "root.key"
)

// CA is a local root certificate authority kept on disk.
type CA struct {
	dir     string
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// Open loads the CA kept under stateDir/ca, creating it (and stateDir,
// mode 0700) the first time. Processes racing to create it agree on one:
// the CA is written to a temporary directory that is renamed into place,
// and the loser loads the winner's.
func Open(stateDir string) (*CA, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	dir := filepath.Join(stateDir, "ca")
	ca, err := load(dir)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return ca, err
	}
	if err := create(stateDir, dir); err != nil {
		return nil, err
	}
	return load(dir)
}

func load(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, RootKeyFile))
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading local CA from %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("loading local CA from %s: key is %T, want ECDSA", dir, pair.PrivateKey)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("loading local CA from %s: %w", dir, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("loading local CA from %s: %s is not a CA certificate", dir, RootCertFile)
	}
	return &CA{dir: dir, cert: cert, certPEM: certPEM, key: key}, nil
}

func create(stateDir, dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"wsgate"}, CommonName: "wsgate Local CA - " + now.UTC().Format("2006 01 02 150405")},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(RootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("creating local CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(stateDir, ".ca-")
	if err != nil {
		return fmt.Errorf("creating local CA: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.WriteFile(filepath.Join(tmp, RootKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, RootCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, RootCertFile)); serr == nil {
			return nil // another process created it first: use theirs
		}
		return fmt.Errorf("creating local CA: %w", err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// CertPath is the root certificate's file, the one to trust.
func (ca *CA) CertPath() string { return filepath.Join(ca.dir, RootCertFile) }

// Certificate is the root certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// PEM is the root certificate in PEM.
func (ca *CA) PEM() []byte { return ca.certPEM }

// Fingerprint is the root certificate's SHA-256 fingerprint in hex.
func (ca *CA) Fingerprint() string {
	sum := sha256.Sum256(ca.cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Pool is a certificate pool holding only the root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue signs a server certificate for names (DNS names or IP addresses;
// a port, as in a Host header, is dropped), valid from a minute ago for
// lifetime, with a new P-256 key.
func (ca *CA) Issue(names []string, lifetime time.Duration) (*tls.Certificate, error) {
	return ca.issue(names, lifetime, x509.ExtKeyUsageServerAuth)
}

// IssuePeer is Issue for a peer that is server and client at once, as
// NATS route servers under mutual TLS are: the certificate may also
// authenticate its holder as a client.
func (ca *CA) IssuePeer(names []string, lifetime time.Duration) (*tls.Certificate, error) {
	return ca.issue(names, lifetime, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(names []string, lifetime time.Duration, usages ...x509.ExtKeyUsage) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("issuing certificate: no names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"wsgate"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	for _, n := range Names(names) {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issuing certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	// The chain is the leaf alone: a client either trusts the root
	// already or fails with "unknown authority", which says what to do.
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Names normalises certificate names: ports and IPv6 brackets dropped,
// DNS names lowercased, empty names and duplicates removed, order kept.
func Names(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if h, _, err := net.SplitHostPort(n); err == nil {
			n = h
		}
		n = strings.TrimSuffix(strings.ToLower(strings.Trim(n, "[]")), ".")
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}
