// Package server composes a whole wsgate: the gateway, its hub, the change
// streams and any extra HTTP handlers (the demo's dashboard), behind one
// listener. cmd/wsgate only parses flags and calls it, so tests start the
// same thing the binary runs.
//
// With tls.mode auto or off, the listener is served by httpfront: it tells
// TLS from plaintext by the first byte, serves plaintext WebSocket
// handshakes and management requests itself and hands TLS connections and
// every other request to the http.Server. With tls.mode on, the http.Server
// serves the listener.
//
// Lifecycle: New validates, binds the listener (so the management endpoint
// handed to command handlers is known) and builds everything, serving
// nothing yet (if anything fails, what was built is released); Start serves
// and starts streaming; Shutdown stops accepting, closes every
// connection with 1001 (each gets $disconnect), waits for in-flight calls,
// stops the streams and releases integrations. Between the two, Reload
// applies a new config in place (see its doc and docs/architecture.md).
//
// Each stream runs under a streams.Supervisor on a goroutine the Server
// owns: a source that fails is restarted with backoff, one that fails
// permanently is reported (state "failed" in GET /{stage}/@streams and an
// ERROR log) and left stopped while the rest of the server goes on. With
// a cluster block the supervisor runs only while this node holds the
// stream's lease (cluster.Hub.Lease, keyed by the source's id), so each
// source runs on one node of the cluster.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/wsgate/wsgate/accesslog"
	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/httpfront"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/internal/gcfloor"
	"github.com/wsgate/wsgate/metrics"
	"github.com/wsgate/wsgate/streams"
	"github.com/wsgate/wsgate/streams/dynamodb"
	"github.com/wsgate/wsgate/streams/postgres"
	"github.com/wsgate/wsgate/streams/sqlite"
)

// Config is the whole config file: the gateway's fields at the top level,
// the change streams, and logging. See docs/configuration.md.
type Config struct {
	gateway.Config
	// Streams are the change streams. Default none.
	Streams []streams.Config `json:"streams,omitempty"`
	// Functions are run locally by runtime; a lambda integration naming
	// one invokes it here instead of on AWS. Default none.
	Functions map[string]integration.FunctionConfig `json:"functions,omitempty"`
	// Globals are settings every function shares.
	Globals integration.Globals `json:"globals,omitempty"`
	// Log sets the log output.
	Log LogConfig `json:"log,omitempty"`
	// StateDir keeps what wsgate creates for itself (the local CA).
	// Default .wsgate beside the config file.
	StateDir string `json:"stateDir,omitempty"`
	// TLS is how the listener serves TLS. See docs/tls.md.
	TLS TLSConfig `json:"tls,omitempty"`
	// ProxyProtocol makes the listener read a PROXY protocol header (v1 or
	// v2) at the start of every connection from a trustedProxies peer; its
	// client address becomes the connection's peer (sourceIp). Other peers
	// are served as they are, without one. Default false.
	ProxyProtocol bool `json:"proxyProtocol,omitempty"`
	// KeepAliveWaitDescriptors bounds the second descriptors (Linux) that
	// kept-alive HTTP connections (management API clients) hold while
	// they wait for their next request: one each, which saves a read per
	// request; a connection past the bound waits with that read more
	// until one is free. Default 0: an eighth of the descriptor limit
	// (RLIMIT_NOFILE). -1: none. Range 1 to 1048576 otherwise.
	KeepAliveWaitDescriptors int `json:"keepAliveWaitDescriptors,omitempty"`
	// Cluster makes this process one node of several over NATS. Nil: a
	// single node. See docs/cluster.md.
	Cluster *cluster.Config `json:"cluster,omitempty"`
	// Admin is the admin listener (metrics, health). Default none.
	Admin *AdminConfig `json:"admin,omitempty"`
	// AccessLog writes one line per connect, message and disconnect in
	// API Gateway's $context format. Default none.
	AccessLog *accesslog.Config `json:"accessLog,omitempty"`
	// HeapFloorMiB is the heap the garbage collector lets the process
	// grow to before it collects, whatever GOGC's proportion of the live
	// heap says (internal/gcfloor); 0: none, Go's own pacing. Nil: the
	// default, DefaultHeapFloorMiB. Ignored when GOGC is set.
	HeapFloorMiB *int `json:"heapFloorMiB,omitempty"`
}

// DefaultHeapFloorMiB is heapFloorMiB's default.
const DefaultHeapFloorMiB = 64

// MaxHeapFloorMiB is heapFloorMiB's largest value (1 TiB).
const MaxHeapFloorMiB = 1 << 20

// MaxKeepAliveWaitDescriptors is keepAliveWaitDescriptors' upper bound
// (the front grows the descriptor table to at most 65,536 at start).
const MaxKeepAliveWaitDescriptors = 1 << 20

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	c.Config.SetDefaults()
	if c.TLS.Mode == "" {
		c.TLS.Mode = TLSAuto
	}
	if c.Cluster != nil {
		c.Cluster.SetDefaults()
	}
	if c.AccessLog != nil {
		c.AccessLog.SetDefaults()
	}
	if c.HeapFloorMiB == nil {
		n := DefaultHeapFloorMiB
		c.HeapFloorMiB = &n
	}
}

