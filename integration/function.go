package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/integration/bootstrap"
)

// FunctionConfig is one function under the config's functions: block, run
// by wsgate on this machine as Lambda would run it. See docs/functions.md.
type FunctionConfig struct {
	// Runtime is the Lambda runtime identifier: nodejs18.x to nodejs24.x,
	// python3.9 to python3.13, provided.al2 or provided.al2023. Required.
	Runtime string `json:"runtime"`
	// Handler is Lambda's handler string for the runtime ("app.handler",
	// "src/app.handler", "app.lambda_handler"). Required but for provided
	// runtimes, where it is only passed on as _HANDLER.
	Handler string `json:"handler,omitempty"`
	// CodeURI is the function's code directory (the task root), relative to
	// the config file. Required.
	CodeURI string `json:"codeUri"`
	// TimeoutMillis is the function's timeout: the invoke phase only, as in
	// Lambda. Default 3000; range 1000 to 900000.
	TimeoutMillis int `json:"timeoutMillis,omitempty"`
	// MemorySizeMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE (not enforced).
	// Default 128; range 128 to 10240.
	MemorySizeMB int `json:"memorySizeMB,omitempty"`
	// Concurrency is the most processes the function runs at once, each
	// serving one event at a time. Default 1; range 1 to 64.
	Concurrency int `json:"concurrency,omitempty"`
	// Env is the function's environment variables, over Globals.Env.
	Env map[string]string `json:"env,omitempty"`
	// Interpreter is the node or python3 program for this function.
	// Default: Globals.Node or Globals.Python.
	Interpreter string `json:"interpreter,omitempty"`
}

// Globals are settings every function shares (the config's globals:).
type Globals struct {
	// Env is given to every function, under the function's own env.
	Env map[string]string `json:"env,omitempty"`
	// Node is the program Node.js functions run with. Default "node" on PATH.
	Node string `json:"node,omitempty"`
	// Python is the program Python functions run with. Default "python3"
	// on PATH.
	Python string `json:"python,omitempty"`
	// CacheDir is where the embedded runtime clients are written. Default:
	// the user's cache directory, $XDG_CACHE_HOME/wsgate or ~/.cache/wsgate.
	CacheDir string `json:"cacheDir,omitempty"`
}

// Function defaults.
const (
	DefaultFunctionConcurrency = 1
	DefaultFunctionMemoryMB    = 128
)

var functionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// reservedEnv are the variables Lambda sets itself and refuses in a
// function's configuration.
var reservedEnv = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_LAMBDA_SERVER_PORT",
}

func checkEnv(env map[string]string) error {
	var bad []string
	for k := range env {
		if slices.Contains(reservedEnv, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	// Lambda's own refusal: InvalidParameterValueException.
	return fmt.Errorf("env sets reserved keys that Lambda sets itself: %s", strings.Join(bad, ", "))
}

// Validate checks a function definition without starting anything.
func (f *FunctionConfig) Validate() error {
	rt, ok := bootstrap.Lookup(f.Runtime)
	if !ok {
		return fmt.Errorf("runtime %q: want one of %s", f.Runtime, strings.Join(bootstrap.Names(), ", "))
	}
	if rt.Family != bootstrap.Provided {
		i := strings.LastIndexByte(f.Handler, '.')
		if f.Handler == "" || i <= strings.LastIndexByte(f.Handler, '/')+1 || i == len(f.Handler)-1 {
			return fmt.Errorf("handler %q: want module.function, e.g. app.handler or src/app.handler", f.Handler)
		}
	}
	if f.CodeURI == "" {
		return errors.New("codeUri is required (the function's code directory)")
	}
	if f.TimeoutMillis != 0 && (f.TimeoutMillis < 1000 || f.TimeoutMillis > 900000) {
		return fmt.Errorf("timeoutMillis %d out of range 1000..900000", f.TimeoutMillis)
	}
	if f.MemorySizeMB != 0 && (f.MemorySizeMB < 128 || f.MemorySizeMB > 10240) {
		return fmt.Errorf("memorySizeMB %d out of range 128..10240", f.MemorySizeMB)
	}
	if f.Concurrency < 0 || f.Concurrency > 64 {
		return fmt.Errorf("concurrency %d out of range 1..64", f.Concurrency)
	}
	return checkEnv(f.Env)
}

// ValidateFunctions checks the functions: and globals: blocks.
func ValidateFunctions(fns map[string]FunctionConfig, g Globals) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		if !functionNameRE.MatchString(name) {
			errs = append(errs, fmt.Errorf("functions: name %q: use 1 to 64 letters, digits, '-' or '_'", name))
			continue
		}
		f := fns[name]
		if err := f.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("functions.%s: %w", name, err))
		}
	}
	if err := checkEnv(g.Env); err != nil {
		errs = append(errs, fmt.Errorf("globals: %w", err))
	}
	return errors.Join(errs...)
}

// Functions are the locally run functions, each a pool of processes shared
// by every integration that names it (routes, the authorizer, stream
// targets), so a function's concurrency is its own whoever calls it.
type Functions struct {
	fns map[string]*localFunction
}

