// Package bootstrap knows how a function of each Lambda runtime is started
// on this machine, without containers: the runtimes wsgate supports, the
// interpreter each needs, Lambda's environment for it, and wsgate's own
// runtime interface clients for Node.js and Python.
//
// The clients (node/wsgate-runtime.cjs, python/wsgate_runtime.py) use only
// their language's standard library. They are embedded in the binary and
// written once to a cache directory (Install), from where the interpreter
// runs them; they then talk to the Lambda Runtime API wsgate serves each
// process (package integration's command runner). A provided.al2 or
// provided.al2023 function brings its own client: the bootstrap executable
// in its code directory, as on Lambda.
package bootstrap

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed node/wsgate-runtime.cjs python/wsgate_runtime.py
var clients embed.FS

// Family is a runtime's language.
type Family string

// The runtime families.
const (
	Node     Family = "nodejs"
	Python   Family = "python"
	Provided Family = "provided"
)

// Runtime is one Lambda runtime identifier and what it needs.
type Runtime struct {
	Name    string // the Lambda identifier, e.g. nodejs20.x
	Family  Family
	Version string // the interpreter version it expects: "20", "3.12"; empty for provided
}

// runtimes are the identifiers wsgate runs: the Node.js and Python versions
// Lambda supports or recently did, and the OS-only runtimes.
var runtimes = map[string]Runtime{
	"nodejs18.x":      {"nodejs18.x", Node, "18"},
	"nodejs20.x":      {"nodejs20.x", Node, "20"},
	"nodejs22.x":      {"nodejs22.x", Node, "22"},
	"nodejs24.x":      {"nodejs24.x", Node, "24"},
	"python3.9":       {"python3.9", Python, "3.9"},
	"python3.10":      {"python3.10", Python, "3.10"},
	"python3.11":      {"python3.11", Python, "3.11"},
	"python3.12":      {"python3.12", Python, "3.12"},
	"python3.13":      {"python3.13", Python, "3.13"},
	"provided.al2":    {"provided.al2", Provided, ""},
	"provided.al2023": {"provided.al2023", Provided, ""},
}

// Lookup returns the runtime named by a Lambda runtime identifier.
func Lookup(name string) (Runtime, bool) {
	rt, ok := runtimes[name]
	return rt, ok
}

// Names lists the supported runtime identifiers, sorted.
func Names() []string {
	names := make([]string, 0, len(runtimes))
	for n := range runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DefaultInterpreter is the program a family runs with when none is
// configured: found on PATH.
func (rt Runtime) DefaultInterpreter() string {
	switch rt.Family {
	case Node:
		return "node"
	case Python:
		return "python3"
	}
	return ""
}

// Spec is one function as the runtime sees it.
type Spec struct {
	Runtime Runtime
	// Handler is Lambda's handler string: "app.handler", "src/app.handler"
	// (Node.js), "app.lambda_handler", "pkg/mod.handler" (Python); for
	// provided runtimes it is only passed on as _HANDLER.
	Handler string
	// TaskRoot is the function's code directory (codeUri), absolute.
	TaskRoot string
	// Interpreter is the node or python3 program; unused for provided.
	Interpreter string
}

// Command is the program and arguments that run the function, and the
// runtime's part of Lambda's environment (the caller adds the rest: name,
// memory, region, credentials, the Runtime API address). runtimeDir is
// where Install wrote the clients.
func (s Spec) Command(runtimeDir string) (argv []string, env map[string]string, err error) {
	env = map[string]string{
		"_HANDLER":           s.Handler,
		"LAMBDA_TASK_ROOT":   s.TaskRoot,
		"LAMBDA_RUNTIME_DIR": runtimeDir,
		"AWS_EXECUTION_ENV":  "AWS_Lambda_" + s.Runtime.Name,
	}
	switch s.Runtime.Family {
	case Node:
		// Lambda's NODE_PATH, with wsgate's runtime directory for /var/runtime.
		major := s.Runtime.Version
		env["NODE_PATH"] = strings.Join([]string{
			"/opt/nodejs/node" + major + "/node_modules", "/opt/nodejs/node_modules",
			filepath.Join(runtimeDir, "node_modules"), runtimeDir, s.TaskRoot}, string(os.PathListSeparator))
		return []string{s.Interpreter, filepath.Join(runtimeDir, "node", "wsgate-runtime.cjs")}, env, nil
	case Python:
		env["PYTHONPATH"] = filepath.Join(runtimeDir, "python")
		return []string{s.Interpreter, "-u", filepath.Join(runtimeDir, "python", "wsgate_runtime.py")}, env, nil
	default:
		delete(env, "AWS_EXECUTION_ENV") // Lambda sets none for OS-only runtimes
		boot := filepath.Join(s.TaskRoot, "bootstrap")
		fi, err := os.Stat(boot)
		if err != nil {
			return nil, nil, fmt.Errorf("runtime %s needs an executable named bootstrap in %s: %w", s.Runtime.Name, s.TaskRoot, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return nil, nil, fmt.Errorf("runtime %s: %s is not executable (chmod +x it)", s.Runtime.Name, boot)
		}
		return []string{boot}, env, nil
	}
}

// Install writes the embedded clients under cacheDir, in a directory named
// for their content (so wsgates of different versions never share one), and
// returns that directory. Files are written to a temporary name and renamed,
// so concurrent wsgates never see a partial file.
func Install(cacheDir string) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(clients, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := clients.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, "runtime-"+hex.EncodeToString(h.Sum(nil))[:16])
	err = fs.WalkDir(clients, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := clients.ReadFile(p)
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(dst); err == nil && string(old) == string(b) {
			return nil
		}
		tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(b)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Chmod(tmp.Name(), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), dst)
	})
	if err != nil {
		return "", fmt.Errorf("installing the runtime clients in %s: %w", dir, err)
	}
	return dir, nil
}