// LogConfig sets the log output.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `json:"level,omitempty"`
	// Format is text (default) or json.
	Format string `json:"format,omitempty"`
}

// LoadConfig reads a YAML or JSON config file. Unknown fields are errors,
// so a typo does not silently fall back to a default.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, err
	}
	c.resolvePaths(filepath.Dir(path))
	c.resolveTLSPaths(filepath.Dir(path))
	c.resolveAccessLogPath(filepath.Dir(path))
	if err := c.checkCodeDirs(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkCodeDirs reports every function whose codeUri is not a directory, so
// --check finds a wrong path before serve does.
func (c *Config) checkCodeDirs() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Functions)) {
		if fi, err := os.Stat(c.Functions[name].CodeURI); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("functions.%s: codeUri %s is not a directory", name, c.Functions[name].CodeURI))
		}
	}
	return errors.Join(errs...)
}

// resolvePaths makes the functions' relative paths (codeUri, cacheDir, and
// interpreters given as a path such as ./venv/bin/python) relative to dir,
// the config file's directory. A bare program name (python3) stays one, to
// be found on PATH.
func (c *Config) resolvePaths(dir string) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	program := func(p string) string {
		if !strings.ContainsRune(p, filepath.Separator) {
			return p
		}
		return rel(p)
	}
	for name, f := range c.Functions {
		f.CodeURI = rel(f.CodeURI)
		f.Interpreter = program(f.Interpreter)
		c.Functions[name] = f
	}
	c.Globals.CacheDir = rel(c.Globals.CacheDir)
	c.Globals.Node = program(c.Globals.Node)
	c.Globals.Python = program(c.Globals.Python)
	if c.Cluster != nil {
		c.Cluster.ResolvePaths(dir)
	}
}

// ParseConfig parses YAML or JSON config text, applies defaults and
// validates it.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the whole config, defaults applied. Each problem names
// its field path: idleTimeoutSeconds, routes["$default"].integration.uri,
// streams[0].source.pollMillis.
func (c *Config) Validate() error {
	var e confcheck.Errors
	e.In("", c.Config.Validate())
	e.In("streams", streams.ValidateAll(c.Streams))
	e.In("", integration.ValidateFunctions(c.Functions, c.Globals))
	for i, s := range c.Streams {
		if s.Target.Group != "" && !gateway.ValidGroup(s.Target.Group) {
			e.Addf(confcheck.Index("streams", i)+".target.group", "%q: %s", s.Target.Group, gateway.GroupNameRule)
		}
	}
	c.checkGraces(&e)
	e.In("tls", c.TLS.validate())
	if v := c.KeepAliveWaitDescriptors; v != 0 && v != -1 {
		e.Range("keepAliveWaitDescriptors", v, 1, MaxKeepAliveWaitDescriptors)
	}
	if c.ProxyProtocol && len(c.TrustedProxies) == 0 {
		e.Addf("proxyProtocol", "needs trustedProxies: the addresses of the load balancers that send the header")
	}
	if c.Cluster != nil {
		e.In("cluster", c.Cluster.Validate())
	} else {
		for i, s := range c.Streams {
			if len(s.RunOn) > 0 {
				e.Addf(confcheck.Index("streams", i)+".runOn", "names cluster nodes: only with a cluster block")
			}
		}
	}
	if c.Admin != nil {
		e.In("admin", c.Admin.validate())
	}
	if c.AccessLog != nil {
		e.In("accessLog", c.AccessLog.Validate())
	}
	if c.HeapFloorMiB != nil {
		e.Range("heapFloorMiB", *c.HeapFloorMiB, 0, MaxHeapFloorMiB)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		e.Addf("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		e.Addf("log.format", "%q: want text or json", c.Log.Format)
	}
	return e.Err()
}

// checkGraces refuses a stream whose delivery grace does not fit inside
// the shutdown timeout: a call to the target under way at a shutdown
// could then be cut by the shutdown (the process exits) while its grace
// still runs, and the batch it got accepted is delivered again by the
// next run, against what the grace promises. The grace must be shorter,
// leaving the source time to make the batch durable. As Lambda refuses
// an SQS event source mapping whose function timeout exceeds the queue's
// visibility timeout, it is an error, not a warning; Reload validates
// the same, so a reload cannot shorten the timeout below a grace
// either. Values out of their own ranges are reported by those checks.
func (c *Config) checkGraces(e *confcheck.Errors) {
	shut := c.ShutdownTimeoutSeconds
	if shut < 1 || shut > gateway.MaxShutdownTimeoutSeconds {
		return
	}
	for i, sc := range c.Streams {
		g := sc.Source.DeliverGraceSeconds
		if g != nil && (*g < 0 || *g > streams.MaxDeliverGraceSeconds) {
			continue
		}
		grace, def := streams.DefaultDeliverGraceSeconds, " (the default)"
		if g != nil {
			grace, def = *g, ""
		}
		if grace >= shut {
			e.Addf(confcheck.Index("streams", i)+".source.deliverGraceSeconds",
				"%d%s must be less than shutdownTimeoutSeconds (%d): a call to the target under way at a shutdown would be cut before its grace ends, and its batch delivered again; lower deliverGraceSeconds or raise shutdownTimeoutSeconds",
				grace, def, shut)
		}
	}
}

// NewLogger builds the logger the config asks for, writing to w.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cmpOr(c.Log.Level, "info")))
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Server is a running (or ready to run) wsgate.
type Server struct {
	cfg     Config                 // as started: only its fixed settings are read after New
	cur     atomic.Pointer[Config] // the config in force; Reload replaces it
	log     *slog.Logger
	mem     *hub.Memory  // this node's connections
	hub     hub.Hub      // mem, or the cluster over it
	cluster *cluster.Hub // nil without a cluster block
	gw      *gateway.Gateway
	mux     *http.ServeMux
	// extras is set once Handle mounted something.
	extras bool
	http   *http.Server
	front  *httpfront.Server // nil with tls.mode on: http serves the listener
	// wrapped: Wrap put middleware in front of the handler (frontInline)
	wrapped bool
	ln      net.Listener
	tls     *tlsSetup // nil with tls.mode off

	endpoint string // the management endpoint handlers are given

	// mu guards streams and functions, which Reload replaces. Lock order:
	// reloadMu, then mu; the gateway's own reload lock is taken with
	// reloadMu held, never with mu.
	mu        sync.Mutex
	streams   []*stream
	functions *integration.Functions
	reloadMu  sync.Mutex // one Reload at a time, and none once Shutdown began
	shut      bool       // under reloadMu

	ctx    context.Context // Start's, for streams started later by Reload
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	// The admin listener (nil without an admin block), the metrics it
	// serves and the access log (nil when not configured).
	admin     *http.Server
	adminLn   net.Listener
	metrics   *metrics.Metrics
	accessLog *accesslog.Logger

	readyMu     sync.Mutex
	serving     bool // Start ran
	stopping    bool // Shutdown began
	readyChecks []namedCheck
}

type stream struct {
	name    string
	cfg     streams.Config
	source  streams.Source
	handler streams.Handler
	sup     *streams.Supervisor
	integ   integration.Integration // closed at shutdown, when the target has one

	cancel context.CancelCauseFunc // stops this stream alone (Reload); the cause says why (streams.StopReason)
	done   chan struct{}           // closed when its supervisor returned

	// In a cluster: whether this node holds the stream's lease and runs
	// it now, and the source id its lease is keyed by (once known).
	leading  atomic.Bool
	sourceID atomic.Pointer[string]
}

// clientListenConfig turns TCP keep-alive on for accepted connections with
// the system's timings, by setting SO_KEEPALIVE once on the listening
// socket: accepted sockets inherit it (Linux, the BSDs), so accepting costs
// no setsockopt for it, where Go's default (15 s probes) makes four per
// connection. Dead clients are found by idleTimeoutSeconds and the write
// timeouts, as on API Gateway.
var clientListenConfig = net.ListenConfig{KeepAlive: -1, Control: listenKeepAlive}

func listenKeepAlive(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) { err = setKeepAlive(fd) }); cerr != nil {
		return cerr
	}
	return err
}

