package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// invocation is one event on its way through a runtime: offered to a /next
// long poll, then answered by /response or /error, a crash or the deadline.
// Exactly one of these answers wins (finish).
//
// The deadline is set when a runtime takes the event (begin), not when the
// event arrives: as in Lambda, the function's timeout runs from the start of
// the invoke phase, so neither queueing nor a cold start's init is charged
// to it. limit (the caller's own deadline) still caps it.
type invocation struct {
	id      string
	payload []byte
	limit   time.Time     // the caller's deadline
	timeout time.Duration // the function's timeout
	traceID string

	beginOnce sync.Once
	deadline  time.Time // set once by begin

	done   chan struct{} // closed by the winning finish
	once   sync.Once
	result []byte
	err    error
}

func newInvocation(id string, payload []byte, limit time.Time, timeout time.Duration) *invocation {
	return &invocation{id: id, payload: payload, limit: limit, timeout: timeout, traceID: newTraceID(), done: make(chan struct{})}
}

// begin starts the invoke phase and returns its deadline: now plus the
// function's timeout, or the caller's limit when that is sooner. Both sides
// of the hand-over call it (the Runtime API for the deadline header, the
// pool for its timer); the first call fixes the value.
func (in *invocation) begin() time.Time {
	in.beginOnce.Do(func() {
		in.deadline = time.Now().Add(in.timeout)
		if in.limit.Before(in.deadline) {
			in.deadline = in.limit
		}
	})
	return in.deadline
}

// finish records the answer if none was recorded yet, and reports whether
// this call was the one that did.
func (in *invocation) finish(result []byte, err error) bool {
	won := false
	in.once.Do(func() {
		in.result, in.err, won = result, err, true
		close(in.done)
	})
	return won
}

// runtimeState is where a runtime is in the Runtime API's state machine.
type runtimeState int

const (
	rtStarting  runtimeState = iota // started, no /next yet: init
	rtReady                         // called /next at least once, no invocation out
	rtBusy                          // an invocation is out, not yet answered
	rtInitError                     // posted /init/error; unusable
)

// runtimeAPI serves the Lambda Runtime API to exactly one handler process,
// so whatever arrives on it belongs to that process. It hands out one
// invocation at a time: offers is unbuffered, and a /next while an
// invocation is out is refused (403), as the runtime interface emulator
// refuses that state transition.
type runtimeAPI struct {
	logger    *slog.Logger
	arn       string // Lambda-Runtime-Invoked-Function-Arn
	offers    chan *invocation
	initErr   chan *FunctionError // receives the /init/error report, once
	mux       *http.ServeMux
	ready     chan struct{}          // closed at the first /next: init is over
	lastID    atomic.Pointer[string] // latest invocation handed out, for output lines
	readyOnce sync.Once
	// bodyTimeout bounds reading a request body (a response, an error
	// document), counted from the end of its headers; 0 is no bound. No
	// legitimate post outlasts it: the invocation's own deadline is shorter.
	bodyTimeout time.Duration

	mu      sync.Mutex
	state   runtimeState
	current *invocation // while rtBusy
}

func newRuntimeAPI(logger *slog.Logger, arn string) *runtimeAPI {
	rt := &runtimeAPI{
		logger:  logger,
		arn:     arn,
		offers:  make(chan *invocation),
		initErr: make(chan *FunctionError, 1),
		ready:   make(chan struct{}),
		mux:     http.NewServeMux(),
	}
	rt.mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", rt.next)
	rt.mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", rt.response)
	rt.mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", rt.invocationError)
	rt.mux.HandleFunc("POST /2018-06-01/runtime/init/error", rt.initError)
	return rt
}

func (rt *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.bodyTimeout > 0 && r.ContentLength != 0 {
		// Only requests with a body: a deadline on the /next long poll
		// would cancel its context while it legitimately waits.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(rt.bodyTimeout))
	}
	rt.mux.ServeHTTP(w, r)
}

