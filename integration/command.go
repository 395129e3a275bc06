package integration

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/uuid"
)

// commandIntegration runs a handler program itself and serves it the Lambda
// Runtime API: a pool of up to Concurrency processes, each with its own
// Runtime API listener and at most one invocation at a time.
type commandIntegration struct {
	function    string
	timeout     time.Duration
	initTimeout time.Duration // from start to the first /next
	arn         string
	command     []string
	dir         string
	env         map[string]string // all but the per-process variables
	logger      *slog.Logger
	output      *outputLimiter // shared by every process's stdout and stderr

	// sem holds one token per invocation being served. A process is busy
	// only while a token is held for it, so live processes never exceed
	// cap(sem): a new one starts only when no idle one is left.
	sem    chan struct{}
	closed chan struct{}
	once   sync.Once

	starting sync.WaitGroup // process starts in progress; Add only under mu while open

	mu       sync.Mutex
	isClosed bool
	idle     []*process // warm, not serving; last in, first out
	all      map[*process]struct{}

	// gen counts recycles (a function's code changed): a process of an
	// older generation is stopped instead of going back to idle.
	gen atomic.Uint64

	stats poolStats
}

var _ Integration = (*commandIntegration)(nil)

// errClosed fails invocations that are waiting or running when Close is called.
var errClosed = errors.New("integration closed")

// initTimeout is Lambda's limit on the init phase of an on-demand function.
const initTimeout = 10 * time.Second

// accountID is the account in the invoked-function ARN handlers see; the
// same placeholder LocalStack uses.
const accountID = "000000000000"

func newCommand(cfg Config, env Env) (*commandIntegration, error) {
	dir := cfg.Dir
	if dir == "" {
		dir = "."
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("command dir: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("command dir %s is not a directory", dir)
	}
	fn := cfg.FunctionName
	if fn == "" {
		fn = filepath.Base(cfg.Command[0])
	}
	concurrency := cfg.Concurrency
	if concurrency == 0 {
		concurrency = 1
	}
	region := env.Region
	if region == "" {
		region = "us-east-1"
	}
	c := &commandIntegration{
		function: fn,
		timeout:  cfg.Timeout(DefaultCommandTimeout),
		arn:      "arn:aws:lambda:" + region + ":" + accountID + ":function:" + fn,
		command:  slices.Clone(cfg.Command),
		dir:      dir,
		logger:   env.Logger.With("function", fn),
		sem:      make(chan struct{}, concurrency),
		closed:   make(chan struct{}),
		all:      make(map[*process]struct{}),
	}
	// Lambda limits init to 10 s on its own; a longer function timeout
	// lends init its length.
	c.initTimeout = max(initTimeout, c.timeout)
	c.env = handlerEnv(cfg, env, fn, region, dir)
	c.output = newOutputLimiter(c.logger, cmp.Or(cfg.LogLinesPerSecond, DefaultLogLinesPerSecond))
	return c, nil
}

// handlerEnv is the environment of every handler process but the
// per-process AWS_LAMBDA_RUNTIME_API and AWS_LAMBDA_LOG_STREAM_NAME.
//
// The gateway's own environment is passed on (PATH, HOME and the like, which
// interpreters and `go run` need), except for variables that describe the
// gateway's identity or would confuse a runtime: AWS_*, LAMBDA_*, _LAMBDA_*,
// _HANDLER, _X_AMZN_TRACE_ID and WSGATE_*.
func handlerEnv(cfg Config, env Env, fn, region, dir string) map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "_HANDLER" || k == "_X_AMZN_TRACE_ID" {
			continue
		}
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "LAMBDA_") ||
			strings.HasPrefix(k, "_LAMBDA_") || strings.HasPrefix(k, "WSGATE_") {
			continue
		}
		m[k] = v
	}
	if m["PATH"] == "" {
		m["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	mem := cfg.MemorySizeMB
	if mem == 0 {
		mem = 128
	}
	maps.Copy(m, map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        fn,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(mem),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + fn,
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"AWS_EXECUTION_ENV":               "AWS_Lambda_wsgate",
		"_HANDLER":                        filepath.Base(cfg.Command[0]),
		"LAMBDA_TASK_ROOT":                dir,
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
	})
	if env.AccessKeyID != "" {
		m["AWS_ACCESS_KEY_ID"] = env.AccessKeyID
		m["AWS_SECRET_ACCESS_KEY"] = env.SecretAccessKey
		if env.SessionToken != "" {
			m["AWS_SESSION_TOKEN"] = env.SessionToken
		}
	}
	if env.ManagementEndpoint != "" {
		m["WSGATE_MANAGEMENT_ENDPOINT"] = env.ManagementEndpoint
		m["AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"] = env.ManagementEndpoint
	}
	maps.Copy(m, env.HandlerEnv)
	maps.Copy(m, cfg.Env) // last: the config wins (Validate keeps the Runtime API address ours)
	return m
}