// New validates cfg, binds the listener (so the management endpoint handed
// to command handlers is known) and builds everything, as Check does; but
// nothing is served until Start.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	s, err := newServer(cfg, logger)
	if err != nil {
		return nil, err
	}
	if f := s.cfg.HeapFloorMiB; f != nil {
		if !gcfloor.Set(uint64(*f)<<20) && *f > 0 {
			s.log.Info("GOGC is set: heapFloorMiB is not applied", "GOGC", os.Getenv("GOGC"), "heapFloorMiB", *f)
		}
	}
	ln, err := clientListenConfig.Listen(context.Background(), "tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	ts, err := setupTLS(&s.cfg, ln.Addr(), logger)
	if err != nil {
		ln.Close()
		return nil, err
	}
	// The front (httpfront) serves the listener: it reads a PROXY header
	// (proxyProtocol) and the first bytes under readHeaderTimeoutSeconds,
	// and hands TLS connections (every one with tls.mode on) and unusual
	// requests to net/http. With tls.mode on and no PROXY header there is
	// nothing for it to do: net/http serves a tls.Listener.
	switch {
	case s.cfg.TLS.Mode != TLSOn || s.cfg.ProxyProtocol:
		s.front = &httpfront.Server{Serves: s.frontServes, Inline: s.frontInline, ReleaseHeads: s.frontReleases,
			KeepAliveWaitDescriptors: s.cfg.KeepAliveWaitDescriptors,
			DeferAccept:              true, // the first read finds the head: no parking for it
			Logf:                     func(format string, args ...any) { s.log.Warn(fmt.Sprintf(format, args...)) }}
		if ts != nil {
			s.front.TLS = ts.config
			s.front.TLSOnly = s.cfg.TLS.Mode == TLSOn
		}
		if s.cfg.ProxyProtocol {
			proxies, _ := gateway.ParseProxies(s.cfg.TrustedProxies) // validated
			s.front.Prepare = proxyPreparer(proxies, s.log)
		}
	default:
		ln = tls.NewListener(ln, ts.config)
	}
	s.ln, s.tls = ln, ts
	if c := s.cfg.Cluster; c != nil {
		s.cluster, err = cluster.Start(*c, cluster.Options{
			Memory: s.mem, Logger: s.log, HTTP: ln.Addr().String(),
			StoreDir: filepath.Join(cmpOr(s.cfg.StateDir, DefaultStateDir), "nats", c.Node.Name),
		})
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		s.hub = s.cluster
		s.AddReadyCheck("cluster", s.cluster.Ready)
		s.cluster.SetStreamReport(s.streamReport)
	}
	if err := s.provision(s.ManagementEndpoint(), install); err != nil {
		ln.Close()
		if s.cluster != nil {
			_ = s.cluster.Close()
		}
		return nil, err
	}
	if err := s.listenAdmin(); err != nil {
		s.release()
		return nil, err
	}
	// Every read has a deadline: headers ReadHeaderTimeout, an idle
	// keep-alive connection IdleTimeout, a body readBodyTimeoutSeconds
	// (set per request, by the gateway and serveHTTP). No ReadTimeout or
	// WriteTimeout: they would run while a $connect integration is called
	// (up to 29 s and more). A WebSocket connection leaves all of them
	// behind: Hijack clears the socket's deadlines.
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: time.Duration(s.cfg.ReadHeaderTimeoutSeconds) * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.front != nil {
		s.front.Fallback = s.http
	}
	return s, nil
}

