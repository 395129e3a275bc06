// Package httpfront serves the hot requests of an HTTP/1.1 listener (a
// WebSocket handshake, a management POST) on the raw socket, without
// net/http's per-connection and per-request machinery, and hands every
// other connection to a net/http server.
//
// On Linux the front accepts a *net.TCPListener's connections with its
// own accept4 and keeps each as a bare non-blocking descriptor (fdConn),
// outside the runtime's poller until an operation has to wait; one whose
// first bytes have not come waits in the front's own epoll (poller,
// poll_linux.go) with no goroutine. Serve then owns the listening socket:
// stop it with Shutdown (closing the listener alone leaves a duplicate
// listening).
//
// Per connection the front reads the first bytes with one ordinary read
// into a pooled buffer. A first byte of 0x16 (a TLS handshake record)
// makes it a TLS connection (with TLSOnly, every connection is one): it
// goes, with the bytes given back, to the fallback http.Server as a
// *tls.Conn. Otherwise the request head is
// parsed in the buffer (parseHead) into an *http.Request and the handler
// is called with a light http.ResponseWriter that writes the whole
// response in one write and implements http.Hijacker (the upgrade) and
// SetReadDeadline (http.ResponseController). A keep-alive connection
// loops on the same goroutine: no background read, no goroutine per
// request, one deadline change per request.
//
// The front reuses a connection's *http.Request, its URL and Header for
// the connection's next request, and a hijacked connection's (with the
// rest of its per-connection state, connPool) for a later connection: a
// handler must not keep them after it returned, hijacked or not (the
// strings in them may be kept).
//
// A request outside the subset parseHead accepts (HTTP/1.0, chunked
// bodies, Expect, a long or malformed head, another method) or one that
// Serves does not claim is handed to the fallback server with the bytes
// already read in front of the socket, so net/http reads, answers or
// refuses it exactly as it would without the front.
package httpfront

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/gopool"
)

// serving runs connections' serve and resume turns on goroutines that keep
// the stacks they grew (a handshake goes deep: parsing, the upgrade, the
// $connect call) instead of growing a fresh one per connection. Accepting
// bounds the turns in flight: MaxPending before a first head, the
// descriptor limit after. Of the goroutines a burst started, at most
// poolIdlePerCore × GOMAXPROCS stay waiting for the next turn (each for
// 5 to 10 s, gopool.Idle); one that ends its turn while that many wait
// exits with its stack.
var serving = gopool.NewMaxIdle(poolIdlePerCore * runtime.GOMAXPROCS(0))

// poolIdlePerCore is how many of serving's goroutines may wait idle per
// GOMAXPROCS: the gateway's pools' bound (gateway's poolIdlePerCore). A
// burst of keep-alive connections each with a request at once started a
// goroutine per connection; with no bound they all waited 5 to 10 s
// after it, each with its stack (a handshake's grows to 8–32 KB), while
// the connections parked in the poller with none.
const poolIdlePerCore = 128

