//go:build linux

package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/wsgate/wsgate/internal/httpread"
	"github.com/wsgate/wsgate/internal/rawsys"
)

// The lean POST client (op "post" with Lean, after "post-sign"): the
// fixed-rate POST load sent and received by one goroutine locked to its
// OS thread, on one epoll set of its own, so that a latency it reports is
// the server's and the machine's, not the client's scheduling:
//
//   - the send timestamp is taken right before the write(2) of the
//     request (bytes signed before the window, sigv4.Sign: the server
//     verifies a real SigV4 POST), the receive timestamp right after the
//     read(2) that brought the frame or the answer, and for a frame also
//     the kernel's receive timestamp (SO_TIMESTAMPNS): the time the frame
//     sat in the client's socket before its thread read it is measured,
//     not guessed;
//   - the thread sleeps until the next scheduled send in epoll_pwait2,
//     whose timeout is in nanoseconds, with a timer slack of 1 ns
//     (prctl PR_SET_TIMERSLACK). Go's own timers (time.Sleep) sleep in
//     epoll_wait with a millisecond timeout: a sleep under 1 ms lasts at
//     least 1 ms, which alone put the goroutine client's sends up to a
//     millisecond or more behind schedule;
//   - the thread runs SCHED_FIFO when the process may (root or
//     CAP_SYS_NICE; the figure "client: real-time" says whether it did);
//   - no goroutine per connection or per request, no channel hand-off, no
//     runtime poller wake-up, and no collection in the window (the loop
//     allocates only its notes of slow POSTs and dials; the dialer, below,
//     allocates more, with the collector off while the loop runs);
//   - every latency is measured from the POST's scheduled time (an open
//     loop: a late send is counted, not omitted), and also from its write,
//     and the lateness of each write is reported on its own.
//   - with a warm-up (command.Warm) the schedule starts that much before
//     the measured window and the warm-up's POSTs' samples are kept
//     apart (reply.Warm): a phase's first POSTs dial the connections the
//     load needs and are each a connection's first request, which costs
//     a server more (BENCHMARKS.md, "the POST p99's stalls, session 10");
//     the window's figures are the steady state's.
//   - a connection is dialed by a goroutine of its own (leanDialer), not
//     by the thread that reads: a POST that finds no idle connection asks
//     for one and waits for whichever comes first, an answer freeing a
//     connection or the new one. Dialing on the reading thread (sessions
//     10 and 11) made a late answer cost the reading of every other one:
//     a stall sent the client dialing toward its bound, 43–67 ms behind
//     reading at worst, which multiplied the p99 it reported
//     (BENCHMARKS.md, "every target on a quiet machine, session 11").
//   - each window POST whose frame comes over slowFrame (2 ms) after its
//     scheduled time is noted with that time (reply.Slow): the phase
//     reports how many there were, in how many episodes (slow POSTs
//     scheduled within episodeGap of each other: one stall) and where
//     in the window the largest five fell, so a p99 over 2 ms tells
//     whether one stall or many made it, and when. Each such POST also
//     carries the time from its write to its frame at the client's
//     socket: the episode's share that was not the client's own lateness
//     in sending or reading. The connections dialed for the window are
//     noted with their time (reply.DialAt), and with -stall-probe the
//     phase marks each episode with them and with the machine's stalls
//     (stallprobe_linux.go).

// leanMaxHTTP bounds the keep-alive connections per entry node, dialed
// when none is idle (leanPreDial of them before the window): with all of
// them in flight, the next POST waits for an answer and is sent late,
// which its samples count (the goroutine client allowed 64 in flight per
// process, 4 processes).
const (
	leanPreDial  = 4
	leanMaxHTTP  = 256
	leanReadBuf  = 16 << 10
	leanMaxFrame = 1 << 16
)

// leanConn is one socket of the lean client.
type leanConn struct {
	fd    int
	ws    bool   // a WebSocket connection: what arrives is frames
	buf   []byte // bytes read and not yet parsed
	entry int    // HTTP: its entry node's pool
	post  int    // HTTP: the POST in flight, -1 when idle
}

