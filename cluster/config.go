package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/confcheck"
)

// Config is the cluster: block. Without one, wsgate is a single node
// (node byte 0, no NATS). See docs/cluster.md.
type Config struct {
	// Name is the cluster's name: the subject prefix wsg.<name> and the KV
	// bucket names. [A-Za-z0-9_-]{1,32}, default "wsgate".
	Name string     `json:"name,omitempty"`
	Node NodeConfig `json:"node,omitempty"`
	NATS NATSConfig `json:"nats"`

	// RequestTimeoutMillis is the whole budget of one call forwarded to
	// another node. Default 1000.
	RequestTimeoutMillis int `json:"requestTimeoutMillis,omitempty"`
	// AttemptTimeoutMillis is one NATS request attempt. Default 250.
	AttemptTimeoutMillis int `json:"attemptTimeoutMillis,omitempty"`
	// GoneGraceMillis is how long "no responders" must persist before a
	// node is declared gone. Default 500.
	GoneGraceMillis int `json:"goneGraceMillis,omitempty"`
	// HeartbeatMillis is how often each node announces itself. Default 1000.
	HeartbeatMillis int `json:"heartbeatMillis,omitempty"`
	// NodeTimeoutMillis: a node whose heartbeats stayed silent this long
	// is declared gone, if this node heard a majority meanwhile. Default 3000.
	NodeTimeoutMillis int `json:"nodeTimeoutMillis,omitempty"`
	// SettleSeconds: after this node (re)connects to NATS, "no responders"
	// alone never declares a node gone for this long. Default 5.
	SettleSeconds int `json:"settleSeconds,omitempty"`
	// IsolationSeconds: a node connected to NATS whose registry renewals
	// failed this long while it heard fewer than a strict majority of the
	// live nodes fences (it is on the minority side of a partition).
	// Default 15, or leaseSeconds−1 when the lease is shorter.
	IsolationSeconds int `json:"isolationSeconds,omitempty"`
	// LeaseSeconds is the node registry's TTL: a node whose entry could
	// not be renewed this long fences. Default 60.
	LeaseSeconds int `json:"leaseSeconds,omitempty"`
	// StreamLeaseSeconds is the TTL of a change stream's lease: a leader
	// that stopped renewing it (crashed, cut off) is replaced this long
	// after its last renewal. Default 10.
	StreamLeaseSeconds int `json:"streamLeaseSeconds,omitempty"`
	// DedupeSeconds: an answered POST or DELETE is remembered between this
	// and twice this, so a retry of the same call (a client's through any
	// node) is answered, not done again. Keys are kept for
	// requestTimeoutMillis at least whatever this says, 0 too, so the
	// cluster's own retries of a forwarded call never run it twice; this
	// is how much longer a client's repeat is remembered. Default 10.
	DedupeSeconds *int `json:"dedupeSeconds,omitempty"`
	// GroupLingerSeconds keeps a group's subscription this long after its
	// last local member left. Default 5.
	GroupLingerSeconds *int `json:"groupLingerSeconds,omitempty"`
	// StartupTimeoutSeconds is how long start waits for NATS and the
	// registry. Default 60.
	StartupTimeoutSeconds int `json:"startupTimeoutSeconds,omitempty"`
}

// NodeConfig names this node.
type NodeConfig struct {
	// ID is "auto" (default) or a node byte 0–254.
	ID NodeID `json:"id,omitempty"`
	// Name is unique in the cluster; default the host name.
	Name string `json:"name,omitempty"`
	// AdvertiseHTTP is the host:port others may use to reach this node
	// (shown in @cluster); default the listen address.
	AdvertiseHTTP string `json:"advertiseHttp,omitempty"`
}

// NodeID is "auto" or a number 0–254; YAML may give it as either.
type NodeID string