// Server is the front of one listener.
type Server struct {
	// Fallback serves every connection the front does not (TLS ones, and
	// requests outside the front's subset); the front calls its Handler
	// for the requests it serves, and bounds its reads by its
	// ReadHeaderTimeout, IdleTimeout (or ReadTimeout) and MaxHeaderBytes.
	Fallback *http.Server
	// TLS, when set, makes a connection whose first byte is 0x16 a TLS
	// connection (tls.Server with this config), served by Fallback.
	TLS *tls.Config
	// TLSOnly, with TLS, makes every connection a TLS one whatever its
	// first byte (tls.mode on): a plaintext client then fails the
	// handshake in Fallback, as it would behind a tls.Listener.
	TLSOnly bool
	// Prepare, when set, runs first on each accepted connection, on the
	// connection's goroutine and under its first read deadline: the
	// PROXY protocol header. An error closes the connection.
	Prepare func(net.Conn) (net.Conn, error)
	// Serves, when set, says whether a parsed request is the front's to
	// serve; the others' connections are handed to Fallback.
	Serves func(*http.Request) bool
	// MaxPending bounds the connections that have not yet sent a whole
	// first request head (each holds a goroutine and a 4 KB buffer for
	// up to ReadHeaderTimeout); when that many wait, accepting pauses and
	// the kernel's backlog queues the rest. Default 1024.
	MaxPending int
	// DeferAccept, on Linux with a *net.TCPListener, sets
	// TCP_DEFER_ACCEPT on the listening socket: the kernel hands over a
	// connection once its first bytes are in, so the front's first read
	// finds them and a head that came whole is served at once, without
	// a park in the poller (no empty read, no epoll_ctl, no second
	// goroutine turn); a head that comes in pieces parks for the rest
	// as before. A connection that sends nothing is handed over
	// about a second after it connected (when it answers the kernel's
	// first SYN-ACK retransmission), and its header timeout runs from
	// then. The option stays on the socket after Serve returns.
	DeferAccept bool
	// Inline, when set with DeferAccept (Linux, a *net.TCPListener, no
	// Prepare), says of a connection's first request whether it may be
	// served on the goroutine that accepted the connection, before the
	// next accept: when the first read brought its whole head and Inline
	// returns true, no pooled goroutine takes the connection over for it
	// (no hand-off, no second goroutine turn). Serve then runs
	// InlineLoops accept loops, each serving the requests it accepted:
	// the first waits for connections, and wakes another when it is
	// behind (an accept found a connection already queued) or has been
	// serving one for 10 to 20 ms, so that a burst spreads over as many
	// cores and a slow handler does not stop accepting (with one loop,
	// the default on two cores, it does). Its handler should wait on
	// nothing but the CPU, and can tell it is served inline
	// (ServedInline). A connection the handler does not hijack goes on,
	// for its next requests, on a pooled goroutine; so does every
	// request Inline refuses (parsed once: the head is not read again).
	Inline func(*http.Request) bool
	// ReleaseHeads, when set, says of a request whether its handler's
	// ReleaseHead is honoured (the next head then reuses its head's
	// memory): false when something between the front and that handler,
	// such as middleware, may keep the head's strings. Nil: never.
	ReleaseHeads func(*http.Request) bool
	// InlineLoops is the number of accept loops with Inline; 0: half
	// of GOMAXPROCS, at least 1, at most 8.
	InlineLoops int
	// KeepAliveWaitDescriptors bounds the second descriptors (dups of
	// the socket, Linux only) the front's kept-alive connections hold
	// while they wait for their next request, each saving a read per
	// request; a connection past the bound waits with one more read per
	// request until a place is free. 0: an eighth of the descriptor
	// limit (RLIMIT_NOFILE); negative: none.
	KeepAliveWaitDescriptors int
	// Logf, when set, takes the front's own log lines (an accept error,
	// a handler's panic, a keep-alive wait without its second
	// descriptor); without, they go to Fallback.ErrorLog.
	Logf func(format string, args ...any)

	handler http.Handler
	waits   waitDups      // the keep-alive waits' duplicates (wait_linux.go)
	pending chan struct{} // a slot per connection before its first head
	done    chan struct{} // closed by Shutdown
	hand    *chanListener
	ln      net.Listener
	// accepter, when set, accepts from ln's socket in place of ln.Accept
	// (Linux); Shutdown closes it with ln.
	accepter *rawAccepter
	closing  atomic.Bool
	mu       sync.Mutex
	conns    map[*conn]struct{}
	wg       sync.WaitGroup // serveConn goroutines, and Fallback's Serve
	fbErr    error
}

// Serve accepts connections on ln until Shutdown, serving the front's
// requests itself and running Fallback.Serve on the rest. It returns
// http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.handler = s.Fallback.Handler
	if s.handler == nil {
		s.handler = http.DefaultServeMux
	}
	s.hand = newChanListener(ln.Addr())
	s.conns = make(map[*conn]struct{})
	s.pending = make(chan struct{}, cmp.Or(s.MaxPending, 1024))
	s.waits.setLimit(s.KeepAliveWaitDescriptors)
	lowerSweep(s.headerTimeout())
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if err := s.Fallback.Serve(s.hand); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.fbErr = err
			s.mu.Unlock()
		}
	}()
	growFDTable()
	accept := ln.Accept
	if ra := newRawAccepter(ln, s.DeferAccept); ra != nil {
		accept = ra.accept
		s.mu.Lock()
		s.accepter = ra
		closing := s.closing.Load()
		s.mu.Unlock()
		defer ra.close()
		if closing {
			return http.ErrServerClosed
		}
	}
	inline := s.Inline != nil && s.DeferAccept && s.Prepare == nil && s.accepter != nil
	if !inline {
		return s.acceptLoop(accept, false, nil)
	}
	n := s.inlineLoops()
	if n == 1 {
		return s.acceptLoop(accept, true, nil)
	}
	// Inline requests are served on the loop that accepted them. The
	// first loop waits for connections; the others sleep until it is
	// behind (an accept that found one queued: connections came while it
	// served) or stuck in one serve (helpWatch), then accept beside it.
	h := &helpers{wake: make(chan bool), first: s.accepter}
	h.watch = time.AfterFunc(time.Hour, h.check)
	h.watch.Stop()
	var loops sync.WaitGroup
	for range n - 1 {
		a := s.accepter.loop()
		loops.Add(1)
		go func() {
			defer loops.Done()
			s.helpLoop(a, h)
		}()
	}
	err := s.acceptLoop(accept, true, h)
	s.accepter.close() // a helper's wait ends (net.ErrClosed)
	loops.Wait()
	h.watch.Stop()
	return err
}