// Invoke runs the event on an idle process, or on a new one when none is idle
// and fewer than Concurrency are busy; otherwise it waits for one to free up.
//
// Timing follows Lambda's phases: waiting for a process (queue and cold
// start) is bounded only by ctx's deadline, or waitLimit when ctx has none,
// and a cold start by the init limit; the function's timeout starts when the
// runtime takes the event.
func (c *commandIntegration) Invoke(ctx context.Context, inv *Invocation) ([]byte, error) {
	if len(inv.Payload) > MaxPayload {
		// Lambda answers RequestTooLargeException (413) before running anything.
		return nil, fmt.Errorf("command: payload of %d bytes exceeds %d", len(inv.Payload), MaxPayload)
	}
	start := time.Now()
	limit := deadlineOf(ctx, c.waitLimit())
	timer := time.NewTimer(time.Until(limit))
	defer timer.Stop()
	select {
	case c.sem <- struct{}{}:
	case <-timer.C:
		return nil, c.waitTimeoutError(ctx)
	case <-ctx.Done():
		return nil, ctxError(ctx)
	case <-c.closed:
		return nil, errClosed
	}
	queued := time.Since(start)
	id := inv.RequestID
	if id == "" {
		id = newRequestID()
	}
	in := newInvocation(id, inv.Payload, limit, c.timeout)
	for {
		p, cold, err := c.take()
		if err != nil {
			<-c.sem
			return nil, err
		}
		retry, err := c.handOver(ctx, p, in, timer.C)
		if retry {
			continue
		}
		if err != nil {
			<-c.sem
			return nil, err
		}
		handedOver := time.Now()
		c.stats.invocations.Add(1)
		if cold {
			c.stats.init.observe(handedOver.Sub(start) - queued)
		}
		timer.Reset(time.Until(in.begin())) // the invoke phase: the function's timeout
		if err := c.await(ctx, p, in, timer.C); err != nil {
			// The caller gave up; the process keeps its token until the
			// handler answers or its deadline passes.
			c.stats.errors.Add(1)
			go func() {
				t := time.NewTimer(time.Until(in.deadline))
				defer t.Stop()
				_ = c.await(context.Background(), p, in, t.C)
				c.settle(p)
			}()
			return nil, err
		}
		c.settle(p)
		c.stats.duration.observe(time.Since(handedOver))
		if in.err != nil {
			c.stats.errors.Add(1)
		}
		// Queue wait and the wait for a process (a cold start's init) are
		// not the function's time; they are reported here.
		c.logger.Debug("function invoked", "requestId", id, "queueWait", queued,
			"processWait", handedOver.Sub(start)-queued, "duration", time.Since(handedOver))
		return in.result, in.err
	}
}

// handOver offers in to p's /next long poll. retry is set when p turned out
// to have died after its previous invocation (a panic exits after posting
// /error): that death is not this invocation's, which moves to a fresh
// process. A process that dies or reports /init/error before its first
// /next fails the invocation that started it.
func (c *commandIntegration) handOver(ctx context.Context, p *process, in *invocation, timeUp <-chan time.Time) (retry bool, err error) {
	select {
	case p.rt.offers <- in:
		return false, nil
	case <-p.exited:
		c.discard(p)
		if p.rt.isReady() {
			return true, nil
		}
		return false, p.exitError(in.id)
	case fe := <-p.rt.initErr:
		p.kill()
		c.discard(p)
		return false, fe
	case <-timeUp:
		c.giveUpHandOver(p)
		return false, c.waitTimeoutError(ctx)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.giveUpHandOver(p)
		} else {
			c.putIdle(p) // never handed over; still good
		}
		return false, ctxError(ctx)
	case <-c.closed:
		return false, errClosed
	}
}

// giveUpHandOver settles a process that did not take an invocation in time.
// One still in its cold start keeps initializing for the next invocation
// (Lambda too gives init its own time limit, initTimeout here); a warm one
// that never came back to /next is stuck and is killed.
func (c *commandIntegration) giveUpHandOver(p *process) {
	if p.rt.isReady() {
		p.kill()
		c.discard(p)
		return
	}
	c.putIdle(p)
}