// leanPool is an entry node's idle HTTP connections, last in first out.
type leanPool struct {
	addr    string
	idle    []*leanConn
	n       int // connections dialed
	dialing int // dials asked of the dialer, not back yet
}

// leanDial is a dial asked of the dialer (pool k), and its result.
type leanDial struct {
	k      int
	window bool // asked for a POST of the window, not of the warm-up
	fd     int
	err    error
}

// leanDialer dials the loop's connections on a goroutine of its own and
// hands each to the loop: the loop's thread never blocks in a connect.
// It wakes the loop through an eventfd in the loop's epoll set.
type leanDialer struct {
	ask  chan leanDial
	efd  int
	mu   sync.Mutex
	done []leanDial // dialed, not yet taken by the loop
	wg   sync.WaitGroup
}

type leanLoop struct {
	c        command
	ep       int
	conns    []*leanConn // by descriptor
	pools    []*leanPool
	poolOf   []int // entry pool of POST i's URL (by i mod len)
	start    int64 // the schedule's start, unix ns
	interval int64 // ns between scheduled sends
	wires    [][]byte
	warm     int     // POSTs 0 … warm-1 are the warm-up, their samples in w
	sentAt   []int64 // unix ns of each POST's write, 0 before
	rbuf     []byte
	// recvmsg's header, I/O vector and control buffer, reused: a frame's
	// read brings the kernel's receive timestamp (SO_TIMESTAMPNS).
	msg  syscall.Msghdr
	iov  syscall.Iovec
	cbuf [64]byte

	ok, errs, frames    int64
	dials, mostInFlight int64 // HTTP connections dialed; POSTs in flight at most
	realtime            bool  // the thread ran SCHED_FIFO
	firstErr            string
	wsEnded             int
	// The samples, ns: sent after schedule, answered and frame (from the
	// scheduled time), frame from the write, frame at the client's socket
	// (the kernel's receive timestamp, from the scheduled time) and from
	// that timestamp to the read.
	late, answered, frameLat, fromSend, atSocket, readDelay []int64
	// wakeLate: how long after its deadline the thread woke from a wait
	// that timed out (nothing had arrived): the machine's own wake-up
	// latency for this thread, with no server in it.
	wakeLate []int64
	// slow: the window's POSTs whose frame came over slowFrame after
	// their scheduled time: that time since the window's start, and the
	// delay.
	slow [][3]int64
	// w: the warm-up's samples (the fields above are the window's);
	// windowDials: connections dialed for the window's POSTs.
	w           warmSamples
	windowDials int64
	dialAt      []int64 // when each of the window's dials came into the loop, ns since the window's start
	d           *leanDialer
	dialFailed  int // failed dials not yet charged to a waiting POST
}

