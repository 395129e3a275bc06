// Command wsgate is an AWS API Gateway WebSocket API you run yourself.
//
//	wsgate serve --config wsgate.yaml [--listen ADDR] [--check] [--watch]
//	wsgate serve --template template.yaml [--parameter-overrides K=V] [--stage NAME] [--dynamodb-endpoint URL] [--watch]
//	wsgate import template.yaml [flags]
//	wsgate demo [--listen 127.0.0.1:8080] [--db wsgate-demo.db] [--rate 5] [--allow-host NAME] [--allow-origin ORIGIN]
//	wsgate conn post|get|delete|list ...
//	wsgate group publish|join|leave|members ...
//	wsgate ca [install]
//	wsgate version
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `wsgate: an AWS API Gateway WebSocket API you run yourself

Usage:
  wsgate serve --config FILE [--listen ADDR] [--check] [--watch]
                                                         run the gateway
  wsgate serve --template FILE [--parameter-overrides K=V ...] [--stage NAME]
               [--dynamodb-endpoint URL] [--watch]       run a SAM/CloudFormation/CDK template
  wsgate import FILE [flags]                             print a template's wsgate config
  wsgate demo [--listen ADDR] [--db FILE] [--rate N] [--allow-host NAME] [--allow-origin ORIGIN]
                                                         the live dashboard demo
  wsgate conn post|get|delete|list [flags]               the @connections API
  wsgate group publish|join|leave|members [flags]        groups and broadcast
  wsgate ca [install] [--config FILE] [--state-dir DIR]  the local CA: where it is, how to trust it
  wsgate version                                         print the version

Run 'wsgate COMMAND -h' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "import":
		return importCommand(args[1:], stdout, stderr)
	case "demo":
		return demo(args[1:], stdout, stderr)
	case "conn":
		return connCommand(args[1:], stdout, stderr)
	case "group":
		return groupCommand(args[1:], stdout, stderr)
	case "ca":
		return caCommand(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "wsgate", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "wsgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parseFlags parses args with fs, whose Usage must write to fs.Output().
// -h or --help prints the usage to stdout and gives exit status 0, as
// asking for help is no failure; any other flag error prints the error and
// the usage to stderr and gives failStatus. done is false when the command
// goes on; fs then writes to stderr (a later fs.Usage() reports a misuse).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, failStatus int) (status int, done bool) {
	var out strings.Builder
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, out.String())
		return 0, true
	case err != nil:
		fmt.Fprint(stderr, out.String()) // the error, then the usage
		return failStatus, true
	}
	return 0, false
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// serveUsage heads serve's flag list.
const serveUsage = `Usage:
  wsgate serve --config FILE [--listen ADDR] [--check] [--watch]
  wsgate serve --template FILE [--parameter-overrides K=V ...] [--stage NAME] [--dynamodb-endpoint URL] [--watch]