// Runtime API error types, as the runtime interface emulator names them.
const (
	errTypeInvalidState     = "InvalidStateTransition"
	errTypeInvalidRequestID = "InvalidRequestID"
	errTypeTooLarge         = "RequestEntityTooLarge"
	errTypeInvalidMode      = "InvalidFunctionResponseMode"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// refuse answers a request the Runtime API does not allow in this state. It
// is logged: a runtime that gets one usually exits, and this line says why.
func (rt *runtimeAPI) refuse(w http.ResponseWriter, r *http.Request, status int, typ, msg string) {
	rt.logger.Warn("runtime api request refused", "method", r.Method, "path", r.URL.Path,
		"status", status, "errorType", typ, "errorMessage", msg)
	writeJSON(w, status, map[string]string{"errorType": typ, "errorMessage": msg})
}

func writeAccepted(w http.ResponseWriter) {
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
}

// next is the long poll: it blocks until an invocation is offered or the
// runtime hangs up. It never times out (the runtime must not either).
func (rt *runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	switch rt.state {
	case rtBusy:
		id := rt.current.id
		rt.mu.Unlock()
		rt.refuse(w, r, http.StatusForbidden, errTypeInvalidState,
			"State transition from Running to Ready failed for runtime: invocation "+id+" has no response yet")
		return
	case rtInitError:
		rt.mu.Unlock()
		rt.refuse(w, r, http.StatusForbidden, errTypeInvalidState,
			"State transition from InitError to Ready failed for runtime")
		return
	}
	rt.state = rtReady
	rt.mu.Unlock()
	rt.readyOnce.Do(func() { close(rt.ready) })

	var in *invocation
	select {
	case in = <-rt.offers:
	case <-r.Context().Done():
		return
	}
	rt.mu.Lock()
	rt.state, rt.current = rtBusy, in
	rt.mu.Unlock()
	rt.lastID.Store(&in.id)

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", in.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(in.begin().UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", rt.arn)
	h.Set("Lambda-Runtime-Trace-Id", in.traceID)
	h.Set("Content-Length", strconv.Itoa(len(in.payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(in.payload)
	// A runtime that drops the connection here never answers; the
	// deadline then ends the invocation.
}

// isReady reports whether the runtime finished init (called /next).
func (rt *runtimeAPI) isReady() bool {
	select {
	case <-rt.ready:
		return true
	default:
		return false
	}
}

// claim checks that id is the invocation out (403 when none is, 400 when id
// is another) and returns it.
func (rt *runtimeAPI) claim(w http.ResponseWriter, r *http.Request) *invocation {
	id := r.PathValue("id")
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.state != rtBusy {
		rt.refuse(w, r, http.StatusForbidden, errTypeInvalidState,
			"State transition to InvocationResponse failed for runtime: no invocation is running")
		return nil
	}
	if id != rt.current.id {
		rt.refuse(w, r, http.StatusBadRequest, errTypeInvalidRequestID, "Invalid request ID")
		return nil
	}
	return rt.current
}

// answered moves the runtime back to ready, then records the answer: in that
// order, so the pool never offers the next invocation to a runtime that
// still counts as busy.
func (rt *runtimeAPI) answered(in *invocation, result []byte, err error) {
	rt.mu.Lock()
	if rt.current == in {
		rt.state, rt.current = rtReady, nil
	}
	rt.mu.Unlock()
	in.finish(result, err)
}

func (rt *runtimeAPI) response(w http.ResponseWriter, r *http.Request) {
	in := rt.claim(w, r)
	if in == nil {
		return
	}
	if mode := r.Header.Get("Lambda-Runtime-Function-Response-Mode"); mode != "" && mode != "streaming" {
		rt.answered(in, nil, &FunctionError{Type: "Runtime.InvalidResponseModeHeader",
			Message: "invalid Lambda-Runtime-Function-Response-Mode " + strconv.Quote(mode)})
		rt.refuse(w, r, http.StatusBadRequest, errTypeInvalidMode, "Invalid function response mode")
		return
	}
	// A streamed response is collected whole: the gateway needs the
	// complete proxy document.
	body, err := readLimited(r.Body, r.ContentLength)
	switch {
	case err == errTooLarge:
		rt.answered(in, nil, &FunctionError{Type: "Function.ResponseSizeTooLarge",
			Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayload)})
		rt.refuse(w, r, http.StatusRequestEntityTooLarge, errTypeTooLarge,
			fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", MaxPayload))
		return
	case err != nil:
		// Truncated: the runtime died or hung up mid-body. Its exit, or the
		// deadline, answers the invocation.
		rt.refuse(w, r, http.StatusBadRequest, "TruncatedHTTPRequest", "HTTP request detected as truncated")
		return
	}
	// aws-lambda-go declares these trailers on every post and fills them
	// when the handler's reader fails mid-stream.
	if typ := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
		doc, _ := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body"))
		rt.answered(in, nil, parseFunctionError(typ, doc))
		writeAccepted(w)
		return
	}
	rt.answered(in, body, nil)
	writeAccepted(w)
}

// errorReport reads an /error or /init/error body into a *FunctionError.
// The type is the body's errorType, else the Lambda-Runtime-Function-Error-Type
// header, else fallback.
func errorReport(r *http.Request, fallback string) *FunctionError {
	body, err := readLimited(r.Body, r.ContentLength)
	if err != nil {
		body = nil
	}
	if typ := r.Header.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
		fallback = typ
	}
	fe := parseFunctionError(fallback, body)
	if len(bytes.TrimSpace(body)) == 0 {
		fe.Payload = nil
	}
	return fe
}

func (rt *runtimeAPI) invocationError(w http.ResponseWriter, r *http.Request) {
	in := rt.claim(w, r)
	if in == nil {
		return
	}
	rt.answered(in, nil, errorReport(r, "Function.Unknown"))
	writeAccepted(w)
}

// initError records an init failure. It is accepted only before the first
// /next; the process is then unusable and is replaced.
func (rt *runtimeAPI) initError(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	if rt.state != rtStarting {
		rt.mu.Unlock()
		rt.refuse(w, r, http.StatusForbidden, errTypeInvalidState,
			"State transition to InitError failed for runtime: init is over")
		return
	}
	rt.state = rtInitError
	rt.mu.Unlock()
	rt.initErr <- errorReport(r, "Runtime.Unknown") // buffered 1, sent once
	writeAccepted(w)
}