// postLean runs the fixed-rate POSTs signed by post-sign on this worker's
// connections (dialed without readers) and returns every sample; Count is
// the frames received, which the readers would otherwise count.
func (w *worker) postLean(c command) reply {
	if w.plan == nil || c.Rate <= 0 {
		return reply{Err: "lean post: sign the window first (post-sign), at a rate"}
	}
	_, entries := w.postURLs(c)
	plan := w.plan
	w.plan = nil
	l := &leanLoop{c: c, start: plan.start.UnixNano(), interval: int64(time.Duration(float64(time.Second) / c.Rate)),
		wires: plan.wires, warm: plan.warm, sentAt: make([]int64, len(plan.wires)), rbuf: make([]byte, leanReadBuf)}
	n := len(plan.wires) - plan.warm
	if w := plan.warm; w > 0 {
		l.w = warmSamples{Frames: make([]int64, 0, w), FromSend: make([]int64, 0, w), Queued: make([]int64, 0, w), Lat: make([]int64, 0, w)}
	}
	l.late, l.answered = make([]int64, 0, n), make([]int64, 0, n)
	l.frameLat, l.fromSend = make([]int64, 0, n), make([]int64, 0, n)
	l.atSocket, l.readDelay, l.wakeLate = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	var err error
	if l.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return reply{Err: err.Error()}
	}
	defer l.closeAll()
	if err := l.takeOver(w.conns); err != nil {
		return reply{Err: err.Error()}
	}
	w.conns = nil // the loop owns (and closes) their sockets now
	index := map[string]int{}
	for _, addr := range entries {
		k, seen := index[addr]
		if !seen {
			k = len(l.pools)
			index[addr] = k
			l.pools = append(l.pools, &leanPool{addr: addr})
		}
		l.poolOf = append(l.poolOf, k)
	}
	for k := range l.pools {
		for range leanPreDial {
			fd, err := l.dialFD(k)
			if err == nil {
				var h *leanConn
				if h, err = l.addHTTP(k, fd); err == nil {
					l.pools[k].idle = append(l.pools[k].idle, h)
				}
			}
			if err != nil {
				return reply{Err: err.Error()}
			}
		}
	}
	if err := l.startDialer(); err != nil {
		return reply{Err: err.Error()}
	}
	// No collection while the loop runs: the dialer's dials allocate (a
	// few KB each, 256 at most), and a collection's stops of the world
	// would wait for the dialer's thread, an ordinary one, when the
	// machine has it off its CPU, holding up the real-time loop behind it.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.LockOSThread()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_TIMERSLACK, 1, 0)
	l.realtime = setFIFO(2) == nil // above the servers' 1 under -server-fifo
	l.run()
	if l.realtime {
		_ = setFIFO(0)
	}
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_TIMERSLACK, 0, 0) // back to the default
	runtime.UnlockOSThread()
	r := reply{Elapsed: time.Now().UnixNano() - l.start, OK: l.ok, Errors: l.errs, Count: l.frames,
		Lat: l.answered, Queued: l.late, Frames: l.frameLat, FromSend: l.fromSend, AtSocket: l.atSocket, ReadDelay: l.readDelay, WakeLate: l.wakeLate, Slow: l.slow,
		Ended: int64(l.wsEnded), Dials: l.dials, InFlight: l.mostInFlight, Realtime: l.realtime,
		WindowStart: l.sched(l.warm), DialAt: l.dialAt}
	if l.warm > 0 {
		l.w.Dials = l.dials - l.windowDials
		r.Warm, r.Dials = &l.w, l.windowDials
	}
	if l.firstErr != "" {
		r.FirstEr = l.firstErr
	}
	return r
}

// setFIFO makes the calling thread SCHED_FIFO at priority prio, or
// SCHED_OTHER again with 0 (sched_setscheduler; needs CAP_SYS_NICE).
// A real-time load thread runs as soon as its timer fires or a frame
// arrives, ahead of the server and of every other process: its own
// scheduling delay does not pad the server's latency (its CPU is under
// half a core at 5,000 POSTs/s, and the kernel's real-time throttling
// keeps 5 % for the rest).
func setFIFO(prio int) error { return fifoThread(0, prio) }

// fifoThread sets thread tid (0: the calling one) SCHED_FIFO at prio, or
// SCHED_OTHER with 0.
func fifoThread(tid, prio int) error {
	policy := uintptr(1) // SCHED_FIFO
	if prio == 0 {
		policy = 0 // SCHED_OTHER
	}
	param := int32(prio)
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), policy, uintptr(unsafe.Pointer(&param)))
	if e != 0 {
		return e
	}
	return nil
}

// fifoProcess sets every thread of process pid SCHED_FIFO at prio (or
// SCHED_OTHER with 0); threads it starts later inherit the policy from
// the thread that creates them.
func fifoProcess(pid, prio int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := fifoThread(tid, prio); err != nil && err != syscall.ESRCH { // ESRCH: the thread ended meanwhile
			return err
		}
	}
	return nil
}