type localFunction struct {
	name string
	root string
	def  functionDef // what it was built from, to tell a changed definition
	pool *commandIntegration

	fp    atomic.Uint64 // the code's fingerprint at the last watch poll
	fpSet atomic.Bool
}

// functionDef is everything a function's processes are started with.
type functionDef struct {
	fc         FunctionConfig
	globals    Globals
	region     string
	key        [3]string // access key id, secret, session token
	endpoint   string
	handlerEnv map[string]string
}

func defOf(fc FunctionConfig, g Globals, env Env) functionDef {
	return functionDef{fc, g, env.Region, [3]string{env.AccessKeyID, env.SecretAccessKey, env.SessionToken}, env.ManagementEndpoint, env.HandlerEnv}
}

// NewFunctions checks each function's interpreter (failing when it is
// missing, warning when its version is not the runtime's), writes the
// runtime clients to the cache directory and builds a process pool per
// function. No process starts until the first invocation.
func NewFunctions(fns map[string]FunctionConfig, g Globals, env Env) (*Functions, error) {
	if err := ValidateFunctions(fns, g); err != nil {
		return nil, err
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Functions{fns: make(map[string]*localFunction, len(fns))}
	if len(fns) == 0 {
		return f, nil
	}
	cache := g.CacheDir
	if cache == "" {
		cache = bootstrap.DefaultCacheDir()
	}
	runtimeDir, err := bootstrap.Install(cache)
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		lf, err := newLocalFunction(name, fns[name], g, env, runtimeDir)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("functions.%s: %w", name, err)
		}
		f.fns[name] = lf
	}
	return f, nil
}

// FunctionChanges are the functions a reload (Next) started, restarted
// and stopped, by name.
type FunctionChanges struct {
	Added, Restarted, Removed []string
}

// Next builds the functions of a new config on top of f: a function whose
// definition (its config, globals, and the environment it gets from the
// gateway, credentials included) did not change is the same one, shared
// with f, and its processes go on; a changed or new one gets a new pool.
// f is not changed: once nothing calls f's functions any more, the caller
// closes those next does not share with CloseRetired. On error nothing
// new is left running.
func (f *Functions) Next(fns map[string]FunctionConfig, g Globals, env Env) (*Functions, FunctionChanges, error) {
	var ch FunctionChanges
	if err := ValidateFunctions(fns, g); err != nil {
		return nil, ch, err
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	next := &Functions{fns: make(map[string]*localFunction, len(fns))}
	fail := func(err error) (*Functions, FunctionChanges, error) {
		next.CloseRetired(f)
		return nil, FunctionChanges{}, err
	}
	var runtimeDir string
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		def := defOf(fns[name], g, env)
		if old := f.lookup(name); old != nil && reflect.DeepEqual(old.def, def) {
			next.fns[name] = old
			continue
		}
		if runtimeDir == "" {
			cache := cmp.Or(g.CacheDir, bootstrap.DefaultCacheDir())
			var err error
			if runtimeDir, err = bootstrap.Install(cache); err != nil {
				return fail(err)
			}
		}
		lf, err := newLocalFunction(name, fns[name], g, env, runtimeDir)
		if err != nil {
			return fail(fmt.Errorf("functions.%s: %w", name, err))
		}
		next.fns[name] = lf
		if f.lookup(name) != nil {
			ch.Restarted = append(ch.Restarted, name)
		} else {
			ch.Added = append(ch.Added, name)
		}
	}
	for _, name := range f.Names() {
		if _, ok := fns[name]; !ok {
			ch.Removed = append(ch.Removed, name)
		}
	}
	return next, ch, nil
}

// CloseRetired closes the functions of f that next does not share (see
// Next), killing their processes.
func (f *Functions) CloseRetired(next *Functions) {
	if f == nil {
		return
	}
	var wg sync.WaitGroup
	for name, lf := range f.fns {
		if next.lookup(name) != lf {
			wg.Go(func() { _ = lf.pool.Close() })
		}
	}
	wg.Wait()
}

// SameFunction reports whether a and b run name with the same processes:
// both define it and share it (Next kept it), or neither defines it.
func SameFunction(a, b *Functions, name string) bool {
	return a.lookup(name) == b.lookup(name)
}

