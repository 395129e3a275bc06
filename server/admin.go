package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/wsgate/wsgate/accesslog"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/adminui"
	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/metrics"
	"github.com/wsgate/wsgate/streams"
)

// AdminConfig is the admin listener: Prometheus metrics, health checks and
// the admin page, on an address of its own so they stay off the public
// port.
type AdminConfig struct {
	// Listen is the admin listener's address, e.g. "127.0.0.1:9090".
	// Required when the admin block is present; without the block there
	// is no admin listener.
	Listen string `json:"listen"`
}

func (a *AdminConfig) validate() error {
	var e confcheck.Errors
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		e.Addf("listen", "%q: %v", a.Listen, err)
	}
	return e.Err()
}

// resolveAccessLogPath makes a file destination relative to dir, the
// config file's directory.
func (c *Config) resolveAccessLogPath(dir string) {
	if c.AccessLog == nil {
		return
	}
	switch d := c.AccessLog.Destination; d {
	case "", "stdout", "stderr":
	default:
		if !filepath.IsAbs(d) {
			c.AccessLog.Destination = filepath.Join(dir, d)
		}
	}
}

// observers builds what watches the gateway: the metrics registry (when
// there is an admin listener) and the access log (when configured).
// Check (mode checkOnly) opens no access log file: it only checks that
// the file's directory exists.
func (s *Server) observers(mode provisionMode) (gateway.Observer, error) {
	var obs gateway.Observers
	if s.cfg.Admin != nil {
		s.metrics = metrics.New(s.cfg.RouteKeys())
		obs = append(obs, s.metrics)
	}
	if al := s.cfg.AccessLog; al != nil && mode == checkOnly {
		if d := al.Destination; d != "stdout" && d != "stderr" {
			if fi, err := os.Stat(filepath.Dir(d)); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("access log: %s is not a directory", filepath.Dir(d))
			}
		}
	} else if al != nil {
		l, err := accesslog.Open(*s.cfg.AccessLog, accesslog.Static{APIID: s.cfg.APIID, Stage: s.cfg.Stage})
		if err != nil {
			return nil, err
		}
		s.accessLog = l
		obs = append(obs, l)
		if s.metrics != nil {
			s.metrics.AddAccessLog(l.Counts)
		}
	}
	if len(obs) == 0 {
		return nil, nil
	}
	return obs, nil
}

// ReopenLogs reopens the access log file at its path (wsgate serve does
// on SIGHUP, so logrotate can rename it); the old file gets everything
// logged before. Without a file destination it does nothing.
func (s *Server) ReopenLogs() error {
	if s.accessLog == nil {
		return nil
	}
	return s.accessLog.Reopen()
}

// registerCollectors adds the collectors that read the gateway and the
// streams once they are built.
func (s *Server) registerCollectors() {
	if s.metrics == nil {
		return
	}
	s.metrics.AddGateway(s.gw)
	if s.front != nil {
		s.metrics.AddKeepAliveWaits(s.front.KeepAliveWaits)
	}
	s.metrics.AddStreams(func() []metrics.Stream {
		live := s.liveStreams()
		out := make([]metrics.Stream, 0, len(live))
		for _, st := range live {
			ss := st.sup.Status()
			out = append(out, metrics.Stream{Name: st.name, State: string(ss.State), Delivered: ss.Source.Delivered, Lag: ss.Lag, Restarts: ss.Restarts, Leader: st.leading.Load(),
				Stops: ss.Stops, Cut: ss.Cut})
		}
		return out
	})
	s.metrics.AddFunctions(func() []integration.FunctionStats { return s.liveFunctions().Stats() })
	if p, ok := s.hub.(interface{ PaceStats() hub.PaceStats }); ok {
		s.metrics.AddPace(func() (int64, int64, int64) { st := p.PaceStats(); return st.Waits, st.Excused, st.Refused })
	}
	if s.cluster != nil {
		s.metrics.AddCluster(s.cluster)
	}
}

// listenAdmin binds the admin listener, when configured.
func (s *Server) listenAdmin() error {
	if s.cfg.Admin == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	// Credentials reload: the page asks for the ones in force.
	mux.Handle("/", adminui.New(adminSource{s}, func() map[string]string { return s.cur.Load().adminCredentials() }))
	s.adminLn = ln
	s.admin = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// AdminAddr is the admin listener's bound address, "" without one.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// ReadyCheck is one more condition of /readyz: nil when ready, else why
// not (a clustered hub that has not registered yet, say).
type ReadyCheck func() error

// AddReadyCheck adds a condition to /readyz under name.
func (s *Server) AddReadyCheck(name string, check ReadyCheck) {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	s.readyChecks = append(s.readyChecks, namedCheck{name, check})
}

type namedCheck struct {
	name  string
	check ReadyCheck
}

// Readiness is the answer of /readyz.
type Readiness struct {
	Ready bool `json:"ready"`
	// Reasons say why not, one per failed check.
	Reasons []string `json:"reasons,omitempty"`
}

// Ready reports whether the server should receive traffic: its listener
// serves and is not shutting down, every stream runs (a stream stopped
// by shutdown counts as deliberately stopped; one retrying or failed
// does not), and every added check passes.
func (s *Server) Ready() Readiness {
	var reasons []string
	s.readyMu.Lock()
	serving, stopping := s.serving, s.stopping
	checks := slices.Clone(s.readyChecks)
	s.readyMu.Unlock()
	switch {
	case stopping:
		reasons = append(reasons, "listener: shutting down")
	case !serving:
		reasons = append(reasons, "listener: not started")
	}
	for _, st := range s.liveStreams() {
		ss := st.sup.Status()
		switch ss.State {
		case streams.StateRunning, streams.StateStopped:
		default:
			r := fmt.Sprintf("stream %s: %s", st.name, ss.State)
			if ss.Error != "" {
				r += ": " + ss.Error
			}
			reasons = append(reasons, r)
		}
	}
	for _, c := range checks {
		if err := c.check(); err != nil {
			reasons = append(reasons, c.name+": "+err.Error())
		}
	}
	return Readiness{Ready: len(reasons) == 0, Reasons: reasons}
}

func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	writeAdminJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	r := s.Ready()
	status := http.StatusOK
	if !r.Ready {
		status = http.StatusServiceUnavailable
	}
	writeAdminJSON(w, status, r)
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveAdmin serves the admin listener until Shutdown, which stops it
// last (not in s.wg, which Shutdown waits for before).
func (s *Server) serveAdmin() {
	if s.admin == nil {
		return
	}
	go func() {
		if err := s.admin.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serving the admin listener", "error", err)
		}
	}()
}