// takeOver moves the WebSocket connections' sockets into the loop: a
// duplicate descriptor, non-blocking, in the epoll set; closing the
// net.Conn takes the socket out of the runtime's poller (the duplicate
// keeps it open).
func (l *leanLoop) takeOver(conns []*clientConn) error {
	for _, cc := range conns {
		if cc.br.Buffered() > 0 {
			return errors.New("lean post: a connection has unread bytes (dial without readers)")
		}
		fd, err := dupSocket(cc.nc)
		if err != nil {
			return err
		}
		cc.nc.Close()
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
			syscall.Close(fd)
			return err
		}
		if err := l.add(&leanConn{fd: fd, ws: true, post: -1}); err != nil {
			return err
		}
	}
	return nil
}

func dupSocket(nc any) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("lean post: %T has no descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) {
		var r uintptr
		var e syscall.Errno
		r, _, e = syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			err = e
			return
		}
		fd = int(r)
	})
	if err = errors.Join(cerr, err); err != nil {
		return -1, err
	}
	return fd, syscall.SetNonblock(fd, true)
}

func (l *leanLoop) add(lc *leanConn) error {
	for lc.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*leanConn, len(l.conns)+64)...)
	}
	l.conns[lc.fd] = lc
	return rawsys.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, lc.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(lc.fd)})
}

// dialFD opens a keep-alive connection to pool k's node and returns its
// non-blocking descriptor (the dialer's goroutine, or the loop before its
// schedule starts). It reads nothing of the loop but its configuration.
func (l *leanLoop) dialFD(k int) (int, error) {
	nc, err := srcDialer(l.c.Src[0]).Dial("tcp", l.pools[k].addr)
	if err != nil {
		return -1, err
	}
	fd, err := dupSocket(nc)
	nc.Close()
	return fd, err
}

// addHTTP puts a dialed descriptor into the loop as an idle-to-be
// connection of pool k.
func (l *leanLoop) addHTTP(k, fd int) (*leanConn, error) {
	h := &leanConn{fd: fd, entry: k, post: -1}
	if err := l.add(h); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	l.pools[k].n++
	l.dials++
	return h, nil
}

// startDialer starts the dialer's goroutine and puts its eventfd into
// the loop's epoll set.
func (l *leanLoop) startDialer() error {
	r, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if e != 0 {
		return fmt.Errorf("eventfd: %w", e)
	}
	d := &leanDialer{ask: make(chan leanDial, leanMaxHTTP*len(l.pools)), efd: int(r)}
	if err := rawsys.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, d.efd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(d.efd)}); err != nil {
		syscall.Close(d.efd)
		return err
	}
	l.d = d
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		one := [8]byte{1}
		for a := range d.ask {
			a.fd, a.err = l.dialFD(a.k)
			d.mu.Lock()
			d.done = append(d.done, a)
			d.mu.Unlock()
			_, _ = syscall.Write(d.efd, one[:]) // host order: 1 on little-endian; any non-zero count wakes
		}
	}()
	return nil
}

// askDial asks the dialer for a connection of pool k for POST i.
func (l *leanLoop) askDial(k, i int) {
	l.pools[k].dialing++
	l.d.ask <- leanDial{k: k, window: i >= l.warm} // room for every dial the bound allows
}

// takeDials puts the connections the dialer made into their pools.
func (l *leanLoop) takeDials() {
	var cnt [8]byte
	_, _ = syscall.Read(l.d.efd, cnt[:])
	l.d.mu.Lock()
	done := l.d.done
	l.d.done = nil
	l.d.mu.Unlock()
	for _, a := range done {
		p := l.pools[a.k]
		p.dialing--
		if a.err != nil {
			l.fail(a.err.Error())
			l.dialFailed++
			continue
		}
		h, err := l.addHTTP(a.k, a.fd)
		if err != nil {
			l.fail(err.Error())
			continue
		}
		if a.window {
			l.windowDials++
			l.dialAt = append(l.dialAt, time.Now().UnixNano()-l.sched(l.warm))
		}
		p.idle = append(p.idle, h)
	}
}