Flags:
`

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "wsgate.yaml", "config file (YAML or JSON)")
	listen := fs.String("listen", "", "listen address, overriding the config's listen")
	check := fs.Bool("check", false, "check the config as serve would (build every integration and stream, open their files and databases) without listening, and exit")
	watch := fs.Bool("watch", false, "reload the config (or template) when it changes, and restart a function's processes when files under its codeUri change")
	tf := addTemplateFlags(fs, true)
	if status, done := parseFlags(fs, args, stdout, stderr, 2); done {
		return status
	}
	if tf.path != "" {
		*configPath = tf.path
	}
	// From here a SIGHUP asks for a reload (once serving) instead of
	// ending the process, even one that arrives while the config is read.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// load reads the config (or translates the template) with the flags
	// applied: at start, and again at each reload.
	load := func() (*server.Config, error) {
		var (
			cfg *server.Config
			err error
		)
		if tf.path != "" {
			cfg, err = tf.load()
		} else {
			cfg, err = server.LoadConfig(*configPath)
		}
		if err == nil && *listen != "" {
			cfg.Listen = *listen
			err = cfg.Validate()
		}
		return cfg, err
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %s: %v\n", *configPath, err)
		return 1
	}
	logger := cfg.NewLogger(stderr)
	if tf.path != "" {
		tf.summary(stdout)
	}
	if *check {
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(stderr, "wsgate: %s: warning: %s\n", *configPath, w)
		}
		// The same build as serve's, but for binding the listener.
		if err := server.Check(*cfg, logger); err != nil {
			fmt.Fprintf(stderr, "wsgate: %s: %v\n", *configPath, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: configuration is valid (%d routes, %d streams, %d functions)\n", *configPath, len(cfg.Routes), len(cfg.Streams), len(cfg.Functions))
		return 0
	}
	if tf.path != "" {
		if err := tf.createTables(context.Background(), stdout); err != nil {
			fmt.Fprintf(stderr, "wsgate: %v\n", err)
			return 1
		}
	}
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	srv, err := server.New(*cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %s: %v\n", *configPath, err)
		return 1
	}
	reload := func() {
		cfg, err := load()
		if err != nil {
			logger.Error("config reload refused, the running config stays", "file", *configPath, "error", err)
			return
		}
		if tf.path != "" {
			if err := tf.createTables(context.Background(), stdout); err != nil {
				logger.Error("creating the template's tables", "error", err)
			}
		}
		_, _ = srv.Reload(*cfg) // logs what changed, or why it refused
	}
	reloads := make(chan struct{}, 1) // SIGHUP and --watch ask; one reload at a time
	watched := tf.watched(*configPath)
	extra := func(ctx context.Context) {
		if *watch {
			go srv.WatchFunctions(ctx, watchInterval)
			go watchFiles(ctx, watchInterval, reloads, watched)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-reloads:
				reload()
			}
		}
	}
	served := make(chan struct{})
	defer close(served)
	go func() {
		for {
			select {
			case <-served:
				return
			case <-hup:
			}
			logger.Info("SIGHUP: reopening the access log, reloading the config")
			if err := srv.ReopenLogs(); err != nil {
				logger.Error("access log not reopened, still writing to the old file", "error", err)
			}
			select {
			case reloads <- struct{}{}:
			default: // one is pending already
			}
		}
	}()
	return runUntilSignal(srv, stdout, logger, extra)
}

// watchInterval is how often serve --watch looks at the config and the
// functions' files.
const watchInterval = 500 * time.Millisecond

// watchFiles asks for a reload (on reloads, without blocking) whenever
// the content of the file changes, until ctx is done.
func watchFiles(ctx context.Context, interval time.Duration, reloads chan<- struct{}, file string) {
	sum := func() [sha256.Size]byte {
		b, _ := os.ReadFile(file) // a file being rewritten reads again next time
		return sha256.Sum256(b)
	}
	last := sum()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := sum(); now != last {
			last = now
			select {
			case reloads <- struct{}{}:
			default: // one is pending already
			}
		}
	}
}

// runUntilSignal serves until SIGINT or SIGTERM, then shuts down within the
// configured shutdownTimeoutSeconds (as last reloaded); the exit status is
// 0 for a clean shutdown.
func runUntilSignal(srv *server.Server, stdout io.Writer, logger *slog.Logger, extra func(ctx context.Context)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv.Start()
	fmt.Fprintf(stdout, "wsgate listening on %s (WebSocket %s, management %s)\n",
		srv.Addr(), strings.Join(srv.WebSocketURLs(), " "), srv.ManagementEndpoint())
	if ca := srv.CACertPath(); ca != "" {
		fmt.Fprintf(stdout, "TLS certificates from the local CA %s ('wsgate ca' says how to trust it)\n", ca)
	}
	if extra != nil {
		go extra(ctx)
	}
	<-ctx.Done()
	stop()
	logger.Info("shutting down")
	cfg := srv.Config()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("shutdown", "error", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}
