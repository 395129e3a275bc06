package tlsca_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/tlsca"
)

func TestOpenCreatesOnceWithPrivateModes(t *testing.T) {
	state := filepath.Join(t.TempDir(), ".wsgate")
	// Racing opens (two servers started at once) agree on one CA.
	cas := make([]*tlsca.CA, 8)
	var wg sync.WaitGroup
	for i := range cas {
		wg.Go(func() {
			ca, err := tlsca.Open(state)
			if err != nil {
				t.Error(err)
			}
			cas[i] = ca
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, ca := range cas[1:] {
		if ca.Fingerprint() != cas[0].Fingerprint() {
			t.Fatalf("racing opens made two CAs: %s and %s", ca.Fingerprint(), cas[0].Fingerprint())
		}
	}
	for path, want := range map[string]os.FileMode{
		state: 0o700, filepath.Join(state, "ca", tlsca.RootKeyFile): 0o600, cas[0].CertPath(): 0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	again, err := tlsca.Open(state)
	if err != nil || again.Fingerprint() != cas[0].Fingerprint() {
		t.Fatalf("reopening: %v, fingerprint %s want %s", err, again.Fingerprint(), cas[0].Fingerprint())
	}
	entries, _ := os.ReadDir(state)
	if len(entries) != 1 {
		t.Fatalf("state directory holds %v, want only ca (no temporary directories left)", entries)
	}
	c := again.Certificate()
	if !c.IsCA || c.PublicKeyAlgorithm != x509.ECDSA || c.NotAfter.Before(time.Now().Add(9*365*24*time.Hour)) {
		t.Fatalf("root: CA %v, algorithm %v, notAfter %v", c.IsCA, c.PublicKeyAlgorithm, c.NotAfter)
	}
}

func TestOpenRefusesABrokenCA(t *testing.T) {
	state := t.TempDir()
	if _, err := tlsca.Open(state); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "ca", tlsca.RootKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsca.Open(state); err == nil || !strings.Contains(err.Error(), "loading local CA") {
		t.Fatalf("opening a CA with a broken key: %v, want a loading error (not a silent new CA)", err)
	}
}

// TestIssuedLeafVerifies checks a leaf against the root alone, for every
// kind of name a client uses, over a real TLS handshake.
func TestIssuedLeafVerifies(t *testing.T) {
	ca, err := tlsca.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"localhost", "127.0.0.1", "::1", "[::1]:8080", "Example.test:443", "local.execute-api.us-east-1.amazonaws.com", "", "localhost"}
	leaves, err := ca.Leaves(names, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"localhost", "127.0.0.1", "::1", "example.test", "local.execute-api.us-east-1.amazonaws.com"}
	if got := leaves.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("names %v, want %v", got, want)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: leaves.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	for _, name := range append(want, "other.test") {
		t.Run(name, func(t *testing.T) {
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: name})
			if name == "other.test" {
				if err == nil {
					c.Close()
					t.Fatal("a name the leaf does not cover verified")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			leaf := c.ConnectionState().PeerCertificates[0]
			c.Close()
			if leaf.NotAfter.After(time.Now().Add(time.Hour)) {
				t.Fatalf("leaf valid until %v, want at most an hour", leaf.NotAfter)
			}
		})
	}
}

func TestLeavesRenew(t *testing.T) {
	ca, err := tlsca.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// NotAfter has whole seconds, so a leaf has 5-6 s left when issued
	// and is renewed with under 2 s left: a test held up for a second or
	// two (a loaded machine) must not see the fresh leaf renewed.
	leaves, err := ca.Leaves([]string{"localhost"}, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := leaves.GetCertificate(nil)
	if again, _ := leaves.GetCertificate(nil); again != first {
		t.Fatal("a fresh leaf was renewed")
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		c, _ := leaves.GetCertificate(nil)
		if c.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
			return errors.New("leaf not renewed yet")
		}
		if time.Until(c.Leaf.NotAfter) < 100*time.Millisecond {
			return errors.New("renewed leaf is already near its end")
		}
		return nil
	})
}

func writePair(t *testing.T, ca *tlsca.CA, certFile, keyFile, name string) *x509.Certificate {
	t.Helper()
	c, err := ca.Issue([]string{name}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pemBlock("CERTIFICATE", c.Certificate[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func TestFileCertReloads(t *testing.T) {
	ca, err := tlsca.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writePair(t, ca, certFile, keyFile, "first.test")
	var logs testenv.Buffer
	fc, err := tlsca.LoadFiles(certFile, keyFile, newLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := fc.GetCertificate(nil); !c.Leaf.Equal(first) {
		t.Fatal("not serving the loaded certificate")
	}
	// Half a replacement (the certificate written, not the key yet) keeps
	// the old pair, and the second half is picked up.
	second, err := ca.Issue([]string{"second.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pemBlock("CERTIFICATE", second.Certificate[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		_, _ = fc.GetCertificate(nil)
		if !strings.Contains(logs.String(), "do not load") {
			return errors.New("mismatched pair not reported yet")
		}
		return nil
	})
	if c, _ := fc.GetCertificate(nil); !c.Leaf.Equal(first) {
		t.Fatal("a mismatched pair replaced the working one")
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(second.PrivateKey)
	if err := os.WriteFile(keyFile, pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if c, _ := fc.GetCertificate(nil); !c.Leaf.Equal(second.Leaf) {
			return errors.New("new pair not served yet")
		}
		return nil
	})
	if _, err := tlsca.LoadFiles(filepath.Join(dir, "missing.crt"), keyFile, nil); err == nil {
		t.Fatal("a missing certFile loaded")
	}
}

func TestWriteBundle(t *testing.T) {
	ca, err := tlsca.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), tlsca.BundleFile)
	if err := ca.WriteBundle(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, ca.PEM()) {
		t.Fatal("bundle does not end with the local root")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("bundle does not parse")
	}
	for _, sys := range tlsca.SystemBundles {
		if data, err := os.ReadFile(sys); err == nil {
			if !bytes.HasPrefix(b, data) {
				t.Fatalf("bundle does not start with %s", sys)
			}
			break
		}
	}
}

// TestInstallDebian runs the real update-ca-certificates on a private tree
// (its --certsdir, --localcertsdir, --etccertsdir and --certsconf
// options), so the system's store is untouched.
func TestInstallDebian(t *testing.T) {
	update := testenv.LookPath(t, "update-ca-certificates", "apt-get install -y ca-certificates")
	ca, err := tlsca.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, d := range []string{"share", "local", "etc", "hooks"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(root, "ca-certificates.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	store := tlsca.SystemStore{Dir: filepath.Join(root, "local"), Update: []string{update,
		"--certsconf", conf, "--certsdir", filepath.Join(root, "share"), "--localcertsdir", filepath.Join(root, "local"),
		"--etccertsdir", filepath.Join(root, "etc"), "--hooksdir", filepath.Join(root, "hooks")}}
	dst, err := ca.Install(store)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dst) != ca.FileName() {
		t.Fatalf("installed as %s", dst)
	}
	bundle, err := os.ReadFile(filepath.Join(root, "etc", "ca-certificates.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(bundle, bytes.TrimSpace(ca.PEM())) {
		t.Fatal("the rebuilt bundle does not hold the local root")
	}
	if _, err := ca.Install(tlsca.SystemStore{Dir: root, Update: []string{"no-such-update-command"}}); !errors.Is(err, tlsca.ErrNoStore) {
		t.Fatalf("install without the command: %v, want ErrNoStore", err)
	}
}

func TestNamesDropsPortsAndDuplicates(t *testing.T) {
	got := tlsca.Names([]string{"LOCALHOST:80", "localhost", "[::1]", "0:0:0:0:0:0:0:1", "a.test."})
	if strings.Join(got, " ") != "localhost ::1 a.test" {
		t.Fatalf("got %v", got)
	}
}

// TestIssuePeerAuthenticatesClients: a peer certificate verifies as a
// client's (mutual TLS between NATS route servers), a server certificate
// does not.
func TestIssuePeerAuthenticatesClients(t *testing.T) {
	ca, err := tlsca.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ca.IssuePeer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := peer.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("peer certificate, usage %v: %v", usage, err)
		}
	}
	if _, err := server.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a server certificate verified as a client's")
	}
}