// await waits until in is answered: by the runtime, by p's exit, or by the
// deadline, which kills p. It returns an error without waiting when ctx is
// cancelled first (not on ctx's deadline, which is the invocation's
// deadline too).
func (c *commandIntegration) await(ctx context.Context, p *process, in *invocation, timeUp <-chan time.Time) error {
	select {
	case <-in.done:
	case <-p.exited:
		in.finish(nil, p.exitError(in.id))
	case <-timeUp:
		if in.finish(nil, c.timeoutError(ctx)) {
			p.kill()
		}
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctxError(ctx)
		}
		if in.finish(nil, ctxError(ctx)) {
			p.kill()
		}
	case <-c.closed:
		in.finish(nil, errClosed)
	}
	<-in.done
	return nil
}

// settle returns p to the idle pool if it is still alive and gives back the
// invocation's token.
func (c *commandIntegration) settle(p *process) {
	select {
	case <-p.exited:
		c.discard(p)
	default:
		if p.killed.Load() {
			c.discard(p)
		} else {
			c.putIdle(p)
		}
	}
	<-c.sem
}

func (c *commandIntegration) timeoutError(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	return fmt.Errorf("%w: task timed out after %.2f seconds", ErrTimeout, c.timeout.Seconds())
}

// waitLimit bounds a whole invocation when the caller sets no deadline:
// API Gateway's 29 s, or init plus the function's timeout when longer (a
// stream target's function may run for minutes).
func (c *commandIntegration) waitLimit() time.Duration {
	return max(DefaultTimeout, c.initTimeout+c.timeout)
}

// waitTimeoutError is the timeout of an invocation that no process took in
// time: all were busy, or a cold start outlasted the caller's deadline.
func (c *commandIntegration) waitTimeoutError(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	return fmt.Errorf("%w: no function process was ready within %v", ErrTimeout, c.waitLimit())
}

// take returns an idle live process, or starts one (cold).
func (c *commandIntegration) take() (p *process, cold bool, err error) {
	c.mu.Lock()
	for len(c.idle) > 0 {
		p := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		select {
		case <-p.exited:
			continue
		default:
			c.mu.Unlock()
			return p, false, nil
		}
	}
	closed := c.isClosed
	c.mu.Unlock()
	if closed {
		return nil, false, errClosed
	}
	p, err = c.start()
	return p, err == nil, err
}

func (c *commandIntegration) putIdle(p *process) {
	if p.gen != c.gen.Load() {
		p.kill() // started before the code changed
		return
	}
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		p.kill()
		return
	}
	c.idle = append(c.idle, p)
	c.mu.Unlock()
}

// recycle retires every process: idle ones are killed now, busy ones when
// their invocation settles. New invocations start fresh processes.
func (c *commandIntegration) recycle() {
	c.gen.Add(1)
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, p := range idle {
		p.kill()
	}
}

// discard forgets a dead (or dying) process.
func (c *commandIntegration) discard(p *process) {
	c.mu.Lock()
	delete(c.all, p)
	if i := slices.Index(c.idle, p); i >= 0 {
		c.idle = slices.Delete(c.idle, i, i+1)
	}
	c.mu.Unlock()
}

// Close kills every process and waits for each to exit. Invocations waiting
// or running fail with an error.
func (c *commandIntegration) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.isClosed = true
		c.mu.Unlock()
		close(c.closed)
		c.starting.Wait() // after this no process joins c.all
		c.mu.Lock()
		procs := slices.Collect(maps.Keys(c.all))
		c.idle = nil
		c.mu.Unlock()
		for _, p := range procs {
			p.kill()
		}
		c.output.close() // every process's output is flushed: kill waited for it
	})
	return nil
}

// process is one handler process and the Runtime API listener only it uses.
type process struct {
	gen     uint64 // the pool's generation when it started
	cmd     *exec.Cmd
	rt      *runtimeAPI
	srv     *http.Server
	exited  chan struct{} // closed once Wait returned and output is flushed
	exitErr error         // set before exited is closed
	killed  atomic.Bool
	tag     string // processTagVar's value in its environment and its descendants'
}

// processTagVar is the environment variable that marks a handler process and
// everything it starts, so that kill finds descendants that left its
// process group (killTagged).
const processTagVar = "WSGATE_PROCESS_TAG"

