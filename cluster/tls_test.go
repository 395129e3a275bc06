package cluster_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/natstest"
	"github.com/wsgate/wsgate/tlsca"
)

// writePair writes cert and its key as PEM files in dir.
func writePair(t *testing.T, dir, name string, cert *tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// peerFiles issues a certificate for 127.0.0.1 usable as server and
// client from a new local CA and returns the CA file, cert and key.
func peerFiles(t *testing.T, ca *tlsca.CA, name string) cluster.TLSFiles {
	t.Helper()
	cert, err := ca.IssuePeer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, k := writePair(t, t.TempDir(), name, cert)
	return cluster.TLSFiles{CAFile: ca.CertPath(), CertFile: c, KeyFile: k}
}

func newCA(t *testing.T) *tlsca.CA {
	t.Helper()
	ca, err := tlsca.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestClusterRouteTLS: three embedded nodes whose routes use mutual TLS
// with certificates of one CA form the cluster (each sees the others
// through heartbeats and the JetStream registry, both over the routes);
// a route port completes a TLS handshake with a certificate of that CA
// and refuses one of another CA.
func TestClusterRouteTLS(t *testing.T) {
	parallel(t)
	ca := newCA(t)
	cfgs := embeddedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].NATS.Embedded.ClusterTLS = &cluster.RouteTLS{TLSFiles: peerFiles(t, ca, cfgs[i].Node.Name)}
		cfgs[i].SetDefaults()
	}
	startHubs(t, cfgs)

	// The route port speaks TLS first and verifies the client's certificate.
	handshake := func(f cluster.TLSFiles) error {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		d := &net.Dialer{Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", cfgs[0].NATS.Embedded.ClusterListen,
			&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = bufio.NewReader(c).ReadString('\n') // the route INFO, or the alert refusing the certificate
		return err
	}
	if err := handshake(peerFiles(t, ca, "visitor")); err != nil {
		t.Fatalf("TLS handshake with a certificate of the cluster's CA: %v", err)
	}
	if err := handshake(peerFiles(t, newCA(t), "stranger")); err == nil {
		t.Fatal("a route connection with a certificate of another CA was accepted")
	}
}

// startTLSNATS runs a standalone NATS server (JetStream) whose client port
// requires TLS with a client certificate of ca.
func startTLSNATS(t *testing.T, ca *tlsca.CA) string {
	t.Helper()
	f := peerFiles(t, ca, "nats")
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f.CertFile, KeyFile: f.KeyFile, CaFile: f.CAFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.StartWith(t, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSConfig, o.TLSTimeout = true, true, tc, 10
	})
	return fmt.Sprintf("tls://%s", ns.Addr())
}

// TestClusterExternalNATSTLS: nodes reach an external NATS that requires
// TLS and client certificates with nats.tls; a CA that did not sign the
// server's certificate is refused at start with an error naming caFile,
// and so is a missing client certificate.
func TestClusterExternalNATSTLS(t *testing.T) {
	parallel(t)
	ca := newCA(t)
	url := startTLSNATS(t, ca)
	var cfgs []cluster.Config
	for i := range 2 {
		c := externalConfig(url, fmt.Sprintf("tls-%d", i))
		f := peerFiles(t, ca, c.Node.Name)
		c.NATS.TLS = &f
		cfgs = append(cfgs, c)
	}
	startHubs(t, cfgs)

	start := func(f cluster.TLSFiles) error {
		c := externalConfig(url, "refused")
		c.StartupTimeoutSeconds = 10
		c.NATS.TLS = &f
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		h, err := cluster.Start(c, cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()})
		if err == nil {
			_ = h.Close()
		}
		return err
	}
	wrong := peerFiles(t, newCA(t), "wrong")
	err := start(wrong)
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), "cluster.nats.tls.caFile") {
		t.Fatalf("wrong CA: %v, want an unknown authority error naming cluster.nats.tls.caFile", err)
	}
	t.Logf("wrong CA refused: %v", err)
	if err := start(cluster.TLSFiles{CAFile: ca.CertPath()}); err == nil {
		t.Fatal("a node without a client certificate connected to a NATS that verifies clients")
	}
	missing := filepath.Join(t.TempDir(), "none.pem")
	if err := start(cluster.TLSFiles{CAFile: missing}); err == nil || !strings.Contains(err.Error(), "cluster.nats.tls.caFile: open "+missing) {
		t.Fatalf("missing CA file: %v", err)
	}
}

// TestConfigTLSValidation: the TLS settings' rules, each problem named by
// its path.
func TestConfigTLSValidation(t *testing.T) {
	parallel(t)
	embedded := func(f func(*cluster.Config)) cluster.Config {
		c := cluster.Config{Node: cluster.NodeConfig{Name: "n1"}, NATS: cluster.NATSConfig{Embedded: &cluster.EmbeddedConfig{ClusterListen: "127.0.0.1:0"}}}
		f(&c)
		c.SetDefaults()
		return c
	}
	external := func(f func(*cluster.Config)) cluster.Config {
		c := cluster.Config{Node: cluster.NodeConfig{Name: "n1"}, NATS: cluster.NATSConfig{URL: "tls://127.0.0.1:4222"}}
		f(&c)
		c.SetDefaults()
		return c
	}
	pair := cluster.TLSFiles{CertFile: "a.crt", KeyFile: "a.key"}
	tests := []struct {
		name string
		cfg  cluster.Config
		want string // "" for valid
	}{
		{"route TLS", embedded(func(c *cluster.Config) { c.NATS.Embedded.ClusterTLS = &cluster.RouteTLS{TLSFiles: pair} }), ""},
		{"route TLS without a key", embedded(func(c *cluster.Config) {
			c.NATS.Embedded.ClusterTLS = &cluster.RouteTLS{TLSFiles: cluster.TLSFiles{CAFile: "ca.pem", CertFile: "a.crt"}}
		}), "nats.embedded.clusterTls: set certFile and keyFile"},
		{"route TLS without routes", embedded(func(c *cluster.Config) {
			c.NATS.Embedded.ClusterListen = ""
			c.NATS.Embedded.ClusterTLS = &cluster.RouteTLS{TLSFiles: pair}
		}), "no clusterListen"},
		{"client TLS, CA only", external(func(c *cluster.Config) { c.NATS.TLS = &cluster.TLSFiles{CAFile: "ca.pem"} }), ""},
		{"client TLS, certificate only", external(func(c *cluster.Config) { c.NATS.TLS = &pair }), ""},
		{"client TLS, empty", external(func(c *cluster.Config) { c.NATS.TLS = &cluster.TLSFiles{} }), "nats.tls: set caFile, or certFile and keyFile"},
		{"client TLS, key without certificate", external(func(c *cluster.Config) { c.NATS.TLS = &cluster.TLSFiles{KeyFile: "a.key"} }), "certFile and keyFile go together"},
		{"client TLS with embedded", embedded(func(c *cluster.Config) { c.NATS.TLS = &cluster.TLSFiles{CAFile: "ca.pem"} }), "nats.tls: applies to url"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	c := embedded(func(c *cluster.Config) { c.NATS.Embedded.ClusterTLS = &cluster.RouteTLS{TLSFiles: pair} })
	if v := c.NATS.Embedded.ClusterTLS.Verify; v == nil || !*v {
		t.Errorf("clusterTls.verify defaults to %v, want true", v)
	}
}