// Check finds every problem New would refuse cfg for, but that the listen
// address is free: it validates cfg and builds everything New builds (the
// gateway, every integration, every stream's source), through the same
// code. Where New installs change capture in a database, Check does the
// same work in a transaction it rolls back, so a missing file, table or
// permission is found and nothing is changed. It binds no listener, and
// releases all it built before returning. `wsgate serve --check` is Check.
func Check(cfg Config, logger *slog.Logger) error {
	s, err := newServer(cfg, logger)
	if err != nil {
		return err
	}
	if err := s.cfg.checkTLSFiles(); err != nil { // the local CA is not created
		return err
	}
	if c := s.cfg.Cluster; c != nil {
		if err := c.CheckFiles(); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	if err := s.provision("http://"+s.cfg.Listen+"/"+s.cfg.Stage, checkOnly); err != nil {
		return err
	}
	s.release()
	return nil
}

// newServer is the part of New and Check before anything is built.
func newServer(cfg Config, logger *slog.Logger) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	mem := hub.NewMemory(cfg.HubLimits())
	s := &Server{cfg: cfg, log: logger, mem: mem, hub: mem, mux: http.NewServeMux()}
	s.cur.Store(&s.cfg)
	return s, nil
}

// provisionMode is what provision does about change capture.
type provisionMode int

const (
	install   provisionMode = iota // install it in the database (New)
	checkOnly                      // check that it could be installed, changing nothing (Check)
)

// provision builds the gateway and the streams. On error it releases what
// it built.
func (s *Server) provision(endpoint string, mode provisionMode) error {
	var err error
	s.endpoint = endpoint
	if len(s.cfg.Credentials) == 0 && len(s.cfg.Functions) > 0 {
		s.log.Warn("no credentials configured: functions get no AWS keys, and their management API calls will be refused")
	}
	s.functions, err = integration.NewFunctions(s.cfg.Functions, s.cfg.Globals, s.integrationEnv(&s.cfg, s.log))
	if err != nil {
		return err
	}
	var node byte
	if s.cluster != nil {
		node = s.cluster.Self()
	}
	obs, err := s.observers(mode)
	if err != nil {
		_ = s.functions.Close()
		return err
	}
	s.gw, err = gateway.New(s.cfg.Config, gateway.Options{
		Hub: s.hub, Node: node, Logger: s.log, ManagementEndpoint: endpoint, HandlerEnv: s.handlerEnv(),
		Extensions: map[string]http.Handler{"@streams": http.HandlerFunc(s.serveStreams)},
		Functions:  s.functions,
		Observer:   obs,
	})
	if err != nil {
		_ = s.functions.Close()
		s.closeAccessLog()
		return err
	}
	for i, sc := range s.cfg.Streams {
		st, err := s.buildStream(&s.cfg, sc, s.functions, mode)
		if err != nil {
			s.release()
			return fmt.Errorf("streams[%d] (%s): %w", i, sc.DisplayName(), err)
		}
		s.streams = append(s.streams, st)
	}
	s.registerCollectors()
	return nil
}

// Optional Source methods that prepare a database before Run (sqlite's
// triggers): New calls Install, Check calls Check.
type (
	installer interface{ Install(context.Context) error }
	checker   interface{ Check(context.Context) error }
)

