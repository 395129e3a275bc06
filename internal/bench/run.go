package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/sigv4"
)

const (
	benchKey    = "AKIDBENCH"
	benchSecret = "bench-secret"
	benchRegion = "us-east-1"
	stage       = "dev"
)

// Options configure Run.
type Options struct {
	// Exe is the executable run again for every role: its first argument
	// is the role. Default: os.Executable().
	Exe string
	// Env is added to every child's environment.
	Env []string
	// Scenarios to run, by name; empty runs all (see Scenarios).
	Scenarios []string
	// Runs is how many times each scenario runs. Default 3.
	Runs int
	// Workers is the number of client processes. Default 4.
	Workers int
	// Small shrinks every scenario to a smoke test of about a second.
	Small bool
	// ProfileDir, when set, receives a CPU profile of the server for the
	// hot phase of each scenario's first run.
	ProfileDir string
	// Log receives progress lines. Default os.Stderr.
	Log io.Writer
	// ServerBin, when set, is a built wsgate binary run as
	// `wsgate serve --config FILE` instead of the server role. It has no
	// side port: no Go heap figures and no profiles, RSS and CPU only.
	ServerBin string
	// SoakDuration is how long the soak scenario's load runs. Default 10
	// minutes (4 s when Small).
	SoakDuration time.Duration
	// SoakConns is the soak scenario's connection count. Default 19,000
	// (300 when Small).
	SoakConns int
	// Against, when set, is another build of wsgate-bench whose server
	// role the fanout scenario runs as a fourth side, "wsgate (against)",
	// in the same rotation: a before/after comparison measured within
	// seconds, not across runs on a machine whose load moves.
	Against string
	// Syscalls, for the handshake and post scenarios, counts every
	// server's system calls per operation with perf (raw_syscalls:sys_enter),
	// which slows them: measure CPU in runs without it.
	Syscalls bool
	// ServerFIFO runs the servers (wsgate and the floor) SCHED_FIFO
	// during the post scenario's fixed-rate phases, every thread at
	// priority 1 like the lean client's: a server thread is then no
	// longer preempted by the client's real-time thread at each write, nor
	// queued behind other processes while it holds one of Go's Ps. On a
	// shared machine that is what separates the server's own stalls from
	// the machine's (BENCHMARKS.md, "the POST p99's stalls, session 10").
	ServerFIFO bool
	// StallProbe runs, during the post scenario's fixed-rate phases, two
	// threads per CPU pinned to it, one real-time and one ordinary, that
	// note when they woke late (stallprobe_linux.go): the real-time one
	// when the machine gave none of the guest's threads the CPU, the
	// ordinary one also when other processes had it. Each slow POST
	// episode is reported with the longest of each it overlaps and the
	// connections the client dialed in it: the machine's stall, the CPU's
	// contention, or the server's own. Its wake-ups (2,000/s per CPU)
	// preempt the server and the floor alike.
	StallProbe bool
	// PostClient is the post scenario's client at a fixed rate: "lean"
	// (default: one thread on one epoll set per process, postloop_linux.go)
	// or "goroutines" (a goroutine per request in flight and per
	// connection's reader, the client of session 8 and before).
	PostClient string
	// PostWorkers is the number of client processes of the post
	// scenario's fixed-rate phases. Default 1 with the lean client (one
	// thread sends and receives 5,000/s), Workers with goroutines.
	PostWorkers int
	// PostRates are the post scenario's phases in POSTs per second (0:
	// saturation). Default 0, 1000, 5000.
	PostRates []float64
	// PostWarmup is how long the lean client posts at the phase's rate
	// before its measured window, on the same schedule and connections:
	// the ramp (connections dialed and first used) is reported apart, as
	// "warm-up: …", and the phase's latencies are the steady state's.
	// Default 1 s (0.2 s with Small); negative: none.
	PostWarmup time.Duration
	// PostInvocationID has the post and c-post scenarios' POSTs carry
	// their own signed Amz-Sdk-Invocation-Id (a random UUID), as every AWS
	// SDK call does: a cluster node then takes the keyed path (its dedupe
	// table), a single node only verifies one more signed header. Default
	// off, the requests of earlier sessions' figures.
	PostInvocationID bool
	// Cluster, when 2 or more, runs the cluster scenarios (ClusterScenarios):
	// each run measures a single node and then a cluster of this many
	// server processes (embedded NATS with JetStream, routed over loopback).
	Cluster int
}