// DefaultCacheDir is where Install writes when nothing else is configured:
// the user's cache directory ($XDG_CACHE_HOME or ~/.cache on Linux), or the
// temporary directory when there is none.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "wsgate")
	}
	return filepath.Join(os.TempDir(), "wsgate-cache")
}

// Interpreter is a node or python3 program and what it said about itself.
type Interpreter struct {
	// Path is the program functions run with: the configured one, or, for
	// the default found on PATH, the executable it reported, so a version
	// manager's shim (pyenv, asdf, volta) is not paid on every cold start.
	Path string
	// Version is its version, e.g. "20.11.1" or "3.12.4".
	Version string
}

// interpreters remembers each program's answer (successes only).
var interpreters sync.Map // program + "\x00" + resolve -> Interpreter

// FindInterpreter runs program once to learn its version and executable
// (later calls are answered from memory). resolve asks for the executable
// the program reports (sys.executable, process.execPath) instead of
// program itself; use it for the default found on PATH, not for a program
// the user configured, which may be a wrapper that must run. It fails when
// the program cannot be found or run; warning is set when the version is
// not the runtime's (major for Node.js, major.minor for Python): the
// function runs anyway.
func (rt Runtime) FindInterpreter(program string, resolve bool) (in Interpreter, warning string, err error) {
	key := program + "\x00" + strconv.FormatBool(resolve)
	if v, ok := interpreters.Load(key); ok {
		in = v.(Interpreter)
		return in, rt.versionWarning(program, in.Version), nil
	}
	in, err = askInterpreter(rt.Family, program)
	if err != nil {
		return Interpreter{}, "", err
	}
	if !resolve {
		in.Path = program
	}
	interpreters.Store(key, in)
	return in, rt.versionWarning(program, in.Version), nil
}

func (rt Runtime) versionWarning(interpreter, version string) string {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return ""
	}
	got := m[1]
	if rt.Family == Python {
		got = m[1] + "." + m[2]
	}
	if got == rt.Version {
		return ""
	}
	return fmt.Sprintf("runtime %s expects version %s, but %s is %s: the function runs with it anyway", rt.Name, rt.Version, interpreter, version)
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)`)

// askTimeout bounds the version question; generous, because a shim on a
// loaded machine can take seconds.
const askTimeout = time.Minute

func askInterpreter(f Family, program string) (Interpreter, error) {
	path, err := exec.LookPath(program)
	if err != nil {
		what := map[Family]string{Node: "Node.js", Python: "Python 3"}[f]
		return Interpreter{}, fmt.Errorf("%s is needed and %q was not found: install %s or set its path (the function's interpreter, or globals.%s)",
			what, program, what, map[Family]string{Node: "node", Python: "python"}[f])
	}
	ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
	defer cancel()
	var cmd *exec.Cmd
	if f == Node {
		cmd = exec.CommandContext(ctx, path, "-e", "console.log(process.version.slice(1) + '\\n' + process.execPath)")
	} else {
		cmd = exec.CommandContext(ctx, path, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)")
	}
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return Interpreter{}, fmt.Errorf("running %s to learn its version: %w", path, err)
	}
	version, exe, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	exe = strings.TrimSpace(exe)
	if exe == "" {
		exe = path
	}
	return Interpreter{Path: exe, Version: strings.TrimSpace(version)}, nil
}