func (s *Server) buildStream(cfg *Config, sc streams.Config, fns *integration.Functions, mode provisionMode) (*stream, error) {
	st := &stream{name: sc.DisplayName(), cfg: sc}
	if sc.Source.Region == "" {
		sc.Source.Region = cfg.Region
	}
	log := s.log.With("stream", sc.DisplayName())
	var (
		src streams.Source
		err error
	)
	switch sc.Source.Type {
	case "sqlite":
		src, err = sqlite.New(sc.Source, log)
	case "postgres":
		if s.cluster != nil && sc.Source.StatusIntervalSeconds == 0 {
			// A failover replays what was accepted since the last status.
			sc.Source.StatusIntervalSeconds = postgres.ClusterStatusIntervalSeconds
		}
		src, err = postgres.New(sc.Source, log)
	case "dynamodb":
		var opts []dynamodb.Option
		if s.cluster != nil {
			// The checkpoint moves with the stream's lease, in KV.
			opts = append(opts, dynamodb.WithCheckpoints(s.cluster.Checkpoints))
		}
		src, err = dynamodb.New(sc.Source, log, opts...)
	default:
		err = fmt.Errorf("unknown source type %q", sc.Source.Type)
	}
	if err != nil {
		return nil, err
	}
	st.source = src
	if err := s.buildTarget(cfg, st, sc, fns, log); err != nil {
		st.close()
		return nil, err
	}
	// Capture starts before the server says it is listening: a source that
	// installs capture in the database (sqlite's triggers) does it now, last,
	// so that a config refused for another reason leaves the database as
	// it was, and no write made after start-up is missed.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if in, ok := src.(installer); ok && mode == install {
		err = in.Install(ctx)
	}
	if ch, ok := src.(checker); ok && mode == checkOnly {
		err = ch.Check(ctx)
	}
	if err != nil {
		st.close()
		return nil, fmt.Errorf("installing change capture: %w", err)
	}
	st.sup = streams.NewSupervisor(src, st.handler, log)
	return st, nil
}

// buildTarget sets st's handler: a group publisher, or a mapping onto the
// target's integration, which it builds.
func (s *Server) buildTarget(cfg *Config, st *stream, sc streams.Config, fns *integration.Functions, log *slog.Logger) error {
	if sc.Target.Group != "" {
		st.handler = streams.NewGroupTarget(sc.Target, publisher{h: s.hub, cfg: &s.cur})
		return nil
	}
	env := s.integrationEnv(cfg, log)
	env.Functions = fns
	in, err := integration.New(*sc.Target.Integration, env)
	if err != nil {
		return fmt.Errorf("target integration: %w", err)
	}
	st.integ = in
	st.handler = streams.NewMappingTarget(sc.Target, st.integ, log)
	return nil
}

// close releases what a stream holds: its target's integration and, when
// it has one, its source.
func (st *stream) close() {
	if st.integ != nil {
		_ = st.integ.Close()
	}
	if c, ok := st.source.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// publisher adapts the hub to the streams' group target.
type publisher struct {
	h   hub.Hub
	cfg *atomic.Pointer[Config] // the config in force, for PaceEvery
}

var (
	_ streams.CountingPublisher = publisher{}
	_ streams.FlushingPublisher = publisher{}
	_ streams.PacingPublisher   = publisher{}
)

// PaceEvery is half the outbound queue bound in force (frames, and
// bytes less a WebSocket header's 10 per frame), the step a burst goes
// out in: a member with at most half its queue taken (hub.Backlogger)
// takes a whole step.
func (p publisher) PaceEvery() (records, bytes int) {
	c := p.cfg.Load()
	records = max(c.OutboundQueueFrames/2, 1)
	return records, max(c.OutboundQueueBytes/2-10*records, c.OutboundQueueBytes/4)
}

// Pace holds a burst back until the group's members took in the step
// before (hub.Pacer), bounded by hub.PaceWait.
func (p publisher) Pace(ctx context.Context, group string) {
	if pc, ok := p.h.(hub.Pacer); ok {
		pc.Pace(ctx, group)
	}
}

// Flush waits until a cluster hub's NATS connection took every group
// message published so far; the memory hub has nothing to wait for.
func (p publisher) Flush(ctx context.Context) error {
	if f, ok := p.h.(interface{ Flush(context.Context) error }); ok {
		return f.Flush(ctx)
	}
	return nil
}

func (p publisher) Publish(ctx context.Context, group string, data []byte) error {
	_, _, err := p.PublishCounted(ctx, group, data)
	return err
}

func (p publisher) PublishCounted(ctx context.Context, group string, data []byte) (queued, skipped int, err error) {
	d, err := p.h.Publish(ctx, group, hub.NewMessage(data))
	return d.Delivered, d.Skipped, err
}

// serveHTTP sends /{stage}, the base paths and everything below them to
// the gateway without ServeMux's path cleaning (management paths carry
// escaped ids), and other paths to the extra handlers, or to the gateway's
// 403 when there are none. A "/" base path takes every path.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.extras || s.gw.Serves(r.URL.EscapedPath()) {
		s.gw.ServeHTTP(w, r)
		return
	}
	if r.ContentLength != 0 { // as the gateway does for its requests
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Duration(s.cur.Load().ReadBodyTimeoutSeconds) * time.Second))
	}
	s.mux.ServeHTTP(w, r)
}

// frontServes says which requests the front serves itself: the
// gateway's (bounded JSON answers and upgrades); extra handlers' paths
// (the dashboard) go to net/http.
func (s *Server) frontServes(r *http.Request) bool {
	return !s.extras || s.gw.Serves(r.URL.EscapedPath())
}