// UnmarshalJSON accepts a string or a number.
func (n *NodeID) UnmarshalJSON(b []byte) error {
	var num json.Number
	if err := json.Unmarshal(b, &num); err == nil {
		*n = NodeID(num.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("node.id: want \"auto\" or a number from 0 to %d", hub.MaxNode)
	}
	*n = NodeID(s)
	return nil
}

// Static returns the configured byte, or false for auto.
func (n NodeID) Static() (byte, bool) {
	v, err := strconv.Atoi(string(n))
	if n == "" || n == "auto" || err != nil || v < 0 || v > hub.MaxNode {
		return 0, false
	}
	return byte(v), true
}

// NATSConfig is where the node finds NATS: exactly one of URL and Embedded.
type NATSConfig struct {
	// URL lists external NATS servers, comma-separated.
	URL string `json:"url,omitempty"`
	// CredentialsFile is a NATS .creds file for URL.
	CredentialsFile string `json:"credentialsFile,omitempty"`
	// TLS is how the node's connections to URL use TLS: the CA that
	// signed the servers' certificates (default: the system's) and a
	// client certificate for servers that verify clients.
	TLS *TLSFiles `json:"tls,omitempty"`
	// Embedded runs a NATS server in this process.
	Embedded *EmbeddedConfig `json:"embedded,omitempty"`
}

// EmbeddedConfig is the NATS server a node runs in its own process.
type EmbeddedConfig struct {
	// Listen is the client address; the node connects to it over TCP
	// unless InProcess is set. Default 127.0.0.1:4222; port 0 picks one.
	Listen string `json:"listen,omitempty"`
	// InProcess connects the node's own NATS connections to the embedded
	// server through in-memory pipes (net.Pipe) instead of TCP to Listen.
	// Off by default: measured, it saves no CPU (BENCHMARKS.md, Cluster).
	InProcess bool `json:"inProcess,omitempty"`
	// ClusterListen is the route address other nodes' servers connect to.
	ClusterListen string `json:"clusterListen,omitempty"`
	// Advertise is the route address given to others; default ClusterListen.
	Advertise string `json:"advertise,omitempty"`
	// Routes are every node's route URL (nats://host:port); this node's own
	// is fine.
	Routes []string `json:"routes,omitempty"`
	// JetStream runs JetStream here (the node registry's storage). Default
	// true; false on nodes beyond the first 3 or 5.
	JetStream *bool `json:"jetStream,omitempty"`
	// StoreDir is JetStream's directory. Default <stateDir>/nats/<node name>.
	StoreDir string `json:"storeDir,omitempty"`
	// ClusterAuth authenticates routes.
	ClusterAuth *RouteAuth `json:"clusterAuth,omitempty"`
	// ClusterTLS encrypts the routes between the embedded servers.
	ClusterTLS *RouteTLS `json:"clusterTls,omitempty"`
	// QueryPort is the direct query link's port on the route host
	// (direct.go): 0 (default) lets the system pick one, 1 to 65535 fixes
	// it (a firewall can then let it through), -1 turns the link off and
	// every query goes over NATS.
	QueryPort int `json:"queryPort,omitempty"`
}

// TLSFiles are PEM files: a CA bundle, a certificate (chain) and its key.
type TLSFiles struct {
	CAFile   string `json:"caFile,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

// RouteTLS is TLS on the routes: every server presents CertFile and
// checks the other's certificate against CAFile (default: the system's).
type RouteTLS struct {
	TLSFiles
	// Verify requires and verifies a certificate from the server that
	// opened a route too (mutual TLS). Default true.
	Verify *bool `json:"verify,omitempty"`
}

// RouteAuth is a route user and password.
type RouteAuth struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.Name == "" {
		c.Name = "wsgate"
	}
	if c.Node.ID == "" {
		c.Node.ID = "auto"
	}
	if c.Node.Name == "" {
		c.Node.Name, _ = os.Hostname()
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.RequestTimeoutMillis, 1000)
	def(&c.AttemptTimeoutMillis, 250)
	def(&c.GoneGraceMillis, 500)
	def(&c.HeartbeatMillis, 1000)
	def(&c.NodeTimeoutMillis, 3000)
	def(&c.SettleSeconds, 5)
	def(&c.LeaseSeconds, 60)
	def(&c.StreamLeaseSeconds, 10)
	def(&c.IsolationSeconds, min(15, max(1, c.LeaseSeconds-1)))
	def(&c.StartupTimeoutSeconds, 60)
	if c.GroupLingerSeconds == nil {
		v := 5
		c.GroupLingerSeconds = &v
	}
	if c.DedupeSeconds == nil {
		v := 10
		c.DedupeSeconds = &v
	}
	if e := c.NATS.Embedded; e != nil {
		if e.Listen == "" {
			e.Listen = "127.0.0.1:4222"
		}
		if e.JetStream == nil {
			t := true
			e.JetStream = &t
		}
		if r := e.ClusterTLS; r != nil && r.Verify == nil {
			t := true
			r.Verify = &t
		}
	}
}

// ResolvePaths makes the config's file and directory paths relative to
// dir (the config file's directory).
func (c *Config) ResolvePaths(dir string) {
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	files := func(f *TLSFiles) {
		rel(&f.CAFile)
		rel(&f.CertFile)
		rel(&f.KeyFile)
	}
	rel(&c.NATS.CredentialsFile)
	if t := c.NATS.TLS; t != nil {
		files(t)
	}
	if e := c.NATS.Embedded; e != nil {
		rel(&e.StoreDir)
		if r := e.ClusterTLS; r != nil {
			files(&r.TLSFiles)
		}
	}
}

// Validate reports every problem, each named by its path below cluster.
func (c *Config) Validate() error {
	var e confcheck.Errors
	if !nameRe.MatchString(c.Name) {
		e.Addf("name", "%q: use 1 to 32 letters, digits, '_' or '-'", c.Name)
	}
	if c.Node.ID != "auto" {
		v, err := strconv.Atoi(string(c.Node.ID))
		if err != nil {
			e.Addf("node.id", "%q: want \"auto\" or a number from 0 to %d", c.Node.ID, hub.MaxNode)
		} else {
			e.Range("node.id", v, 0, hub.MaxNode)
		}
	}
	if c.Node.Name == "" || len(c.Node.Name) > 64 {
		e.Addf("node.name", "%q: want 1 to 64 characters", c.Node.Name)
	}
	switch {
	case c.NATS.URL == "" && c.NATS.Embedded == nil:
		e.Addf("nats", "set url (external NATS) or embedded")
	case c.NATS.URL != "" && c.NATS.Embedded != nil:
		e.Addf("nats", "set url or embedded, not both")
	}
	if em := c.NATS.Embedded; em != nil {
		if em.ClusterListen == "" && len(em.Routes) > 0 {
			e.Addf("nats.embedded.clusterListen", "required with routes")
		}
		e.Range("nats.embedded.queryPort", em.QueryPort, -1, 65535)
		if a := em.ClusterAuth; a != nil && (a.User == "" || a.Password == "") {
			e.Addf("nats.embedded.clusterAuth", "set user and password")
		}
		if r := em.ClusterTLS; r != nil {
			if r.CertFile == "" || r.KeyFile == "" {
				e.Addf("nats.embedded.clusterTls", "set certFile and keyFile: every server presents its certificate on the routes")
			}
			if em.ClusterListen == "" {
				e.Addf("nats.embedded.clusterTls", "set, but there is no clusterListen (no routes)")
			}
		}
	}
	if t := c.NATS.TLS; t != nil {
		switch {
		case c.NATS.URL == "":
			e.Addf("nats.tls", "applies to url (an external NATS); the embedded servers' routes use nats.embedded.clusterTls")
		case *t == TLSFiles{}:
			e.Addf("nats.tls", "set caFile, or certFile and keyFile")
		case (t.CertFile == "") != (t.KeyFile == ""):
			e.Addf("nats.tls.certFile", "certFile and keyFile go together: set both or neither")
		}
	}
	ok := e.Range("requestTimeoutMillis", c.RequestTimeoutMillis, 100, 60_000)
	ok = e.Range("attemptTimeoutMillis", c.AttemptTimeoutMillis, 10, 60_000) && ok
	ok = e.Range("goneGraceMillis", c.GoneGraceMillis, 0, 60_000) && ok
	ok = e.Range("heartbeatMillis", c.HeartbeatMillis, 50, 60_000) && ok
	ok = e.Range("nodeTimeoutMillis", c.NodeTimeoutMillis, 150, 600_000) && ok
	e.Range("settleSeconds", c.SettleSeconds, 0, 600)
	ok = e.Range("isolationSeconds", c.IsolationSeconds, 1, 86_400) && ok
	ok = e.Range("leaseSeconds", c.LeaseSeconds, 1, 86_400) && ok
	e.Range("streamLeaseSeconds", c.StreamLeaseSeconds, 2, 3600)
	e.RangeOpt("groupLingerSeconds", c.GroupLingerSeconds, 0, 3600)
	e.RangeOpt("dedupeSeconds", c.DedupeSeconds, 0, 3600)
	e.Range("startupTimeoutSeconds", c.StartupTimeoutSeconds, 1, 3600)
	if ok {
		if c.AttemptTimeoutMillis >= c.RequestTimeoutMillis {
			e.Addf("attemptTimeoutMillis", "must be less than requestTimeoutMillis (%d), got %d", c.RequestTimeoutMillis, c.AttemptTimeoutMillis)
		}
		if 3*c.HeartbeatMillis > c.NodeTimeoutMillis {
			e.Addf("nodeTimeoutMillis", "must be at least 3 × heartbeatMillis (%d), got %d", 3*c.HeartbeatMillis, c.NodeTimeoutMillis)
		}
		if c.NodeTimeoutMillis >= c.IsolationSeconds*1000 {
			e.Addf("isolationSeconds", "must be longer than nodeTimeoutMillis (%d ms), got %d s", c.NodeTimeoutMillis, c.IsolationSeconds)
		}
		if c.IsolationSeconds >= c.LeaseSeconds {
			e.Addf("leaseSeconds", "must be longer than isolationSeconds (%d s), got %d s", c.IsolationSeconds, c.LeaseSeconds)
		}
	}
	return e.Err()
}

func (c *Config) requestTimeout() time.Duration { return confcheck.Millis(c.RequestTimeoutMillis) }
func (c *Config) attemptTimeout() time.Duration { return confcheck.Millis(c.AttemptTimeoutMillis) }
func (c *Config) goneGrace() time.Duration      { return confcheck.Millis(c.GoneGraceMillis) }
func (c *Config) heartbeat() time.Duration      { return confcheck.Millis(c.HeartbeatMillis) }
func (c *Config) nodeTimeout() time.Duration    { return confcheck.Millis(c.NodeTimeoutMillis) }
func (c *Config) settle() time.Duration         { return confcheck.Seconds(c.SettleSeconds) }
func (c *Config) lease() time.Duration          { return confcheck.Seconds(c.LeaseSeconds) }
func (c *Config) streamLease() time.Duration {
	return confcheck.Seconds(c.StreamLeaseSeconds)
}
func (c *Config) isolation() time.Duration      { return confcheck.Seconds(c.IsolationSeconds) }
func (c *Config) dedupeFor() time.Duration      { return confcheck.Seconds(*c.DedupeSeconds) }
func (c *Config) linger() time.Duration         { return confcheck.Seconds(*c.GroupLingerSeconds) }
func (c *Config) startupTimeout() time.Duration { return confcheck.Seconds(c.StartupTimeoutSeconds) }