// inlineLoops is the number of accept loops Serve runs with Inline.
func (s *Server) inlineLoops() int {
	if s.InlineLoops > 0 {
		return s.InlineLoops
	}
	return max(1, min(runtime.GOMAXPROCS(0)/2, maxInlineLoops))
}

// maxInlineLoops bounds InlineLoops' default, half of GOMAXPROCS: the
// other half stays for the established connections' reads, writes and
// $connect calls, and for the kernel's share of each handshake (on two
// cores one loop: a second cost a storm of bare handshakes about a tenth
// more CPU each, BENCHMARKS.md, session 14). Past about eight the loops
// mostly queue on the listening socket's lock in the kernel (every
// accept4 of one socket takes it) and on the hub's shards.
const maxInlineLoops = 8

// helpWatch is how long the first accept loop may serve one connection
// before a helper loop is woken to accept in its place (a handler that
// waits: Inline's contract says it should not). A check that finds the
// first loop idle stops until its next serve.
const helpWatch = 10 * time.Millisecond

// helpers are the accept loops beside the first with Inline. Waking one
// is a futex wake of an idle core and one more accept4 that may find
// nothing: the first loop asks only when it is behind or stuck, so a
// listener that keeps up costs no more than with one loop.
type helpers struct {
	// wake: a send wakes a sleeping helper (unbuffered); true: the first
	// loop is stuck in a serve (the helper waits in its place).
	wake  chan bool
	first *rawAccepter
	// busy: the first loop is serving a connection; serves counts them.
	busy     atomic.Bool
	serves   atomic.Uint64
	watching atomic.Bool // watch is set (it re-arms while busy)
	seen     atomic.Uint64
	watch    *time.Timer
}

// call wakes a sleeping helper, if any.
func (h *helpers) call(stuck bool) {
	select {
	case h.wake <- stuck:
	default:
	}
}

// serving notes that the first loop begins a serve, and arms the watch.
func (h *helpers) serving() {
	h.busy.Store(true)
	if !h.watching.Load() && h.watching.CompareAndSwap(false, true) {
		h.watch.Reset(helpWatch)
	}
}

func (h *helpers) served() {
	h.serves.Add(1)
	h.busy.Store(false)
}

// check is the watch: a serve that outlasted a whole period wakes a
// helper; the watch goes on while the first loop serves.
func (h *helpers) check() {
	n := h.serves.Load()
	if h.seen.Swap(n) == n && h.busy.Load() {
		h.call(true)
	}
	h.watching.Store(false)
	if h.busy.Load() && h.watching.CompareAndSwap(false, true) {
		h.watch.Reset(helpWatch)
	}
}

// helpLoop is a helper: once woken, it accepts and serves what is
// queued; woken for a stuck first loop, it also waits for the next
// connection in its place while that loop serves; then it sleeps again.
// (A helper that waited whenever the first loop served would take turns
// with it on every connection: a goroutine wake of the other core
// each, which cost a bare handshake about a sixth more CPU in the
// benchmark of session 14.)
func (s *Server) helpLoop(a *rawAccepter, h *helpers) {
	done := s.shutdownCh()
	for {
		var stuck bool
		select {
		case stuck = <-h.wake:
		case <-done:
			return
		}
		for {
			select {
			case s.pending <- struct{}{}:
			case <-done:
				return
			}
			nc, err := a.acceptNow()
			if nc == nil && err == nil && stuck && h.busy.Load() {
				nc, err = a.accept()
			}
			if nc == nil {
				<-s.pending
				if err != nil && (s.closing.Load() || errors.Is(err, net.ErrClosed)) {
					return
				}
				if err != nil {
					s.logf("httpfront: accept error: %v", err)
				}
				break // nothing queued, or EMFILE and the like (the first loop backs off)
			}
			c := newConn(s, nc)
			if !s.track(c) {
				<-s.pending
				_ = nc.Close()
				return
			}
			if !c.serveInline() {
				serving.Go(c.serveFn)
			}
		}
	}
}

