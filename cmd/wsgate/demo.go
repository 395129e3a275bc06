package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/dashboard"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/streams"
)

// Demo credentials: printed so a newcomer can try the management API and
// the CLI against the demo. Loopback only by default.
const (
	demoKey    = "AKIDDEMO"
	demoSecret = "demo-secret"
)

// DemoConfig is the configuration `wsgate demo` runs: a sqlite change
// stream of the orders table published to the group the page subscribes to
// through a subscribe route that needs no backend.
func DemoConfig(listen, db string) server.Config {
	cfg := server.Config{
		StateDir: filepath.Join(filepath.Dir(db), server.DefaultStateDir), // the local CA, beside the demo's database
		Config: gateway.Config{
			Listen:      listen,
			APIID:       "demo",
			Stage:       "demo",
			Credentials: []gateway.Credential{{AccessKeyID: demoKey, SecretAccessKey: demoSecret}},
			Routes: map[string]gateway.Route{
				"subscribe": {
					Groups:                           &gateway.RouteGroups{Join: "$request.body.group", Allow: []string{"orders"}},
					RouteResponseSelectionExpression: "$default",
				},
				"unsubscribe": {Groups: &gateway.RouteGroups{Leave: "$request.body.group"}},
			},
		},
		Streams: []streams.Config{{
			Name:   "orders",
			Source: streams.SourceConfig{Type: "sqlite", Path: db, Tables: []string{"orders"}},
			Target: streams.TargetConfig{Group: "orders"},
		}},
	}
	cfg.SetDefaults()
	return cfg
}

// demoHelp explains the demo's flags and its origin policy.
const demoHelp = `Usage: wsgate demo [flags]

The live dashboard: a SQLite table whose changes reach every open page.

Only this machine's pages may use it: a request's Host must be localhost,
a loopback IP or the listen address (any IP when listening on 0.0.0.0),
and a browser's Origin must be the page's own origin or a loopback one
(http://localhost:PORT, http://127.0.0.1:PORT). Anything else gets 403, so
a web site you visit cannot read the stream, not even by DNS rebinding.
--allow-host and --allow-origin add names and origins.

Flags:
`

// demoOptions are the demo's flags.
type demoOptions struct {
	listen, db             string
	rate                   float64
	allowHosts, allowOrigs []string
}

func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoHelp)
		fs.PrintDefaults()
	}
	var o demoOptions
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "listen address")
	fs.StringVar(&o.db, "db", "wsgate-demo.db", "SQLite database file (created if missing)")
	fs.Float64Var(&o.rate, "rate", 5, "synthetic changes per second (0 for none)")
	fs.Func("allow-host", "a further `name` the demo may be reached by, e.g. a LAN host name (repeatable, or comma-separated)", func(v string) error {
		o.allowHosts = append(o.allowHosts, splitList(v)...)
		return nil
	})
	fs.Func("allow-origin", "a further `origin` whose pages may use the demo, e.g. https://tools.example.com (repeatable, or comma-separated)", func(v string) error {
		o.allowOrigs = append(o.allowOrigs, splitList(v)...)
		return nil
	})
	if status, done := parseFlags(fs, args, stdout, stderr, 2); done {
		return status
	}
	app, err := newDemo(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate demo: %v\n", err)
		return 1
	}
	defer app.db.Close()
	fmt.Fprintf(stdout, "\n  wsgate demo: open http://%s/ in a browser (try two windows).\n\n", app.srv.Addr())
	fmt.Fprintf(stdout, "  Make a change yourself and watch it arrive:\n    %s\n\n", dashboard.DefaultSQLiteCommand(o.db, "orders"))
	fmt.Fprintf(stdout, "  The management API takes AWS SigV4 with key %s / secret %s, e.g.\n    %s\n\n",
		demoKey, demoSecret, demoCLICommand(selfCommand(os.Args[0]), app.srv.ManagementEndpoint()))
	return runUntilSignal(app.srv, stdout, app.log, app.run)
}

// demoCLICommand is the command the demo prints to list its connections
// with the CLI: runnable as printed, the demo's key in its environment.
func demoCLICommand(self, endpoint string) string {
	return fmt.Sprintf("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s %s conn list --endpoint-url %s",
		demoKey, demoSecret, self, endpoint)
}

// selfCommand is how a user runs this program again, from its argv[0]:
// `go run ./cmd/wsgate` (as the README starts the demo) when it is a binary
// that go run built in its build cache or a go-build directory, else argv[0]
// as given (wsgate on the PATH, ./wsgate).
func selfCommand(arg0 string) string {
	if strings.Contains(filepath.ToSlash(arg0), "/go-build") {
		return "go run ./cmd/wsgate"
	}
	return arg0
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// demoApp is what `wsgate demo` runs: the server with the dashboard mounted,
// its database and the data generator.
type demoApp struct {
	cfg server.Config
	srv *server.Server
	db  *sql.DB
	gen *dashboard.Generator
	log *slog.Logger
}

func newDemo(o demoOptions, logOut io.Writer) (*demoApp, error) {
	cfg := DemoConfig(o.listen, o.db)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.NewLogger(logOut)
	db, err := dashboard.OpenDB(o.db)
	if err != nil {
		return nil, err
	}
	if err := dashboard.EnsureSchema(context.Background(), db, "orders"); err != nil {
		db.Close()
		return nil, err
	}
	srv, err := server.New(cfg, logger)
	if err != nil {
		db.Close()
		return nil, err
	}
	viewers := func() int { return srv.Gateway().Connections() }
	srv.Handle("/", dashboard.Handler(dashboard.Config{
		DB: db, Table: "orders", Stage: cfg.Stage, Group: "orders", Viewers: viewers, Logger: logger,
	}))
	// Everything the listener serves, the WebSocket and the management API
	// included, is behind the guard: the demo's credentials are public.
	guard := &dashboard.Guard{Listen: srv.Addr(), Hosts: o.allowHosts, Origins: o.allowOrigs}
	srv.Wrap(guard.Wrap)
	gen := &dashboard.Generator{DB: db, Table: "orders", Rate: o.rate, Logger: logger}
	return &demoApp{cfg: cfg, srv: srv, db: db, gen: gen, log: logger}, nil
}

// run announces viewer counts and generates changes until ctx is done; the
// server itself is started by the caller.
func (a *demoApp) run(ctx context.Context) {
	go announceViewers(ctx, a.srv.Hub(), func() int { return a.srv.Gateway().Connections() })
	if err := a.gen.Run(ctx); err != nil && ctx.Err() == nil {
		a.log.Error("demo data generator stopped", "error", err)
	}
}

// announceViewers publishes {"type":"viewers","count":N} to the page's
// group whenever the number of connected pages changes.
func announceViewers(ctx context.Context, h hub.Hub, count func() int) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	last := -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n := count()
			if n == last {
				continue
			}
			last = n
			msg := []byte(`{"type":"viewers","count":` + strconv.Itoa(n) + `}`)
			_, _ = h.Publish(ctx, "orders", hub.NewMessage(msg))
		}
	}
}
