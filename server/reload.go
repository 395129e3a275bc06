package server

import (
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/streams"
)

// fixedFields are the server's settings (beyond the gateway's, see
// gateway.Config.KeepFixed) that only a restart changes: the listener's
// TLS, where the local CA lives, the log's level and format, the front's
// keep-alive wait descriptors, the admin
// listener, the access log and the cluster (this node's place in it).
var fixedFields = []string{"tls", "stateDir", "log", "proxyProtocol", "keepAliveWaitDescriptors", "admin", "accessLog", "cluster", "heapFloorMiB"}

// liveFields are the server's settings a reload applies (besides the
// gateway's). Every field of Config is in one of the two lists
// (TestEveryFieldReloadsOrNeedsRestart).
var liveFields = []string{"streams", "functions", "globals"}

// Reloaded says what a Reload changed.
type Reloaded struct {
	gateway.Changes
	Functions integration.FunctionChanges
	// StreamsStarted, StreamsRestarted and StreamsStopped name streams.
	StreamsStarted, StreamsRestarted, StreamsStopped []string
	// StreamsFailed are new or changed streams that could not be started
	// (logged with their error); they are not running.
	StreamsFailed []string
	// NeedsRestart are the settings that changed but only take effect
	// when wsgate restarts; the running values stay.
	NeedsRestart []string
}

// Reload puts cfg in force without dropping a connection (SIGHUP, serve
// --watch). First cfg is checked exactly as Check does (validation, and
// building every integration and stream without changing anything); a
// config that fails leaves the running one untouched and the error is
// logged and returned. Then:
//
//   - routes, the route selection expression, credentials, the authorizer,
//     stage variables, origins and per-connection limits change at once
//     for every new handshake, message and management call (see
//     gateway.Reload); calls already running finish on the old config;
//   - a function whose definition did not change keeps its processes; a
//     changed one gets new processes, and its old ones, like those of a
//     removed function, are stopped once the calls on them finished;
//   - a stream whose config (and target function) did not change keeps
//     running; a changed or removed one is stopped (its position is
//     saved as at shutdown) and a changed or new one started, and so is
//     one that had failed for good;
//   - settings only a restart changes (listen, stage, apiId, region,
//     accountId, domainName, maxInflight, maxGroups,
//     maxGroupsPerConnection, readHeaderTimeoutSeconds,
//     keepAliveWaitDescriptors, tls, stateDir,
//     log, heapFloorMiB) keep their running values and are logged as needing a restart.
//
// One line logs what changed. Reload must follow Start; reloads run one
// at a time, and not once Shutdown began.
func (s *Server) Reload(cfg Config) (Reloaded, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var r Reloaded
	if s.shut || s.ctx == nil {
		return r, errors.New("reload: the server is not running")
	}
	cfg.SetDefaults()
	refuse := func(err error) (Reloaded, error) {
		s.log.Error("config reload refused, the running config stays", "error", err)
		return Reloaded{}, err
	}
	if err := cfg.Validate(); err != nil {
		return refuse(err)
	}
	running := s.cur.Load()
	r.NeedsRestart = append(cfg.KeepFixed(&running.Config), confcheck.Pin(&cfg, running, fixedFields...)...)
	// The same build as serve's, but for the listener, changing nothing.
	// Its own warnings were logged at start; its errors are returned.
	if err := Check(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return refuse(err)
	}

	s.mu.Lock()
	oldFns, oldStreams := s.functions, s.streams
	s.mu.Unlock()
	fns, fch, err := oldFns.Next(cfg.Functions, cfg.Globals, s.integrationEnv(&cfg, s.log))
	if err != nil {
		return refuse(err)
	}
	gch, gwDone, err := s.gw.Reload(cfg.Config, fns)
	if err != nil {
		fns.CloseRetired(oldFns)
		return refuse(err)
	}
	s.cur.Store(&cfg)
	r.Changes, r.Functions = gch, fch

	// Streams: keep the unchanged, stop the changed and removed (waiting
	// for their supervisors, so a source's position is saved and its
	// database released before its successor opens it), start the rest.
	kept := map[string]*stream{}
	for _, st := range oldStreams {
		// A stream that failed for good is started again, changed or not:
		// fixing its cause and reloading is how it comes back.
		if i := slices.IndexFunc(cfg.Streams, func(sc streams.Config) bool { return sc.DisplayName() == st.name }); i >= 0 &&
			streamUnchanged(st, cfg.Streams[i], running, &cfg, oldFns, fns) && st.sup.Status().State != streams.StateFailed {
			kept[st.name] = st
			continue
		}
		st.cancel(streams.ErrReload)
		<-st.done
		st.close()
	}
	var next, started []*stream
	for _, sc := range cfg.Streams {
		name := sc.DisplayName()
		if st := kept[name]; st != nil {
			next = append(next, st)
			continue
		}
		wasRunning := slices.ContainsFunc(oldStreams, func(st *stream) bool { return st.name == name })
		st, err := s.buildStream(&cfg, sc, fns, install)
		if err != nil {
			s.log.Error("stream not started after reload", "stream", name, "error", err)
			r.StreamsFailed = append(r.StreamsFailed, name)
			continue
		}
		next, started = append(next, st), append(started, st)
		if wasRunning {
			r.StreamsRestarted = append(r.StreamsRestarted, name)
		} else {
			r.StreamsStarted = append(r.StreamsStarted, name)
		}
	}
	for _, st := range oldStreams {
		if !slices.ContainsFunc(cfg.Streams, func(sc streams.Config) bool { return sc.DisplayName() == st.name }) {
			r.StreamsStopped = append(r.StreamsStopped, st.name)
		}
	}
	s.mu.Lock()
	s.streams, s.functions = next, fns
	s.mu.Unlock()
	for _, st := range started {
		s.startStream(st)
	}
	// The old functions' processes stop once no call runs on them: the
	// gateway's old config drained (stopped streams have returned).
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-gwDone
		oldFns.CloseRetired(fns)
	}()
	s.logReload(r)
	return r, nil
}