func (c *commandIntegration) start() (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime api listener: %w", err)
	}
	p := &process{exited: make(chan struct{}), gen: c.gen.Load(), tag: newTag()}
	p.rt = newRuntimeAPI(c.logger, c.arn)
	p.rt.bodyTimeout = c.initTimeout // the longest an invocation or init may take
	p.srv = &http.Server{
		Handler:           p.rt,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.logger.Handler(), slog.LevelDebug),
	}
	go func() { _ = p.srv.Serve(ln) }()

	env := make([]string, 0, len(c.env)+3)
	for k, v := range c.env {
		env = append(env, k+"="+v)
	}
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(),
		"AWS_LAMBDA_LOG_STREAM_NAME="+logStreamName(),
		processTagVar+"="+p.tag,
	)
	cmd := exec.Command(c.command[0], c.command[1:]...)
	cmd.Dir = c.dir
	cmd.Env = env
	stdout := &lineLogger{logger: c.logger, limit: c.output, stream: "stdout", p: p}
	stderr := &lineLogger{logger: c.logger, limit: c.output, stream: "stderr", p: p}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Grandchildren that keep the output pipes open must not hold up Wait.
	cmd.WaitDelay = time.Second
	setProcessGroup(cmd)
	p.cmd = cmd

	// Start outside mu (fork and exec take a while); starting lets Close
	// wait for a start in progress instead of missing its process.
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		_ = p.srv.Close()
		return nil, errClosed
	}
	c.starting.Add(1)
	c.mu.Unlock()
	defer c.starting.Done()
	if err := cmd.Start(); err != nil {
		_ = p.srv.Close()
		return nil, fmt.Errorf("starting %s: %w", c.command[0], err)
	}
	c.mu.Lock()
	closed := c.isClosed
	c.all[p] = struct{}{}
	c.mu.Unlock()
	c.stats.coldStarts.Add(1)
	c.logger.Debug("function process started", "pid", cmd.Process.Pid, "runtimeApi", ln.Addr().String())

	go func() {
		err := cmd.Wait()
		// Nothing a handler started outlives it, as nothing outlives a
		// Lambda execution environment that is shut down.
		killTagged(p.tag)
		stdout.flush()
		stderr.flush()
		p.exitErr = err
		_ = p.srv.Close()
		c.discard(p)
		level := slog.LevelWarn // it died on its own: a crash, a panic, an init failure
		if p.killed.Load() {
			level = slog.LevelDebug
		}
		c.logger.Log(context.Background(), level, "function process exited", "pid", cmd.Process.Pid, "status", exitStatus(err))
		close(p.exited)
	}()
	if closed {
		p.kill()
		return nil, errClosed
	}
	go func() { // the init watchdog
		t := time.NewTimer(c.initTimeout)
		defer t.Stop()
		select {
		case <-p.rt.ready:
		case <-p.exited:
		case <-t.C:
			c.logger.Warn("function init timed out, killing the process", "pid", cmd.Process.Pid, "initTimeout", c.initTimeout)
			p.kill()
		}
	}()
	return p, nil
}

// kill ends the process, its process group and every descendant that
// left the group (killTagged), and waits for it to be reaped.
func (p *process) kill() {
	p.killed.Store(true)
	select {
	case <-p.exited: // reaped; its pid may belong to someone else by now
	default:
		killProcessGroup(p.cmd)
		// At once, not only after Wait: a descendant holding the output
		// pipes would otherwise hold Wait up for WaitDelay.
		killTagged(p.tag)
	}
	<-p.exited
}

// exitError is the error an invocation gets when its process died under it,
// worded as Lambda words it.
func (p *process) exitError(requestID string) *FunctionError {
	msg := fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", requestID, exitStatus(p.exitErr))
	if p.exitErr == nil {
		msg = fmt.Sprintf("RequestId: %s Error: Runtime exited without providing a reason", requestID)
	}
	payload, _ := json.Marshal(map[string]string{"errorType": "Runtime.ExitError", "errorMessage": msg})
	return &FunctionError{Type: "Runtime.ExitError", Message: msg, Payload: payload}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error() // "exit status 2", "signal: killed"
}

// newRequestID returns a random UUID (version 4), the form Lambda uses.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return uuid.V4(b)
}

// newTag returns 128 random bits in hex, a process's processTagVar value.
func newTag() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newTraceID returns an X-Ray trace header, Root=1-{epoch hex}-{96 random
// bits};Parent={64 random bits};Sampled=0.
func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[24:40])
}

// logStreamName is Lambda's per-environment stream name:
// 2026/01/02/[$LATEST]{32 hex}.
func logStreamName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + hex.EncodeToString(b[:])
}
