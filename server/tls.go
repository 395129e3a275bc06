package server

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/integration/bootstrap"
	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/tlsca"
)

// TLSConfig is the tls section of the config file. See docs/tls.md.
type TLSConfig struct {
	// Mode is auto (default: TLS and plaintext on the same port, told
	// apart by the first byte), on (TLS only; a plaintext HTTP request is
	// answered 400) or off (plaintext only).
	Mode TLSMode `json:"mode,omitempty"`
	// CertFile and KeyFile are a PEM certificate (chain) and key, used
	// instead of the local CA and reloaded when either file changes.
	// Relative paths are relative to the config file. Default none.
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

// TLSMode is auto, on or off.
type TLSMode string

// TLS modes.
const (
	TLSAuto TLSMode = "auto"
	TLSOn   TLSMode = "on"
	TLSOff  TLSMode = "off"
)

// UnmarshalJSON takes YAML 1.1's booleans as well: an unquoted `mode: on`
// arrives as true.
func (m *TLSMode) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*m = TLSOn
	case "false":
		*m = TLSOff
	default:
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("tls.mode: want auto, on or off")
		}
		*m = TLSMode(s)
	}
	return nil
}

// DefaultStateDir is the state directory's name, beside the config file.
const DefaultStateDir = ".wsgate"

func (t *TLSConfig) validate() error {
	var e confcheck.Errors
	switch t.Mode {
	case TLSAuto, TLSOn, TLSOff:
	default:
		e.Addf("mode", "%q: want auto, on or off", t.Mode)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		e.Addf("certFile", "certFile and keyFile go together: set both or neither")
	}
	if t.Mode == TLSOff && t.CertFile != "" {
		e.Addf("certFile", "set, but mode is off")
	}
	return e.Err()
}

// resolveTLSPaths makes the state directory and certificate files
// relative to the config file's directory.
func (c *Config) resolveTLSPaths(configDir string) {
	if abs, err := filepath.Abs(configDir); err == nil {
		configDir = abs
	}
	for _, p := range []*string{&c.StateDir, &c.TLS.CertFile, &c.TLS.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(configDir, *p)
		}
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(configDir, DefaultStateDir)
	}
}

// Warnings are problems that do not stop wsgate but make it do less than
// a user likely expects; `wsgate serve` logs them, --check prints them.
func (c *Config) Warnings() []string {
	var w []string
	if len(c.Credentials) == 0 {
		w = append(w, "no credentials configured: every management API call (@connections) is refused with 403, "+
			"and command handlers get no AWS_ACCESS_KEY_ID to sign their own calls with")
	}
	if c.TLS.Mode == TLSOff && c.hasRuntimeFunctions() {
		w = append(w, "tls.mode is off: Node.js and Python functions that build https://"+executeAPIHost(c)+
			"/"+c.Stage+" (or any https:// endpoint) cannot reach wsgate; tls.mode auto (the default) serves it "+
			"beside plaintext on the same port")
	}
	return w
}

// hasRuntimeFunctions reports whether a function runs with wsgate's own
// Node.js or Python runtime client (which route the execute-api host).
func (c *Config) hasRuntimeFunctions() bool {
	for _, fc := range c.Functions {
		if rt, ok := bootstrap.Lookup(fc.Runtime); ok && rt.Family != bootstrap.Provided {
			return true
		}
	}
	return false
}

// checkTLSFiles loads tls.certFile and tls.keyFile, when set, as New
// would; Check calls it so a wrong path or key fails there.
func (c *Config) checkTLSFiles() error {
	if c.TLS.CertFile == "" || c.TLS.Mode == TLSOff {
		return nil
	}
	if _, err := tlsca.LoadFiles(c.TLS.CertFile, c.TLS.KeyFile, nil); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}

// tlsSetup is what the server's TLS needs at run time.
type tlsSetup struct {
	config *tls.Config
	ca     *tlsca.CA // the local CA, nil when certFile is configured
	bundle string    // the system CAs plus the local CA, for handlers; "" without a local CA
}

// setupTLS loads the configured certificate or opens the local CA (creating
// it the first time) and issues a leaf for every name a client may use.
func setupTLS(cfg *Config, addr net.Addr, log *slog.Logger) (*tlsSetup, error) {
	if cfg.TLS.Mode == TLSOff {
		return nil, nil
	}
	ts := &tlsSetup{config: &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}
	if cfg.TLS.CertFile != "" {
		fc, err := tlsca.LoadFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile, log)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		ts.config.GetCertificate = fc.GetCertificate
		return ts, nil
	}
	// Absolute: handlers run in directories of their own.
	stateDir, err := filepath.Abs(cmpOr(cfg.StateDir, DefaultStateDir))
	if err != nil {
		return nil, fmt.Errorf("tls: state directory: %w", err)
	}
	ca, err := tlsca.Open(stateDir)
	if err != nil {
		return nil, fmt.Errorf("tls: local CA: %w", err)
	}
	leaves, err := ca.Leaves(certNames(cfg, addr), tlsca.DefaultLeafLifetime)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	ts.config.GetCertificate = leaves.GetCertificate
	ts.ca = ca
	ts.bundle = filepath.Join(stateDir, tlsca.BundleFile)
	if err := ca.WriteBundle(ts.bundle); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	log.Debug("local CA", "cert", ca.CertPath(), "names", leaves.Names())
	return ts, nil
}