// Scenarios are the scenario names, in the order Run runs them when none
// are named. The soak scenario runs only when named, and once.
var Scenarios = []string{"idle", "handshake", "post", "route", "fanout", "slow", "aged"}

// Metric is one figure of one run.
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Result is a scenario's metrics over all runs.
type Result struct {
	Scenario string
	Names    []string // in first-seen order
	Units    map[string]string
	Values   map[string][]float64
	Errors   []string
	// Table is a time series beside the metrics (soak), or nil.
	Table *Table `json:",omitempty"`
	// Fails are the checks a scenario failed (soak: growth that did not
	// go back); Errors are runs that could not complete.
	Fails []string `json:",omitempty"`
}

// Table is a scenario's time series: one row per sample.
type Table struct {
	Columns []string
	Rows    [][]string
	Notes   []string // printed under the table
}

type orch struct {
	Options
	seq int // run counter, picks the source addresses
	// phaseWorkers, when > 0, is the number of client processes of the
	// next envs instead of Workers (the post scenario's fixed-rate phases).
	phaseWorkers int
	dir          string
	res          *Result // the scenario running, for its Table and Fails
}

// Run runs the scenarios and returns their results.
func Run(o Options) ([]*Result, error) {
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Exe = exe
	}
	if o.Runs < 1 {
		o.Runs = 3
	}
	if o.Workers < 1 {
		o.Workers = 4
	}
	switch o.PostClient {
	case "":
		o.PostClient = "lean"
	case "lean", "goroutines":
	default:
		return nil, fmt.Errorf("post client %q: want lean or goroutines", o.PostClient)
	}
	if o.PostWorkers < 1 {
		o.PostWorkers = 1
		if o.PostClient == "goroutines" {
			o.PostWorkers = o.Workers
		}
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios
		if o.Cluster > 1 {
			o.Scenarios = ClusterScenarios
		}
	}
	if o.Cluster > 1 && o.ServerBin != "" {
		return nil, errors.New("-cluster runs the in-harness server role; -wsgate is for single-node scenarios")
	}
	raiseNofile()
	dir, err := os.MkdirTemp("", "wsgate-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	or := &orch{Options: o, dir: dir}
	var out []*Result
	for _, name := range o.Scenarios {
		fn, ok := scenarioFuncs[name]
		if !ok {
			return out, fmt.Errorf("unknown scenario %q", name)
		}
		res := &Result{Scenario: name, Units: map[string]string{}, Values: map[string][]float64{}}
		or.res = res
		runs := o.Runs
		if name == "soak" {
			runs = 1
		}
		for run := range runs {
			ms, err := fn(or, run)
			if err != nil {
				res.Errors = append(res.Errors, err.Error())
				fmt.Fprintf(o.Log, "%s run %d: %v\n", name, run+1, err)
			}
			for _, m := range ms {
				if _, seen := res.Units[m.Name]; !seen {
					res.Names = append(res.Names, m.Name)
					res.Units[m.Name] = m.Unit
				}
				res.Values[m.Name] = append(res.Values[m.Name], m.Value)
				fmt.Fprintf(o.Log, "%s run %d: %s = %.4g %s\n", name, run+1, m.Name, m.Value, m.Unit)
			}
		}
		out = append(out, res)
	}
	return out, nil
}

var scenarioFuncs = map[string]func(*orch, int) ([]Metric, error){
	"idle":      (*orch).idle,
	"handshake": (*orch).handshake,
	"post":      (*orch).post,
	"route":     (*orch).route,
	"fanout":    (*orch).fanout,
	"slow":      (*orch).slow,
	"aged":      (*orch).aged,
	"soak":      (*orch).soak,

	"c-post":    (*orch).clusterPost,
	"c-fanout":  (*orch).clusterFanout,
	"c-publish": (*orch).clusterPublish,
	"c-join":    (*orch).clusterJoin,
	"c-page":    (*orch).clusterPage,
	"c-memory":  (*orch).clusterMemory,
}

// child is a running role process.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	mu  sync.Mutex
}

func (o *orch) start(role string, args ...string) (*child, error) {
	return o.startFrom(o.Exe, role, args...)
}

// startFrom starts role from executable exe.
func (o *orch) startFrom(exe, role string, args ...string) (*child, error) {
	cmd := exec.Command(exe, append([]string{role}, args...)...)
	cmd.Env = append(append(os.Environ(), o.Env...), "WSGATE_BENCH_ROLE="+role)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	return &child{cmd: cmd, in: in, out: sc}, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) read(v any) error {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return err
		}
		return errors.New("child exited")
	}
	return json.Unmarshal(c.out.Bytes(), v)
}