func newLocalFunction(name string, fc FunctionConfig, g Globals, env Env, runtimeDir string) (*localFunction, error) {
	rt, _ := bootstrap.Lookup(fc.Runtime)
	root, err := filepath.Abs(fc.CodeURI)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("codeUri %s is not a directory", root)
	}
	logger := env.Logger.With("function", name)
	// A configured program runs as given (it may be a wrapper); the default
	// on PATH is resolved to the executable it reports.
	interp := fc.Interpreter
	if interp == "" {
		interp = map[bootstrap.Family]string{bootstrap.Node: g.Node, bootstrap.Python: g.Python}[rt.Family]
	}
	resolve := interp == ""
	if resolve {
		interp = rt.DefaultInterpreter()
	}
	var ip bootstrap.Interpreter
	if rt.Family != bootstrap.Provided {
		var warning string
		ip, warning, err = rt.FindInterpreter(interp, resolve)
		if err != nil {
			return nil, fmt.Errorf("runtime %s: %w", rt.Name, err)
		}
		if warning != "" {
			logger.Warn(warning)
		}
	}
	argv, rtEnv, err := bootstrap.Spec{Runtime: rt, Handler: fc.Handler, TaskRoot: root, Interpreter: ip.Path}.Command(runtimeDir)
	if err != nil {
		return nil, err
	}
	// The runtime's variables, then globals, then the function's own (the
	// reserved ones are refused by Validate).
	procEnv := rtEnv
	maps.Copy(procEnv, g.Env)
	maps.Copy(procEnv, fc.Env)
	pool, err := newCommand(Config{
		Type:          "command",
		TimeoutMillis: fc.TimeoutMillis,
		Command:       argv,
		Dir:           root,
		Concurrency:   cmpOr(fc.Concurrency, DefaultFunctionConcurrency),
		Env:           procEnv,
		FunctionName:  name,
		MemorySizeMB:  cmpOr(fc.MemorySizeMB, DefaultFunctionMemoryMB),
	}, env)
	if err != nil {
		return nil, err
	}
	if _, ok := rtEnv["AWS_EXECUTION_ENV"]; !ok {
		delete(pool.env, "AWS_EXECUTION_ENV") // Lambda sets none for OS-only runtimes
	}
	logger.Debug("function defined", "runtime", rt.Name, "handler", fc.Handler, "codeUri", root,
		"interpreter", ip.Path, "version", ip.Version)
	return &localFunction{name: name, root: root, def: defOf(fc, g, env), pool: pool}, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Names lists the defined functions, sorted.
func (f *Functions) Names() []string {
	if f == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(f.fns))
}

func (f *Functions) lookup(name string) *localFunction {
	if f == nil {
		return nil
	}
	return f.fns[name]
}

// Close kills every function's processes and waits for them to exit. It is
// idempotent.
func (f *Functions) Close() error {
	if f == nil {
		return nil
	}
	var wg sync.WaitGroup
	for _, lf := range f.fns {
		wg.Go(func() { _ = lf.pool.Close() })
	}
	wg.Wait()
	return nil
}

// localLambda is a lambda integration whose function is defined locally:
// Invoke runs it in the function's shared pool, bounded by the
// integration's own timeout (API Gateway's, default 29 s) over the
// function's (its timeoutMillis, the invoke phase only).
type localLambda struct {
	fn      *localFunction
	timeout time.Duration
}

var _ Integration = (*localLambda)(nil)

func newLocalLambda(cfg Config, fn *localFunction) (*localLambda, error) {
	if cfg.Endpoint != "" || cfg.Profile != "" || cfg.Region != "" || cfg.Qualifier != "" {
		return nil, fmt.Errorf("lambda integration: function %s is defined under functions: and runs locally; endpoint, profile, region and qualifier do not apply (rename the function to call AWS Lambda)", fn.name)
	}
	return &localLambda{fn: fn, timeout: cfg.Timeout(DefaultTimeout)}, nil
}

func (l *localLambda) Invoke(ctx context.Context, inv *Invocation) ([]byte, error) {
	ctx, cancel := context.WithDeadline(ctx, deadlineOf(ctx, l.timeout))
	defer cancel()
	return l.fn.pool.Invoke(ctx, inv)
}

// Close does nothing: the function's pool is shared, and Functions.Close
// ends it.
func (l *localLambda) Close() error { return nil }

// Watch restarts a function's processes when a file under its code
// directory changes, checking modification times every interval until ctx
// is done. Idle processes are stopped at once, busy ones after their
// current event; the next event starts a fresh process with the new code.
// node_modules, .git and __pycache__ are skipped, and at most
// maxWatchedFiles files per function are looked at.
func (f *Functions) Watch(ctx context.Context, interval time.Duration) {
	if f == nil || len(f.fns) == 0 {
		return
	}
	f.RecycleChanged()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.RecycleChanged()
	}
}

// RecycleChanged restarts the processes of each function whose code
// changed since the last call (one poll of Watch). The first call for a
// function only notes its code's state. Call it from one goroutine.
func (f *Functions) RecycleChanged() {
	if f == nil {
		return
	}
	for _, lf := range f.fns {
		fp := lf.fingerprint()
		if !lf.fpSet.Swap(true) {
			lf.fp.Store(fp)
			continue
		}
		if lf.fp.Swap(fp) == fp {
			continue
		}
		lf.pool.logger.Info("function code changed, restarting its processes", "codeUri", lf.root)
		lf.pool.recycle()
	}
}

// maxWatchedFiles bounds the files one function's watch looks at per poll.
const maxWatchedFiles = 10000

// fingerprint hashes the names, sizes and modification times of the files
// under the function's code directory.
func (lf *localFunction) fingerprint() uint64 {
	h := fnv.New64a()
	n := 0
	_ = filepath.WalkDir(lf.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking; the next poll sees the change
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "__pycache__":
				return filepath.SkipDir
			}
			return nil
		}
		if n++; n > maxWatchedFiles {
			return filepath.SkipAll
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return h.Sum64()
}