// frontInline says which of the front's requests it may serve on the
// goroutine that accepted their connection: the gateway's upgrades that
// wait on nothing (no $connect, no authorizer), unless middleware wraps
// the handler (Wrap: it may wait).
func (s *Server) frontInline(r *http.Request) bool {
	return !s.wrapped && s.gw.Inline(r)
}

// frontReleases says whether a handler's httpfront.ReleaseHead is
// honoured: the gateway's handler keeps no string of a head it releases,
// but middleware (Wrap) might.
func (s *Server) frontReleases(*http.Request) bool { return !s.wrapped }

// Handle mounts an extra handler (the demo's dashboard) on the listener,
// with ServeMux patterns. Paths under /{stage} stay the gateway's.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.extras = true
	s.mux.Handle(pattern, h)
}

// Wrap puts middleware in front of everything the listener serves, the
// gateway included (the demo's Host and Origin guard). Call it before
// Start.
func (s *Server) Wrap(mw func(http.Handler) http.Handler) {
	s.http.Handler = mw(s.http.Handler)
	s.wrapped = true
}

// Addr is the bound listen address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Gateway returns the gateway.
func (s *Server) Gateway() *gateway.Gateway { return s.gw }

// Hub returns the hub: the memory hub, or in a cluster the hub that
// reaches every node.
func (s *Server) Hub() hub.Hub { return s.hub }

// Cluster returns the cluster hub, or nil without a cluster block.
func (s *Server) Cluster() *cluster.Hub { return s.cluster }

// Start serves the listener and runs each stream under its supervisor in
// the background. A stream whose source fails is restarted with backoff;
// one that fails permanently is logged at ERROR and stays stopped, shown
// as "failed" in @streams; the others go on.
func (s *Server) Start() {
	ctx, cancel := context.WithCancelCause(context.Background())
	s.reloadMu.Lock()
	s.ctx, s.cancel = ctx, cancel
	s.reloadMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		serve := s.http.Serve
		if s.front != nil {
			serve = s.front.Serve
		}
		if err := serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serving", "error", err)
		}
	}()
	for _, st := range s.liveStreams() {
		s.startStream(st)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.logProgress(ctx, time.Minute)
	}()
	s.serveAdmin()
	s.readyMu.Lock()
	s.serving = true
	s.readyMu.Unlock()
	attrs := []any{"addr", s.Addr(), "websocket", strings.Join(s.WebSocketURLs(), " "), "management", s.ManagementEndpoint() + "/@connections"}
	if s.tls != nil && s.tls.ca != nil {
		attrs = append(attrs, "localCA", s.tls.ca.CertPath())
	}
	if s.adminLn != nil {
		attrs = append(attrs, "admin", "http://"+s.AdminAddr())
	}
	s.log.Info("wsgate listening", attrs...)
}

// startStream runs st's supervisor until Shutdown, or until Reload stops
// that stream alone. Call it with s.ctx set (Start). In a cluster the
// supervisor runs only while this node holds the stream's lease (see
// runLeased).
func (s *Server) startStream(st *stream) {
	ctx, cancel := context.WithCancelCause(s.ctx)
	st.cancel, st.done = cancel, make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(st.done)
		if s.cluster != nil {
			s.runLeased(ctx, st)
			return
		}
		s.log.Info("stream started", "stream", st.name)
		st.leading.Store(true)
		defer st.leading.Store(false)
		_ = st.sup.Run(ctx) // logs its failures itself
	}()
}

// runLeased campaigns for st's lease, keyed stream.<sourceID>, and runs its
// supervisor while this node holds it, until ctx ends. A source that is no
// streams.SourceIdentifier is keyed by the stream's name. A node that
// runOn leaves out does not campaign.
func (s *Server) runLeased(ctx context.Context, st *stream) {
	log := s.log.With("stream", st.name)
	if name := s.cfg.Cluster.Node.Name; !st.cfg.RunsOn(name) {
		log.Info("stream left to other nodes (runOn)", "runOn", st.cfg.RunOn)
		<-ctx.Done()
		return
	}
	var id string
	for attempt := 1; ; attempt++ {
		var err error
		if id, err = streams.SourceID(ctx, st.source, st.name); err == nil {
			break
		}
		d := leaseRetry.Jittered(attempt)
		log.Warn("stream source id unknown; cannot campaign for its lease yet", "error", err, "attempt", attempt, "retryIn", d)
		if streams.Sleep(ctx, d) != nil {
			return
		}
	}
	st.sourceID.Store(&id)
	log.Info("stream campaigning for its lease", "sourceId", id)
	err := s.cluster.Lease(ctx, "stream."+id, func(lctx context.Context) error {
		st.leading.Store(true)
		defer st.leading.Store(false)
		log.Info("stream started: this node leads it", "sourceId", id)
		return st.sup.Run(lctx) // logs its failures itself
	})
	if err != nil && ctx.Err() == nil {
		log.Error("stream stopped on this node", "error", err)
	}
}

// leaseRetry spaces attempts to learn a stream's source id.
var leaseRetry = streams.Backoff{Min: time.Second, Max: 30 * time.Second}

// liveFunctions are the functions in force.
func (s *Server) liveFunctions() *integration.Functions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.functions
}

// liveStreams are the streams in force.
func (s *Server) liveStreams() []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