func (l *leanLoop) closeAll() {
	if d := l.d; d != nil {
		close(d.ask)
		d.wg.Wait()
		for _, a := range d.done {
			if a.err == nil {
				syscall.Close(a.fd)
			}
		}
		syscall.Close(d.efd)
	}
	for _, lc := range l.conns {
		if lc != nil {
			syscall.Close(lc.fd)
		}
	}
	syscall.Close(l.ep)
}

func (l *leanLoop) fail(err string) {
	l.errs++
	if l.firstErr == "" {
		l.firstErr = err
	}
}

func (l *leanLoop) sched(i int) int64 { return l.start + int64(i)*l.interval }

// run sends every POST at its scheduled time and reads answers and frames
// until each sent POST was answered and each answered one framed, or 10 s
// after the last scheduled send.
func (l *leanLoop) run() {
	evs := make([]syscall.EpollEvent, 256)
	total := len(l.wires)
	end := l.sched(total) + int64(10*time.Second)
	next, inFlight := 0, 0
	for {
		now := time.Now().UnixNano()
		blocked := false
		for next < total && now >= l.sched(next) {
			var sent bool
			if sent, blocked = l.send(next, l.due(next, now)); blocked {
				break // every connection to its node is in flight, or being dialed
			}
			if sent {
				inFlight++
				if next < l.warm {
					l.w.InFlight = max(l.w.InFlight, int64(inFlight))
				} else {
					l.mostInFlight = max(l.mostInFlight, int64(inFlight))
				}
			}
			next++
			now = time.Now().UnixNano()
		}
		if next == total && inFlight == 0 && l.frames >= l.ok || now > end || l.wsEnded > 0 {
			return
		}
		timeout, timed := int64(100*time.Millisecond), next < total && !blocked
		if timed {
			timeout = l.sched(next) - now
		}
		n, err := epollWaitNS(l.ep, evs, timeout)
		if err != nil && err != syscall.EINTR {
			l.fail("epoll_pwait2: " + err.Error())
			return
		}
		if n == 0 && timed && timeout > 0 && next >= l.warm && len(l.wakeLate) < cap(l.wakeLate) {
			l.wakeLate = append(l.wakeLate, time.Now().UnixNano()-l.sched(next))
		}
		for _, ev := range evs[:n] {
			if int(ev.Fd) == l.d.efd {
				l.takeDials()
				continue
			}
			lc := l.conns[ev.Fd]
			if lc == nil {
				continue
			}
			if lc.ws {
				l.readFrames(lc)
			} else if l.readAnswers(lc) {
				inFlight--
			}
		}
	}
}

// due counts the POSTs from i on whose scheduled time has come (at most
// leanMaxHTTP: what the dials they ask for are bounded by anyway).
func (l *leanLoop) due(i int, now int64) int {
	if now < l.sched(i) {
		return 0
	}
	return min(int((now-l.sched(i))/l.interval)+1, len(l.wires)-i, leanMaxHTTP)
}

// send writes POST i on an idle connection of its node, timestamped right
// before the write; it reports whether the POST is in flight, or blocked
// (not sent yet) when its node has no idle connection. Then it asks the
// dialer for connections, as many as the due POSTs (waiting, counting
// this one) exceed the dials under way, within the bound: the POST goes
// on whichever comes first, an answered connection or a new one.
func (l *leanLoop) send(i, due int) (sent, blocked bool) {
	k := l.poolOf[i%len(l.poolOf)]
	p := l.pools[k]
	var h *leanConn
	if n := len(p.idle); n > 0 {
		h, p.idle = p.idle[n-1], p.idle[:n-1]
	} else if l.dialFailed > 0 {
		l.dialFailed-- // a failed dial: the POST that waited for it is not sent (counted in the errors)
		return false, false
	} else {
		for p.dialing < due && p.n+p.dialing < leanMaxHTTP {
			l.askDial(k, i)
		}
		return false, true
	}
	t := time.Now().UnixNano()
	l.sentAt[i] = t
	if i < l.warm {
		l.w.Queued = append(l.w.Queued, t-l.sched(i))
	} else {
		l.late = append(l.late, t-l.sched(i))
	}
	wire := l.wires[i]
	m, _, err := rawsys.WriteNB(h.fd, wire, rawsys.Raw)
	if err != nil || m < len(wire) {
		// An idle keep-alive socket's send buffer is empty: a request of
		// about a kilobyte is written whole or the connection is broken.
		l.fail(fmt.Sprintf("write: %d of %d bytes, %v", m, len(wire), err))
		l.drop(h)
		return false, false
	}
	h.post = i
	return true, false
}