func (c *child) call(cmd command) (reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(cmd)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		return reply{}, err
	}
	var r reply
	if err := c.read(&r); err != nil {
		return r, err
	}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}

func (c *child) kill() {
	if c == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// env is one run's processes.
type env struct {
	o     *orch
	srv   *child
	addr  string // server (or raw server) address
	debug string // its side port
	side  string // a floor's side port (/stats: floorStats)
	lean  bool   // post at a rate: the lean client, no readers (postloop_linux.go)
	// In a cluster env, every node; srv, addr and debug are the first's.
	// A single-node env has its one server here too.
	srvs    []*child
	addrs   []string
	debugs  []string
	backend *child
	backURI string
	workers []*child
	sizes   []int // connections per worker
	slow    []int // of which never read
	// gathered is each worker's reply to the last gather (shortfall).
	gathered []reply
}

// servers are the env's server processes (one unless a cluster).
func (e *env) servers() []*child {
	if len(e.srvs) == 0 {
		return []*child{e.srv}
	}
	return e.srvs
}

func (e *env) close() {
	// The server first, so its sockets (not the clients' ports) wait out TIME_WAIT.
	for _, s := range e.servers() {
		s.kill()
	}
	e.backend.kill()
	for _, w := range e.workers {
		w.kill()
	}
}

// startBackend starts the backend role and learns its address.
func (e *env) startBackend() error {
	var err error
	if e.backend, err = e.o.start("backend"); err != nil {
		return err
	}
	var a announce
	if err := e.backend.read(&a); err != nil {
		e.close()
		return fmt.Errorf("backend: %w", err)
	}
	e.backURI = "http://" + a.Addr
	return nil
}

// newEnv starts the backend, a server (wsgate with the config extra
// changes, or the raw floor when raw) and the workers.
// rawArgs are passed to the raw role (the floor) when raw is set.
func (o *orch) newEnv(raw bool, extra func(cfg map[string]any, backend string), rawArgs ...string) (*env, error) {
	return o.newEnvFrom(o.Exe, raw, extra, rawArgs...)
}

// newEnvFrom is newEnv with the server role run from executable exe (the
// client processes are always o.Exe).
func (o *orch) newEnvFrom(exe string, raw bool, extra func(cfg map[string]any, backend string), rawArgs ...string) (*env, error) {
	o.seq++
	e := &env{o: o}
	var err error
	if !raw {
		if err := e.startBackend(); err != nil {
			return nil, err
		}
		cfg := baseConfig(e.backURI)
		if extra != nil {
			extra(cfg, e.backURI)
		}
		b, _ := json.MarshalIndent(cfg, "", "  ")
		path := filepath.Join(o.dir, fmt.Sprintf("wsgate-%d.yaml", o.seq)) // JSON is YAML
		if err := os.WriteFile(path, b, 0o600); err != nil {
			e.close()
			return nil, err
		}
		if o.ServerBin != "" {
			return e, o.startBinary(e, path)
		}
		e.srv, err = o.startFrom(exe, "server", "-config", path)
	} else {
		e.srv, err = o.startFrom(exe, "raw", rawArgs...)
	}
	if err != nil {
		e.close()
		return nil, err
	}
	a, err := e.announced()
	if err != nil {
		return nil, err
	}
	e.addr, e.debug = a.Addr, a.Debug
	e.addrs, e.debugs = []string{e.addr}, []string{e.debug}
	return e, o.startWorkers(e)
}

// announced reads the first line of e's server, or closes e.
func (e *env) announced() (announce, error) {
	var a announce
	if err := e.srv.read(&a); err != nil {
		e.close()
		return a, fmt.Errorf("server: %w", err)
	}
	return a, nil
}

// newFloorEnv starts a floor of kind (hs-go, hs-raw, post; floor.go) and
// the workers; with connect, also the backend, which the floor calls
// before each 101. The floor's side port is e.side, not e.debug: it has
// no /stats of wsgate's shape, and its profiles are not wsgate's.
func (o *orch) newFloorEnv(kind string, connect bool) (*env, error) {
	o.seq++
	e := &env{o: o}
	args := []string{"-kind", kind}
	if connect {
		if err := e.startBackend(); err != nil {
			return nil, err
		}
		args = append(args, "-connect", e.backURI+"/connect")
	}
	var err error
	if e.srv, err = o.start("floor", args...); err != nil {
		e.close()
		return nil, err
	}
	a, err := e.announced()
	if err != nil {
		return nil, err
	}
	e.addr, e.side = a.Addr, a.Debug
	e.addrs, e.debugs = []string{e.addr}, []string{""}
	return e, o.startWorkers(e)
}

// startBinary runs the wsgate binary as e's server and waits for its
// "wsgate listening on ADDR" line.
func (o *orch) startBinary(e *env, config string) error {
	cmd := exec.Command(o.ServerBin, "serve", "--config", config)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err == nil {
		var out io.ReadCloser
		if out, err = cmd.StdoutPipe(); err == nil {
			if err = cmd.Start(); err == nil {
				sc := bufio.NewScanner(out)
				e.srv = &child{cmd: cmd, in: in, out: sc}
				for sc.Scan() {
					if rest, ok := strings.CutPrefix(sc.Text(), "wsgate listening on "); ok {
						e.addr, _, _ = strings.Cut(rest, " ")
						break
					}
				}
				go func() { _, _ = io.Copy(io.Discard, out) }()
			}
		}
	}
	if err == nil && e.addr == "" {
		err = errors.New("wsgate binary did not announce its address")
	}
	if err != nil {
		e.close()
		return err
	}
	return o.startWorkers(e)
}

func (o *orch) startWorkers(e *env) error {
	n := o.Workers
	if o.phaseWorkers > 0 {
		n = o.phaseWorkers
	}
	for range n {
		w, err := o.start("worker")
		if err != nil {
			e.close()
			return err
		}
		e.workers = append(e.workers, w)
	}
	return nil
}

func baseConfig(backend string) map[string]any {
	twoWay := func(path string) map[string]any {
		return map[string]any{
			"integration":                      map[string]any{"type": "http", "uri": backend + path},
			"routeResponseSelectionExpression": "$default",
		}
	}
	return map[string]any{
		"listen":      "127.0.0.1:0",
		"log":         map[string]any{"level": "error"},
		"stage":       stage,
		"region":      benchRegion,
		"credentials": []any{map[string]any{"accessKeyId": benchKey, "secretAccessKey": benchSecret}},
		"routes": map[string]any{
			"join": map[string]any{
				"groups":                           map[string]any{"join": "$request.body.group", "allow": []string{"all", "g-*", "u-*"}},
				"routeResponseSelectionExpression": "$default",
			},
			"whoami": twoWay("/whoami"),
			"echo":   twoWay("/echo"),
		},
	}
}

// src returns worker w's source addresses for this run: 127.S.W.1-4.
func (e *env) src(w int) []string {
	var s []string
	for j := 1; j <= 4; j++ {
		s = append(s, fmt.Sprintf("127.%d.%d.%d", 1+e.o.seq%250, w+1, j))
	}
	return s
}

// each runs f for every worker at once and returns the replies.
func (e *env) each(f func(i int, w *child) (reply, error)) ([]reply, error) {
	out := make([]reply, len(e.workers))
	errs := make([]error, len(e.workers))
	var wg sync.WaitGroup
	for i, w := range e.workers {
		wg.Go(func() { out[i], errs[i] = f(i, w) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// dial opens n connections spread over the workers.
func (e *env) dial(n int, c command) (elapsed time.Duration, ok, failed int64, err error) {
	e.sizes = split(n, len(e.workers))
	e.slow = split(c.Slow, len(e.workers))
	start := time.Now()
	rs, err := e.each(func(i int, w *child) (reply, error) {
		cc := c
		cc.Op, cc.Addr, cc.Path, cc.Src, cc.N = "dial", e.addr, "/"+stage, e.src(i), e.sizes[i]
		cc.Addrs, cc.Base = e.addrs, e.base(i)
		cc.Slow = e.slow[i]
		return w.call(cc)
	})
	elapsed = time.Since(start)
	var first string
	for _, r := range rs {
		ok += r.OK
		failed += r.Errors
		if first == "" {
			first = r.FirstEr
		}
	}
	if err == nil && failed > 0 {
		err = fmt.Errorf("%d of %d connections failed (%s)", failed, n, first)
	}
	return elapsed, ok, failed, err
}

func split(n, parts int) []int {
	s := make([]int, parts)
	for i := range s {
		s[i] = n / parts
		if i < n%parts {
			s[i]++
		}
	}
	return s
}

func (e *env) stats(gc bool) (Stats, error) { return statsAt(e.debug, gc) }

// statsAt reads a server role's /stats at its side port debug.
func statsAt(debug string, gc bool) (Stats, error) {
	u := "http://" + debug + "/stats"
	if gc {
		u += "?gc=1"
	}
	resp, err := http.Get(u)
	if err != nil {
		return Stats{}, err
	}
	defer resp.Body.Close()
	var s Stats
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// profile captures a CPU profile of the server while load runs, on the
// first run only, into ProfileDir/name.pprof.
func (e *env) profile(name string, run int, seconds int, load func()) {
	if e.o.ProfileDir == "" || run != 0 || e.debug == "" {
		load()
		return
	}
	// A cluster's nodes are profiled together, each into its own file
	// (name-n1.pprof, …; `go tool pprof` merges them when given all).
	var wg sync.WaitGroup
	for k, debug := range e.debugs {
		file := name + ".pprof"
		if len(e.debugs) > 1 {
			file = fmt.Sprintf("%s-n%d.pprof", name, k+1)
		}
		wg.Go(func() {
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debug, seconds))
			if err != nil {
				fmt.Fprintf(e.o.Log, "profile %s: %v\n", file, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			_ = os.MkdirAll(e.o.ProfileDir, 0o755)
			_ = os.WriteFile(filepath.Join(e.o.ProfileDir, file), b, 0o644)
		})
	}
	time.Sleep(50 * time.Millisecond) // let the profile start
	load()
	wg.Wait()
}

// trace captures a runtime execution trace of the server while load runs
// into $WSGATE_BENCH_TRACE/name.trace (`go tool trace` reads it).
func (e *env) trace(name string, seconds int, load func()) {
	dir := os.Getenv("WSGATE_BENCH_TRACE")
	if dir == "" || e.debug == "" {
		load()
		return
	}
	_ = os.MkdirAll(dir, 0o755)
	var wg sync.WaitGroup
	wg.Go(func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/trace?seconds=%d", e.debug, seconds))
		if err != nil {
			fmt.Fprintf(e.o.Log, "trace %s: %v\n", name, err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		_ = os.WriteFile(filepath.Join(dir, name+".trace"), b, 0o644)
	})
	// A CPU profile meanwhile puts its samples into the trace: a goroutine
	// shown running without samples was off the CPU.
	wg.Go(func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.debug, seconds))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = os.WriteFile(filepath.Join(dir, name+".pprof"), b, 0o644)
		}
	})
	time.Sleep(50 * time.Millisecond) // let the trace start
	load()
	wg.Wait()
}

// traceBurst starts 1 s runtime execution traces of every server into
// $WSGATE_BENCH_TRACE (name.trace, or name-nK.trace for a cluster's node
// K) on the first run, and waits 100 ms for them to start; the func it
// returns waits for them to be written. The tracer slows the servers: the
// figures of a traced run are not comparable.
func (e *env) traceBurst(name string, run int) (wait func()) {
	dir := os.Getenv("WSGATE_BENCH_TRACE")
	if dir == "" || run != 0 {
		return func() {}
	}
	_ = os.MkdirAll(dir, 0o755)
	var wg sync.WaitGroup
	for k, debug := range e.debugs {
		if debug == "" {
			continue
		}
		file := name + ".trace"
		if len(e.debugs) > 1 {
			file = fmt.Sprintf("%s-n%d.trace", name, k+1)
		}
		wg.Go(func() {
			resp, err := http.Get("http://" + debug + "/debug/pprof/trace?seconds=1")
			if err != nil {
				fmt.Fprintf(e.o.Log, "trace %s: %v\n", file, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			_ = os.WriteFile(filepath.Join(dir, file), b, 0o644)
		})
	}
	time.Sleep(100 * time.Millisecond)
	return wg.Wait
}

// signedPost sends a SigV4-signed POST to the server and returns the body.
func signedPost(client *http.Client, url string, body []byte) ([]byte, error) {
	return signedDo(client, http.MethodPost, url, body)
}

// signedDo sends a SigV4-signed request and returns the body of a 200.
func signedDo(client *http.Client, method, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if err := sigv4.Sign(req, sigv4.Credentials{AccessKeyID: benchKey, SecretAccessKey: benchSecret}, "execute-api", benchRegion, time.Now(), sha256Hex(body)); err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, err
}

func stampedBody(t int64, pad int) []byte {
	b := strconv.AppendInt([]byte(`{"t":`), t, 10)
	b = append(b, `,"pad":"`...)
	b = append(b, bytes.Repeat([]byte{'x'}, pad)...)
	return append(b, `"}`...)
}