// streamUnchanged reports whether a running stream serves the new config
// as it is: the same definition, the same target function, and for a
// command target the same credential in its processes' environment.
func streamUnchanged(st *stream, sc streams.Config, was, is *Config, oldFns, fns *integration.Functions) bool {
	if !reflect.DeepEqual(st.cfg, sc) {
		return false
	}
	in := sc.Target.Integration
	switch {
	case in == nil:
		return true
	case in.Type == "lambda":
		return integration.SameFunction(oldFns, fns, in.Function)
	case in.Type == "command":
		return reflect.DeepEqual(firstKey(was), firstKey(is))
	}
	return true
}

func firstKey(c *Config) []gateway.Credential {
	return c.Credentials[:min(1, len(c.Credentials))]
}

// logReload writes the one line saying what a reload changed, and a
// warning naming the settings that need a restart.
func (s *Server) logReload(r Reloaded) {
	var attrs []any
	add := func(key string, v []string) {
		if len(v) > 0 {
			attrs = append(attrs, key, v)
		}
	}
	add("routesAdded", r.RoutesAdded)
	add("routesRemoved", r.RoutesRemoved)
	add("routesChanged", r.RoutesChanged)
	if r.AuthorizerChanged {
		attrs = append(attrs, "authorizerChanged", true)
	}
	add("credentialsAdded", r.CredentialsAdded)
	add("credentialsRemoved", r.CredentialsRemoved)
	add("functionsStarted", r.Functions.Added)
	add("functionsRestarted", r.Functions.Restarted)
	add("functionsStopped", r.Functions.Removed)
	add("streamsStarted", r.StreamsStarted)
	add("streamsRestarted", r.StreamsRestarted)
	add("streamsStopped", r.StreamsStopped)
	add("streamsFailed", r.StreamsFailed)
	add("settings", r.Settings)
	add("needsRestart", r.NeedsRestart)
	if len(attrs) == 0 {
		s.log.Info("config reloaded, nothing changed")
		return
	}
	s.log.Info("config reloaded", attrs...)
	if len(r.NeedsRestart) > 0 {
		s.log.Warn("config reload: these settings need a restart, their running values stay", "needsRestart", r.NeedsRestart)
	}
}

// Config is the config in force (the last one Reload accepted), defaults
// applied.
func (s *Server) Config() Config { return *s.cur.Load() }