// drop closes a broken HTTP connection.
func (l *leanLoop) drop(h *leanConn) {
	syscall.Close(h.fd)
	l.conns[h.fd] = nil
	l.pools[h.entry].n--
}

// readAnswers reads an HTTP connection's answer; it reports whether the
// POST in flight on it ended (answered, or the connection broke).
func (l *leanLoop) readAnswers(h *leanConn) bool {
	n, again, err := rawsys.ReadNB(h.fd, l.rbuf)
	now := time.Now().UnixNano()
	if again {
		return false
	}
	if err != nil {
		ended := h.post >= 0
		if ended {
			l.fail("answer: " + err.Error())
		}
		l.drop(h)
		return ended
	}
	h.buf = append(h.buf, l.rbuf[:n]...)
	status, size, perr := httpread.Parse(h.buf)
	switch {
	case perr != nil:
		l.fail(perr.Error())
	case size == 0:
		if len(h.buf) > leanMaxFrame {
			l.fail("answer: head too long")
			break
		}
		return false // not whole yet
	case h.post < 0:
		l.fail("an answer with no request in flight")
	case size < len(h.buf):
		l.fail("bytes after the answer")
	default:
		i := h.post
		h.post, h.buf = -1, h.buf[:0]
		if status/100 != 2 {
			l.fail(fmt.Sprintf("POST %d", status))
		} else {
			l.ok++
			if i < l.warm {
				l.w.Lat = append(l.w.Lat, now-l.sched(i))
			} else {
				l.answered = append(l.answered, now-l.sched(i))
			}
		}
		l.pools[h.entry].idle = append(l.pools[h.entry].idle, h)
		return true
	}
	ended := h.post >= 0
	l.drop(h)
	return ended
}

// readFrames reads a WebSocket connection's frames (server frames are not
// masked) and records each POST's latencies from the read's timestamp.
func (l *leanLoop) readFrames(lc *leanConn) {
	n, stamp, again, err := l.recvStamped(lc.fd)
	now := time.Now().UnixNano()
	if again {
		return
	}
	if err != nil {
		l.wsEnd("frame read: " + err.Error())
		return
	}
	lc.buf = append(lc.buf, l.rbuf[:n]...)
	for {
		payload, size, ferr := parseFrame(lc.buf)
		if ferr != nil {
			l.wsEnd(ferr.Error())
			return
		}
		if size == 0 {
			if len(lc.buf) > leanMaxFrame {
				l.wsEnd("frame too long")
			}
			return
		}
		l.frames++
		if t := parseT(payload); t >= l.start && (t-l.start)%l.interval == 0 {
			i := (t - l.start) / l.interval
			if i < int64(l.warm) {
				l.w.Frames = append(l.w.Frames, now-t)
				if l.sentAt[i] > 0 {
					l.w.FromSend = append(l.w.FromSend, now-l.sentAt[i])
				}
				lc.buf = lc.buf[:copy(lc.buf, lc.buf[size:])]
				continue
			}
			l.frameLat = append(l.frameLat, now-t)
			if now-t > int64(slowFrame) && len(l.slow) < maxSlow {
				var after int64 // from the POST's write to the frame at the socket (or its read)
				if i < int64(len(l.sentAt)) && l.sentAt[i] > 0 {
					after = cmp.Or(stamp, now) - l.sentAt[i]
				}
				l.slow = append(l.slow, [3]int64{t - l.sched(l.warm), now - t, after})
			}
			if i < int64(len(l.sentAt)) && l.sentAt[i] > 0 {
				l.fromSend = append(l.fromSend, now-l.sentAt[i])
			}
			if stamp > 0 {
				l.atSocket, l.readDelay = append(l.atSocket, stamp-t), append(l.readDelay, now-stamp)
			}
		}
		lc.buf = lc.buf[:copy(lc.buf, lc.buf[size:])]
	}
}