// acceptLoop accepts and serves (or hands to a pooled goroutine) until
// Shutdown or an accept error that ends Serve; h: the first of several
// loops with Inline.
func (s *Server) acceptLoop(accept func() (net.Conn, error), inline bool, h *helpers) error {
	var backoff time.Duration
	done := s.shutdownCh()
	for {
		select {
		case s.pending <- struct{}{}:
		case <-done:
			return http.ErrServerClosed
		}
		nc, err := accept()
		if err != nil {
			<-s.pending
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				if s.closing.Load() {
					return http.ErrServerClosed
				}
				return err
			}
			// EMFILE and the like: pause as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("httpfront: accept error: %v; retrying in %v", err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := newConn(s, nc)
		if !s.track(c) {
			<-s.pending
			_ = nc.Close()
			return http.ErrServerClosed
		}
		switch {
		case !inline:
			serving.Go(c.serveFn)
		case h == nil:
			if !c.serveInline() {
				serving.Go(c.serveFn)
			}
		default:
			if !h.first.waited {
				h.call(false) // it was queued: more may be
			}
			h.serving()
			ok := c.serveInline()
			h.served()
			if !ok {
				serving.Go(c.serveFn)
			}
		}
	}
}

// track adds c to the connections Shutdown waits for; false once
// Shutdown began.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, closes the front's idle keep-alive
// connections, lets the requests in progress finish (their connections
// close after the response), then shuts Fallback down; all bounded by
// ctx, as http.Server.Shutdown. Hijacked connections are the hijacker's.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing.Load() {
		close(s.shutdownChLocked())
	}
	s.closing.Store(true)
	ln, ra := s.ln, s.accepter
	parked := s.wakeIdleLocked(nil)
	s.mu.Unlock()
	closeParked(parked)
	if ln != nil {
		_ = ln.Close()
	}
	if ra != nil {
		ra.close()
	}
	fbErr := s.Fallback.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return fbErr
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
			// A connection that went idle after the sweep above.
			s.mu.Lock()
			parked := s.wakeIdleLocked(nil)
			s.mu.Unlock()
			closeParked(parked)
		}
	}
}

// wakeIdleLocked wakes the reads of idle connections (they see closing
// and close) and appends the parked ones (no goroutine to wake: the
// caller closes them, closeParked, once s.mu is released).
func (s *Server) wakeIdleLocked(parked []*conn) []*conn {
	for c := range s.conns {
		switch {
		case c.state.Load() == connParked:
			parked = append(parked, c)
		case c.idle.Load():
			_ = c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
	return parked
}

func closeParked(parked []*conn) {
	for _, c := range parked {
		c.unpark()
	}
}

// shutdownCh is closed by Shutdown.
func (s *Server) shutdownCh() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdownChLocked()
}

func (s *Server) shutdownChLocked() chan struct{} {
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

var aLongTimeAgo = time.Unix(1, 0)

// handOff gives nc to Fallback.
func (s *Server) handOff(nc net.Conn) {
	if !s.hand.put(nc) {
		_ = nc.Close()
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
		return
	}
	if l := s.Fallback.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (s *Server) headerTimeout() time.Duration {
	return cmpOr(s.Fallback.ReadHeaderTimeout, s.Fallback.ReadTimeout)
}

func (s *Server) idleTimeout() time.Duration {
	return cmpOr(s.Fallback.IdleTimeout, s.Fallback.ReadTimeout)
}

// headLimit is the longest head the front parses: net/http's own limit
// when it is lower.
func (s *Server) headLimit() int {
	if m := s.Fallback.MaxHeaderBytes; m > 0 && m < maxHead {
		return m
	}
	return maxHead
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// deadline is now plus d, or no deadline for 0.
func deadline(now time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return now.Add(d)
}

// recoverHandler logs a handler's panic as net/http does.
func (s *Server) recoverHandler(c *conn) {
	if v := recover(); v != nil {
		if v != http.ErrAbortHandler {
			s.logf("httpfront: panic serving %v: %v\n%s", c.remoteAddr(), v, debug.Stack())
		}
		if !c.w.hijacked {
			c.unregister()
			_ = c.nc.Close()
		}
		c.releasePending()
		c.release()
		s.untrack(c)
	}
}