// Shutdown stops everything, bounded by ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.reloadMu.Lock() // a reload under way finishes first; none starts after
	s.shut = true
	s.reloadMu.Unlock()
	s.readyMu.Lock()
	s.stopping = true // /readyz answers 503 from now on
	s.readyMu.Unlock()
	if s.cluster != nil {
		// Hand the streams over first: each stops, makes its position
		// durable and releases its lease, and another node takes it
		// while this one drains its clients.
		s.stopStreams(ctx)
	}
	shutdown := s.http.Shutdown
	if s.front != nil {
		shutdown = s.front.Shutdown // and net/http's behind it
	}
	httpErr := shutdown(ctx) // stops accepting; hijacked sockets are the gateway's
	if s.cluster != nil {
		// Group messages other nodes published before now reach this
		// node's members before their close frame.
		s.cluster.DrainGroups(ctx)
	}
	gwErr := s.gw.Shutdown(ctx)
	if s.cluster != nil {
		_ = s.cluster.Close() // after the clients: its ids answer 410 everywhere from here
	}
	if s.cancel != nil {
		s.cancel(streams.ErrShutdown)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var waitErr error
	select {
	case <-done:
	case <-ctx.Done():
		waitErr = fmt.Errorf("waiting for streams: %w", ctx.Err())
	}
	s.closeStreams()
	var adminErr error
	if s.admin != nil {
		adminErr = s.admin.Shutdown(ctx) // last: metrics stay readable while the rest stops
		_ = s.adminLn.Close()            // in case Start never served it
	}
	return errors.Join(httpErr, gwErr, waitErr, adminErr)
}

// stopStreams stops every stream and waits for each (bounded by ctx).
func (s *Server) stopStreams(ctx context.Context) {
	sts := s.liveStreams()
	for _, st := range sts {
		if st.cancel != nil {
			st.cancel(streams.ErrShutdown)
		}
	}
	for _, st := range sts {
		if st.cancel == nil {
			continue // never started
		}
		select {
		case <-st.done:
		case <-ctx.Done():
			return
		}
	}
}

// release shuts the gateway down (its integrations and sweeper) and
// closes the streams and the listener: what New or Check built when they
// fail, or what Check built once it is done.
func (s *Server) release() {
	if s.gw != nil {
		_ = s.gw.Shutdown(context.Background()) // no connections yet: returns at once
	}
	if s.adminLn != nil {
		_ = s.adminLn.Close()
	}
	s.closeStreams()
}

// closeStreams closes the streams and the listener.
func (s *Server) closeStreams() {
	for _, st := range s.streams {
		st.close()
	}
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.functions != nil {
		_ = s.functions.Close()
	}
	s.closeAccessLog()
}

// closeAccessLog writes what the access log buffered and closes it.
func (s *Server) closeAccessLog() {
	if s.accessLog != nil {
		_ = s.accessLog.Close()
	}
}

// StreamJSON is one stream in the answer of GET /{stage}/@streams.
type StreamJSON struct {
	Name string `json:"name"`
	// State is running, retrying (the source failed and is restarted
	// after a backoff), failed (it failed permanently and is not
	// restarted: see Error) or stopped.
	State streams.State `json:"state"`
	// Since is when the stream entered State (RFC 3339).
	Since time.Time `json:"since"`
	// Error is what ended the source's last run, if one failed.
	Error string `json:"error,omitempty"`
	// Restarts counts restarts after a failure.
	Restarts int `json:"restarts"`
	// Delivered counts records the target accepted: for a group target,
	// records published (whether anyone was subscribed or not) or
	// filtered out; for an integration, records invoked with
	// successfully or given up.
	Delivered int64 `json:"delivered"`
	// LagMillis is the age of the oldest change not yet delivered, 0 when
	// none is pending.
	LagMillis int64 `json:"lagMillis"`
	// LastError is the source's most recent transient error, retried
	// inside the running source.
	LastError string `json:"lastError,omitempty"`
	// Group counts a group target's publishes.
	Group *GroupJSON `json:"group,omitempty"`
	// Integration counts an integration target's invocations.
	Integration *IntegrationJSON `json:"integration,omitempty"`
	// SourceID names the physical source (cluster only): the stream's
	// lease is stream.<sourceId>.
	SourceID string `json:"sourceId,omitempty"`
	// Leader is the node that runs the stream (cluster only); absent
	// while no node does (a failover under way), and the figures are
	// then the answering node's.
	Leader *LeaderJSON `json:"leader,omitempty"`
}

// LeaderJSON is the node that runs a stream, as in GET /{stage}/@cluster.
type LeaderJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// GroupJSON is streams.GroupStats in the @streams answer.
type GroupJSON struct {
	Published     int64 `json:"published"`
	Filtered      int64 `json:"filtered"`
	Queued        int64 `json:"queued"`
	Skipped       int64 `json:"skipped"`
	NoSubscribers int64 `json:"noSubscribers"`
}

// IntegrationJSON is streams.TargetStats in the @streams answer.
type IntegrationJSON struct {
	Invocations int64 `json:"invocations"`
	Failures    int64 `json:"failures"`
	Discarded   int64 `json:"discarded"`
	Filtered    int64 `json:"filtered"`
}

