package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// pool reads a PEM CA bundle.
func (f *TLSFiles) pool(path string) (*x509.CertPool, error) {
	if f.CAFile == "" {
		return nil, nil // the system's
	}
	b, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%s.caFile: %w", path, err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s.caFile: %s holds no PEM certificate", path, f.CAFile)
	}
	return p, nil
}

// config builds the TLS settings of a client (and, for routes, a
// server): RootCAs and ClientCAs from CAFile, the certificate if set.
func (f *TLSFiles) config(path string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	p, err := f.pool(path)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs, cfg.ClientCAs = p, p
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.certFile, keyFile: %w", path, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// natsTLS is the TLS of the node's connections to nats.url, or nil.
func (c *Config) natsTLS() (*tls.Config, error) {
	if c.NATS.TLS == nil || c.NATS.URL == "" {
		return nil, nil
	}
	return c.NATS.TLS.config("cluster.nats.tls")
}

// routeTLS is the TLS of the embedded server's routes, or nil.
func (c *Config) routeTLS() (*tls.Config, error) {
	e := c.NATS.Embedded
	if e == nil || e.ClusterTLS == nil {
		return nil, nil
	}
	cfg, err := e.ClusterTLS.config("cluster.nats.embedded.clusterTls")
	if err != nil {
		return nil, err
	}
	if e.ClusterTLS.Verify == nil || *e.ClusterTLS.Verify {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// CheckFiles loads every TLS file the config names, as Start would, so a
// wrong path or key fails a config check.
func (c *Config) CheckFiles() error {
	_, err1 := c.natsTLS()
	_, err2 := c.routeTLS()
	return errors.Join(err1, err2)
}

// explainTLS adds what to check to a certificate verification error of a
// connection to NATS.
func explainTLS(err error) error {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ua):
		return fmt.Errorf("%w (the NATS server's certificate is not signed by a CA in cluster.nats.tls.caFile, or by a system CA when caFile is not set)", err)
	case errors.As(err, &hn):
		return fmt.Errorf("%w (the certificate does not name the host in cluster.nats.url)", err)
	case errors.As(err, &cv):
		return fmt.Errorf("%w (check cluster.nats.tls.caFile)", err)
	}
	return err
}