// certNames are the names a local leaf covers: localhost and the loopback
// addresses, the listen host (the machine's hostname when listening on
// every address), domainName, and the AWS host handlers build,
// {apiId}.execute-api.{region}.amazonaws.com.
func certNames(cfg *Config, addr net.Addr) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			names = append(names, h)
		}
		if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
			names = append(names, ta.IP.String())
		}
	} else {
		names = append(names, host)
	}
	names = append(names, cfg.DomainName, executeAPIHost(cfg))
	return names
}

// trustedPeer reports whether a peer may send a PROXY header.
func trustedPeer(proxies gateway.Proxies, a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	return ok && proxies.Contains(ip)
}

// proxyPreparer is the front's Prepare with proxyProtocol: a trusted
// peer's connection starts with a PROXY header, read to its last byte;
// the client it names becomes the connection's RemoteAddr.
func proxyPreparer(proxies gateway.Proxies, log *slog.Logger) func(net.Conn) (net.Conn, error) {
	return func(c net.Conn) (net.Conn, error) { return prepareProxy(proxies, log, c) }
}

func prepareProxy(proxies gateway.Proxies, log *slog.Logger, c net.Conn) (net.Conn, error) {
	if !trustedPeer(proxies, c.RemoteAddr()) {
		return c, nil
	}
	pc, err := readProxyHeader(c)
	if err != nil {
		// The spec's rule: a receiver closes a connection whose header
		// is missing or invalid.
		log.Info("connection closed: PROXY protocol header from a trusted proxy missing or invalid", "peer", c.RemoteAddr().String(), "error", err)
	}
	return pc, err
}

// CACertPath is the local CA's root certificate, the file clients trust;
// "" when TLS is off or certFile is configured.
func (s *Server) CACertPath() string {
	if s.tls == nil || s.tls.ca == nil {
		return ""
	}
	return s.tls.ca.CertPath()
}

// CABundleVars are the variables through which runtimes read a CA bundle:
// the AWS SDKs and CLI, Node.js (added to its built-in CAs), OpenSSL and
// Python's ssl (and Go's crypto/x509 on Linux), and Python's requests.
var CABundleVars = []string{"AWS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"}

// handlerEnv is what every handler process wsgate starts gets on top of
// its own environment (a function's env still wins). While the local CA
// serves: CABundleVars and WSGATE_CA_BUNDLE set to the bundle of the
// system's CAs and the local CA (a configured certFile is presumed trusted
// already). While TLS is served at all: WSGATE_EXECUTE_API_HOST, the
// gateway's {apiId}.execute-api.{region}.amazonaws.com, and
// WSGATE_EXECUTE_API_ADDR, the host:port that reaches this server, which
// the Node.js and Python runtime clients route that host to. Nil with TLS
// off: the https:// URL handlers build for that host could not be served.
func (s *Server) handlerEnv() map[string]string {
	if s.tls == nil {
		return nil
	}
	m := map[string]string{
		"WSGATE_EXECUTE_API_HOST": s.ExecuteAPIHost(),
		"WSGATE_EXECUTE_API_ADDR": s.dialAddr(),
	}
	if s.tls.bundle != "" {
		for _, k := range CABundleVars {
			m[k] = s.tls.bundle
		}
		m["WSGATE_CA_BUNDLE"] = s.tls.bundle
	}
	return m
}

// ExecuteAPIHost is the AWS host of this gateway's API,
// {apiId}.execute-api.{region}.amazonaws.com, which handlers build their
// management endpoint from.
func (s *Server) ExecuteAPIHost() string { return executeAPIHost(&s.cfg) }

func executeAPIHost(cfg *Config) string {
	return cfg.APIID + ".execute-api." + cfg.Region + ".amazonaws.com"
}

// integrationEnv is cfg's integration environment with handlerEnv.
func (s *Server) integrationEnv(cfg *Config, log *slog.Logger) integration.Env {
	env := cfg.IntegrationEnv(s.endpoint, log)
	env.HandlerEnv = s.handlerEnv()
	return env
}

// WebSocketURLs are the URLs clients connect to, plaintext and TLS as the
// mode allows.
func (s *Server) WebSocketURLs() []string {
	var urls []string
	if s.cfg.TLS.Mode != TLSOn {
		urls = append(urls, "ws://"+s.Addr()+"/"+s.cfg.Stage)
	}
	if s.cfg.TLS.Mode != TLSOff {
		urls = append(urls, "wss://"+s.dialAddr()+"/"+s.cfg.Stage)
	}
	return urls
}

// dialAddr is the bound address with an unspecified host (listening on
// every address) replaced by 127.0.0.1, which the local leaf covers.
func (s *Server) dialAddr() string {
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return s.Addr()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