// StreamsJSON is the answer of GET /{stage}/@streams.
type StreamsJSON struct {
	Streams []StreamJSON `json:"streams"`
}

// serveStreams answers GET /{stage}/@streams (SigV4-verified by the
// gateway): each stream's state, last error, progress and lag, and its
// target's counters.
func (s *Server) serveStreams(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("x-amzn-ErrorType", "NotFoundException")
		http.Error(w, `{"message":"No method found matching route @streams for http method `+r.Method+`."}`, http.StatusNotFound)
		return
	}
	out := StreamsJSON{Streams: s.localStreams()}
	if s.cluster != nil {
		reports, err := s.cluster.StreamReports(r.Context())
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("x-amzn-ErrorType", "InternalServerErrorException")
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
			return
		}
		out.Streams = mergeStreams(out.Streams, reports)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// localStreams are this node's streams in the @streams shape; in a
// cluster each names its source and, when this node runs it, the leader.
func (s *Server) localStreams() []StreamJSON {
	sts := s.liveStreams()
	out := make([]StreamJSON, 0, len(sts))
	for _, st := range sts {
		j := st.json()
		if s.cluster != nil {
			if id := st.sourceID.Load(); id != nil {
				j.SourceID = *id
			}
			if st.leading.Load() {
				j.Leader = &LeaderJSON{ID: hub.NodeHex(s.cluster.Self()), Name: s.cfg.Cluster.Node.Name}
			}
		}
		out = append(out, j)
	}
	return out
}

// streamReport is this node's answer to another node's streams query.
func (s *Server) streamReport() []byte {
	b, _ := json.Marshal(s.localStreams())
	return b
}

// mergeStreams joins this node's streams with the other nodes' reports:
// one item per source (per name when the source id is not known yet),
// the leader's when a node leads it. Sorted by name, then source id.
func mergeStreams(local []StreamJSON, reports [][]byte) []StreamJSON {
	all := slices.Clone(local)
	for _, b := range reports {
		var items []StreamJSON
		if json.Unmarshal(b, &items) == nil {
			all = append(all, items...)
		}
	}
	key := func(j StreamJSON) string {
		if j.SourceID != "" {
			return "id:" + j.SourceID
		}
		return "name:" + j.Name
	}
	byKey := map[string]int{}
	var out []StreamJSON
	for _, j := range all {
		i, ok := byKey[key(j)]
		switch {
		case !ok:
			byKey[key(j)] = len(out)
			out = append(out, j)
		case out[i].Leader == nil && j.Leader != nil:
			out[i] = j
		}
	}
	slices.SortStableFunc(out, func(a, b StreamJSON) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.SourceID, b.SourceID))
	})
	return out
}

func (st *stream) json() StreamJSON {
	ss := st.sup.Status()
	j := StreamJSON{
		Name: st.name, State: ss.State, Since: ss.Since.UTC().Truncate(time.Millisecond), Error: ss.Error, Restarts: ss.Restarts,
		Delivered: ss.Source.Delivered, LagMillis: ss.Lag.Milliseconds(), LastError: ss.Source.LastError,
	}
	switch h := st.handler.(type) {
	case *streams.GroupTarget:
		g := h.Stats()
		j.Group = &GroupJSON{g.Published, g.Filtered, g.Queued, g.Skipped, g.NoSubscribers}
	case *streams.MappingTarget:
		m := h.Stats()
		j.Integration = &IntegrationJSON{m.Invocations, m.Failures, m.Discarded, m.Filtered}
	}
	return j
}

// logProgress logs each stream's progress every interval, when it changed.
func (s *Server) logProgress(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	type seen struct {
		state     streams.State
		delivered int64
		lag       time.Duration
		lastError string
	}
	last := map[string]seen{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, st := range s.liveStreams() {
				ss := st.sup.Status()
				now := seen{ss.State, ss.Source.Delivered, ss.Lag, ss.Source.LastError}
				if now == last[st.name] {
					continue
				}
				last[st.name] = now
				s.log.Info("stream progress", "stream", st.name, "state", ss.State, "delivered", ss.Source.Delivered,
					"lag", ss.Lag, "lastError", ss.Source.LastError, "error", ss.Error)
			}
		}
	}
}

// WatchFunctions restarts a function's processes when files under its
// codeUri change, polling every interval until ctx is done (serve --watch).
// It watches the functions in force: after a reload, the new ones.
func (s *Server) WatchFunctions(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.mu.Lock()
		fns := s.functions
		s.mu.Unlock()
		fns.RecycleChanged()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// StreamStatus reports each stream's state and progress, by name.
func (s *Server) StreamStatus() map[string]streams.Status {
	sts := s.liveStreams()
	out := make(map[string]streams.Status, len(sts))
	for _, st := range sts {
		out[st.name] = st.sup.Status()
	}
	return out
}

// ManagementEndpoint is the management API's base URL, the one command
// handlers are given: http:// unless tls.mode is on.
func (s *Server) ManagementEndpoint() string {
	if s.cfg.TLS.Mode == TLSOn {
		return "https://" + s.dialAddr() + "/" + s.cfg.Stage
	}
	return "http://" + s.Addr() + "/" + s.cfg.Stage
}