// recvStamped is one recvmsg(2) of a non-blocking WebSocket socket into
// l.rbuf, with the kernel's receive timestamp (unix ns; 0 when none came)
// of the last segment it read: when the frame was in the client's socket,
// before the client's thread woke to read it. A read of nothing is io.EOF.
func (l *leanLoop) recvStamped(fd int) (n int, stamp int64, again bool, err error) {
	l.iov.Base = &l.rbuf[0]
	l.iov.SetLen(len(l.rbuf))
	l.msg.Iov, l.msg.Iovlen = &l.iov, 1
	l.msg.Control = &l.cbuf[0]
	l.msg.SetControllen(len(l.cbuf))
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&l.msg)), 0)
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, 0, true, nil
		default:
			return 0, 0, false, e
		}
		if r == 0 {
			return 0, 0, false, io.EOF
		}
		return int(r), l.stamp(), false, nil
	}
}

// stamp finds SCM_TIMESTAMPNS in the control bytes recvmsg returned.
func (l *leanLoop) stamp() int64 {
	cb := l.cbuf[:l.msg.Controllen]
	const hdr = int(unsafe.Sizeof(syscall.Cmsghdr{}))
	for len(cb) >= hdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&cb[0]))
		size := int(h.Len)
		if size < hdr || size > len(cb) {
			return 0
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && size >= hdr+int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&cb[hdr]))
			return ts.Nano()
		}
		cb = cb[min(len(cb), syscall.CmsgSpace(size-hdr)):]
	}
	return 0
}

func (l *leanLoop) wsEnd(why string) {
	l.wsEnded++
	l.fail(why)
}

// parseFrame finds the first whole server frame in b: its payload and
// its size, or size 0 when it is not whole yet. A close frame, a masked
// frame or reserved bits are an error.
func parseFrame(b []byte) (payload []byte, size int, err error) {
	if len(b) < 2 {
		return nil, 0, nil
	}
	op, ln, h := b[0]&0x0f, int(b[1]&0x7f), 2
	switch {
	case b[0]&0x70 != 0 || b[1]&0x80 != 0:
		return nil, 0, fmt.Errorf("bad frame header % x", b[:2])
	case op == 0x8:
		return nil, 0, errors.New("close frame")
	case ln == 127:
		return nil, 0, errors.New("frame over 64 KiB")
	case ln == 126:
		if len(b) < 4 {
			return nil, 0, nil
		}
		ln, h = int(b[2])<<8|int(b[3]), 4
	}
	if len(b) < h+ln {
		return nil, 0, nil
	}
	return b[h : h+ln], h + ln, nil
}

// sysEpollPwait2 is epoll_pwait2(2) (Linux 5.11), the same number on every
// architecture; package syscall does not name it.
const sysEpollPwait2 = 441

// epollWaitNS waits up to timeout ns (0: not at all) for ep's events:
// epoll_pwait2, whose timeout is a timespec, or epoll_wait rounded up to
// the millisecond on a kernel without it. It blocks through the
// scheduler's system-call state.
func epollWaitNS(ep int, evs []syscall.EpollEvent, timeout int64) (int, error) {
	timeout = max(timeout, 0)
	ts := syscall.NsecToTimespec(timeout)
	r, _, e := syscall.Syscall6(sysEpollPwait2, uintptr(ep), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
	if e == syscall.ENOSYS {
		return syscall.EpollWait(ep, evs, int((timeout+999_999)/1_000_000))
	}
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
