package gateway

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/mono"
)

// Limits API Gateway enforces on client messages.
const (
	maxFrameBytes   = 32 * 1024
	maxMessageBytes = 128 * 1024
)

// conn is one accepted WebSocket connection.
//
// Goroutines: at most one goroutine owns reading the socket (c.reading): a
// read turn while bytes arrive, or a blocking reader (see startReading);
// it ends the connection (finish) when reading fails. Writing (c.writing)
// is owned by the sender writing inline, by a write turn of the gateway's
// flusher (group publishes, flush.go) or by at most one writer goroutine
// (writeLoop), started on demand when a frame is queued and gone when the
// queue is empty. So an idle plaintext connection on Linux costs no
// goroutine and no buffers. Everything else only queues (Send, Close)
// under mu.
type conn struct {
	nc net.Conn
	s  session

	br0 *bufio.Reader // bytes that arrived with the handshake, if any

	// The message being assembled from fragments; only the goroutine that
	// owns reading (c.reading) touches these.
	msg   []byte
	msgOp ws.OpCode
	inMsg bool
	// closeSent: our close frame is queued or written (under mu; here,
	// not beside state, where it took a word of its own).
	closeSent bool
	pollGen   uint32 // the poller's generation of this socket's registration

	next   *conn        // the next connection waiting for a write turn (flusher)
	spare  [][]byte     // the previous batch's slice, reused
	reason *closeReason // why it closes, once state >= closing (kept out of line: an open connection has none)

	// What a single send (Send, sendData) reads and writes, from here to
	// fullSince, kept together: a POST to a connection touches its struct
	// from another goroutine, often on another core, and each cache line
	// more is one more miss (BENCHMARKS.md, session 14).
	gw         *Gateway
	rc         syscall.RawConn // nil when nc is not a socket (then writes always go through writeLoop)
	lastActive atomic.Int64    // the stamp (clock.go) of the last data frame either way

	mu sync.Mutex
	// cond is signalled (L = &mu) when the writer goroutine exits or a
	// route invocation ends; made by the first wait (waitLocked): most
	// connections never wait, and a sync.Cond is 56 of a conn's bytes.
	cond  *sync.Cond
	queue [][]byte
	// Frames and bytes not yet written count against the queue bound:
	// queued are those in queue, flight those of the batch being written.
	queued      int
	flight      int
	flightBytes int
	pongAt      int // 1 + the index in queue of the pending pong; 0 when none
	// inflight counts this connection's route invocations running, at most
	// maxInflight (maxInflightPerConnection when it connected).
	inflight, maxInflight int32
	wfd                   int32 // 1 + the socket's descriptor, for the flusher's writes (sockFD); read by newConn, 0 or -1 when there is none
	writing               bool
	reading               bool // a goroutine owns reading (a read turn or a blocking reader)
	blocking              bool // reading stays with a goroutine: never back to the poller
	state                 connState
	// fullSince is when a data frame was first refused for the bound since
	// the queue last drained (mono.Since); zero when nothing was refused.
	fullSince time.Duration
}

type connState uint8

const (
	stateOpen connState = iota
	stateClosing
	stateClosed
)

var _ hub.Backlogger = (*conn)(nil)

func (c *conn) ID() string { return c.s.connectionID }

func (c *conn) logger() *slog.Logger {
	return c.gw.log.With("connectionId", c.s.connectionID)
}

// touch records activity: one read of the monotonic clock, one store.
func (c *conn) touch() { c.lastActive.Store(stamp()) }

// Info implements hub.Conn.
func (c *conn) Info() hub.Info {
	return hub.Info{
		ConnectionID: c.s.connectionID,
		ConnectedAt:  c.s.connected(),
		LastActiveAt: wallAt(c.lastActive.Load()),
		SourceIP:     c.s.identity.SourceIP,
		UserAgent:    c.s.identity.UserAgent,
	}
}

// Send implements hub.Conn: it queues a data frame and never blocks.
func (c *conn) Send(m *hub.Message) error {
	return c.send(m.Frame(dataFrame), true, !m.Fanout())
}

// sendData sends data as one data frame, as Send does with a Message of
// it, for a single send (PostToConnection) that builds no Message: the
// frame is encoded into a pooled buffer, which goes back to the pool when
// it was written whole inline or refused (the usual case: the connection
// was idle), and stays the queue's otherwise.
func (c *conn) sendData(data []byte) error {
	fb := frameBufs.Get().(*[]byte)
	frame := appendDataFrame((*fb)[:0], data)
	kept, err := c.sendKept(frame, true, true)
	if !kept && cap(frame) <= maxPooledFrame {
		*fb = frame[:0]
		frameBufs.Put(fb)
	}
	return err
}

// frameBufs holds single sends' frame buffers (sendData). maxPooledFrame
// bounds what it keeps: larger frames are allocated each time, as a
// Message's frame is.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledFrame = 4 << 10

// enqueue sends a frame the gateway makes (answers, error frames, control
// frames), inline when the connection is idle.
func (c *conn) enqueue(frame []byte, data bool) error { return c.send(frame, data, true) }

// send adds an encoded frame. data marks data frames, which count for the
// idle timer and are refused at the queue bound (the few control frames,
// at most one pong and one close, always fit but are counted). inline
// lets an idle connection's frame be written in the caller's goroutine.
func (c *conn) send(frame []byte, data, inline bool) error {
	_, err := c.sendKept(frame, data, inline)
	return err
}

// sendKept is send that also reports whether frame (or its rest) was
// queued, and so is not the caller's to reuse.
func (c *conn) sendKept(frame []byte, data, inline bool) (kept bool, err error) {
	c.mu.Lock()
	if err := c.admitLocked(len(frame), data, inline); err != nil {
		return false, err
	}
	kept = c.writeOrQueueLocked(frame, inline)
	if data {
		c.touch()
		c.gw.stats.messagesOut.Add(1)
	}
	return kept, nil
}

// admitLocked refuses a frame of n bytes to a connection that is not open
// (hub.ErrGone) or, for a data frame, whose queue is full
// (hub.ErrQueueFull, counted; closed as a slow consumer once refused for
// slowConsumerSeconds): then it unlocks c.mu. inline says the frame is a
// single send (counted as queueFull), not a group publish's. c.mu is held.
func (c *conn) admitLocked(n int, data, inline bool) error {
	if c.state != stateOpen {
		c.mu.Unlock()
		return hub.ErrGone
	}
	if !data || !c.fullLocked(n) {
		return nil
	}
	slow := false
	now := mono.Since()
	if c.fullSince == 0 {
		c.fullSince = now
	} else if now-c.fullSince > c.gw.current().cfg.SlowConsumer() {
		slow = true
	}
	c.mu.Unlock()
	if inline {
		c.gw.stats.queueFull.Add(1)
	} else {
		c.gw.stats.groupSkipped.Add(1)
	}
	if slow {
		c.closeWith(closeSlowConsumer)
	}
	return hub.ErrQueueFull
}

// fullLocked reports whether a data frame of n bytes must be refused: the
// frames or bytes not yet written (queued, or in the batch being written)
// are at outboundQueueFrames or would pass outboundQueueBytes. A frame
// always fits a connection with nothing pending, so one message larger
// than the byte bound still goes out.
func (c *conn) fullLocked(n int) bool {
	frames := len(c.queue) + c.flight
	if frames == 0 {
		return false
	}
	cfg := &c.gw.current().cfg // limits apply as reloaded
	return frames >= cfg.OutboundQueueFrames ||
		c.queued+c.flightBytes+n > cfg.OutboundQueueBytes
}

// Backlogged implements hub.Backlogger: more than half of
// outboundQueueFrames or outboundQueueBytes is taken by frames not yet
// written, and the connection is open.
func (c *conn) Backlogged() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return false
	}
	cfg := &c.gw.current().cfg
	return len(c.queue)+c.flight > cfg.OutboundQueueFrames/2 ||
		c.queued+c.flightBytes > cfg.OutboundQueueBytes/2
}

// writeOrQueueLocked writes frame inline when inline is allowed and the
// connection is idle (nothing queued, no writer), else queues it: for the
// write turn already held, or a new one, from the flusher for a socket
// (a group publish's frame) or the writer goroutine. It unlocks c.mu.
// kept: frame (or its rest) was queued, not the caller's to reuse.
func (c *conn) writeOrQueueLocked(frame []byte, inline bool) (kept bool) {
	c.countOut(frame)
	if inline && !c.writing && len(c.queue) == 0 && c.rc != nil {
		// Idle connection: write inline with one non-blocking syscall, no
		// goroutine hand-off (lower latency for a single send).
		c.writing = true
		c.mu.Unlock()
		return c.writeInline(frame)
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	if c.writing {
		c.mu.Unlock() // the writer in charge takes it
		return true
	}
	c.writing = true
	c.mu.Unlock()
	if c.rc != nil {
		c.gw.flush.add(c) // a group publish's frame: the flusher writes it
	} else {
		go c.writeLoop()
	}
	return true
}

// countOut counts a frame going out in the gateway's Stats.
func (c *conn) countOut(frame []byte) {
	c.gw.stats.framesOut.Add(1)
	c.gw.stats.bytesOut.Add(uint64(len(frame)))
}

// pushCountedLocked counts a frame going out and queues it.
func (c *conn) pushCountedLocked(frame []byte) {
	c.countOut(frame)
	c.pushLocked(frame)
}

// pushLocked appends a frame to the queue and starts the writer.
func (c *conn) pushLocked(frame []byte) {
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	c.startWriterLocked()
}

// pong answers a ping. At most one pong waits in the queue: a newer ping
// replaces the waiting pong's payload (RFC 6455 5.5.3 allows answering
// only the most recent ping), so a client that pings hard and never reads
// holds one small frame, not one per ping.
func (c *conn) pong(p []byte) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	if c.pongAt > 0 {
		i := c.pongAt - 1
		old := c.queue[i]
		c.queue[i] = appendFrame(old[:0], ws.OpPong, p) // not being written: the writer has not taken it
		c.queued += len(c.queue[i]) - len(old)
		c.mu.Unlock()
		return
	}
	frame := appendFrame(make([]byte, 0, 2+len(p)), ws.OpPong, p)
	if !c.writing && len(c.queue) == 0 && c.rc != nil {
		c.writeOrQueueLocked(frame, true)
		return
	}
	c.pushCountedLocked(frame)
	c.pongAt = len(c.queue)
	c.mu.Unlock()
}

// writeInline writes frame without blocking, in the caller's goroutine,
// while c.writing keeps the writer goroutine out: one write(2) on the
// socket's descriptor, as the flusher writes it (sockFD). What the socket
// does not take at once goes to the head of the queue for the writer
// goroutine. kept: frame (its rest) is queued, not to be reused.
func (c *conn) writeInline(frame []byte) (kept bool) {
	var (
		n   int
		err error
	)
	if fd, ok := c.sockFD(); ok {
		n, err = writeInlineFD(fd, frame)
	}
	c.mu.Lock()
	if err != nil {
		c.mu.Unlock()
		c.writeFailed(err)
		return false
	}
	if n < len(frame) {
		kept = true
		c.queue = append(c.queue, nil)
		copy(c.queue[1:], c.queue)
		c.queue[0] = frame[n:]
		c.queued += len(frame) - n
		if c.pongAt > 0 {
			c.pongAt++
		}
	}
	if len(c.queue) > 0 {
		go c.writeLoop() // c.writing stays true: the writer takes over
	} else {
		c.writing = false
		c.fullSince = 0
		c.broadcastLocked()
	}
	c.mu.Unlock()
	return kept
}

// writeScratch is writev's scratch for the iovecs, pooled for the writer
// goroutines and kept by each flusher goroutine.
type writeScratch struct{ iov iovecs }

var writeScratches = sync.Pool{New: func() any { return new(writeScratch) }}

func (c *conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// writeLoop writes every queued frame, batched into one writev per turn,
// until the queue is empty.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 {
			closing := c.state != stateOpen && c.closeSent
			if !closing {
				// Clear this writer's deadline before an inline write can
				// run: RawConn.Write checks it first, and a stale one would
				// fail the next frame of a healthy connection at once.
				_ = c.nc.SetWriteDeadline(time.Time{})
			}
			c.writing = false
			c.fullSince = 0 // drained
			c.broadcastLocked()
			c.mu.Unlock()
			if closing {
				c.afterCloseSent()
			}
			return
		}
		c.queue = c.spare[:0]
		c.flight, c.flightBytes = len(batch), c.queued
		c.queued, c.pongAt = 0, 0
		open := c.state == stateOpen
		c.mu.Unlock()

		err := c.writeBatch(batch, open)
		clear(batch)
		c.mu.Lock()
		c.spare = batch[:0]
		c.flight, c.flightBytes = 0, 0
		c.mu.Unlock()
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// writeBatch writes the frames with writev (writeAll: maxIOV at a time). While the connection is open
// each attempt gets writeTimeout and an attempt that wrote something is
// retried, so only writeTimeout without progress fails it; once closing,
// the whole batch gets closeWait (set by closeWith or here), so a client
// that trickles cannot hold a closing connection.
func (c *conn) writeBatch(batch [][]byte, open bool) error {
	bufs := net.Buffers(batch)
	for {
		if open {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.gw.current().cfg.WriteTimeout()))
		} else {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.gw.closeWait))
		}
		var n int64
		var err error
		if c.rc != nil {
			w := writeScratches.Get().(*writeScratch)
			n, err = writeAll(c.nc, c.rc, &bufs, &w.iov)
			writeScratches.Put(w)
		} else {
			n, err = bufs.WriteTo(c.nc)
		}
		if err == nil || n == 0 || !open || !isTimeout(err) {
			return err
		}
		c.mu.Lock()
		open = c.state == stateOpen
		c.mu.Unlock()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeFailed drops the socket after a failed write. A write that made no
// progress for writeTimeoutSeconds while data frames were being refused
// for the queue bound is a slow consumer (1008); otherwise the client is
// gone or stalled (1006).
func (c *conn) writeFailed(err error) {
	c.mu.Lock()
	c.writing = false
	c.queue = nil
	c.queued, c.pongAt = 0, 0
	c.broadcastLocked()
	reason := closeAbnormal
	if isTimeout(err) {
		reason = closeWriteTimeout
		if c.fullSince != 0 {
			reason = closeSlowConsumer
		}
	}
	if c.state == stateOpen {
		c.state = stateClosing
		c.reason = &reason
	}
	c.mu.Unlock()
	c.unpoll()
	_ = c.nc.Close()
	c.wake() // the reader sees the error and finishes
}

// Close implements hub.Conn: it queues a close frame; the socket closes
// once the client answers it or closeWait passes.
func (c *conn) Close(r hub.CloseReason) { c.closeWith(r) }

func (c *conn) closeWith(r closeReason) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	c.state = stateClosing
	c.reason = &r
	c.closeSent = true
	c.pushCountedLocked(closeFrame(r.Code, r.Reason))
	c.mu.Unlock()
	// A client that is not reading cannot take the close frame either:
	// cut a write in progress after closeWait instead of writeTimeout.
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.gw.closeWait))
}

// afterCloseSent runs in the writer once our close frame is written: give
// the client closeWait to answer with its own, then drop the socket.
func (c *conn) afterCloseSent() {
	// Woken first: a reader lingering for the next message (linger) then
	// sees blocking set and leaves this deadline alone.
	c.wake() // an idle connection's reader waits in the poller, which has no deadline
	_ = c.nc.SetReadDeadline(time.Now().Add(c.gw.closeWait))
}

// Reading. A plain socket on Linux has no goroutine while idle: it waits
// in the poller (poll_linux.go), and each time it turns readable a read
// turn (readTurn) runs on a pooled goroutine, reads the frames that are
// there and re-arms it. Everything else (TLS, other systems, a socket
// epoll refused) and every connection once it closes has a blocking
// reader: a goroutine that waits for readability itself (readLoop).
// c.reading says a goroutine owns reading; there is never more than one.

// startReading begins reading a connection after its handshake.
func (c *conn) startReading() {
	p := getPoller()
	if p == nil || c.rc == nil {
		if c.takeReading(true) {
			go c.readTurn(true)
		}
		return
	}
	turn := c.br0 != nil // bytes came with the handshake: read them now
	c.mu.Lock()
	if c.reading {
		c.mu.Unlock()
		return // woken already (closed during the handshake): a blocking reader runs
	}
	c.reading = turn // an event during that turn is ignored; the turn re-arms
	c.mu.Unlock()
	if p.add(c) {
		if turn {
			c.gw.readers.Go(c.readTurnNow)
		}
		return
	}
	// Not in the poller: a blocking reader.
	if turn {
		c.mu.Lock()
		c.blocking = true
		c.mu.Unlock()
		go c.readTurn(false)
	} else if c.takeReading(true) {
		go c.readTurn(true)
	}
}

// readable is the poller's event: run a read turn unless a goroutine
// already reads.
func (c *conn) readable() {
	if c.takeReading(false) {
		c.gw.readers.Go(c.readTurnNow)
	}
}

func (c *conn) readTurnNow() { c.readTurn(false) }

// takeReading reports whether the caller is to read the connection (false:
// a goroutine already does); blocking makes reading stay with a goroutine
// from now on.
func (c *conn) takeReading(blocking bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocking = c.blocking || blocking
	if c.reading {
		return false
	}
	c.reading = true
	return true
}

// wake hands the connection to a blocking reader, for what only a reader
// notices: a read deadline (the close handshake's) or a socket closed
// under it.
func (c *conn) wake() {
	if c.takeReading(true) {
		go c.readTurn(true)
	}
}

// unpoll takes the socket out of the poller; called before it is closed.
func (c *conn) unpoll() {
	if thePoller != nil && c.rc != nil {
		thePoller.remove(c)
	}
}

// readLoop reads the connection with a blocking reader in the calling
// goroutine until it ends.
func (c *conn) readLoop() {
	if c.takeReading(true) {
		c.readTurn(true)
	}
}

// readTurn reads frames until the buffer is empty, then gives the socket
// back to the poller, or, for a blocking reader, waits for more. wait
// means the socket may have nothing to read yet.
func (c *conn) readTurn(wait bool) {
	for {
		if c.readFrames(wait) {
			return // ended: finish ran
		}
		wait = true
		if c.linger() {
			wait = false // bytes are there
			continue
		}
		c.mu.Lock()
		if c.blocking {
			c.mu.Unlock()
			continue
		}
		c.reading = false
		c.mu.Unlock()
		if thePoller.arm(c) {
			return
		}
		// The socket was closed or taken out of the poller: stay and read
		// it to its error, unless a woken reader already does.
		if !c.takeReading(true) {
			return
		}
	}
}

// readLinger is how long a connection the poller handed to a read turn
// keeps its goroutine waiting for more, in the runtime's poller, before it
// goes back to the gateway's: an active client's next message then costs
// no hand-off from the poller goroutine and no epoll_ctl to re-arm (about
// a third of a mock route's round trip), and an idle connection still holds
// no goroutine once readLinger has passed.
const readLinger = 200 * time.Millisecond

// lingerPerCore is how many read turns may linger at once per GOMAXPROCS
// (lingerBound). A lingering turn holds a goroutine and its stack (4 KB,
// more once grown) and, while it waits, nothing else: the bound is what
// a burst of messages from distinct connections (a join burst: N
// messages a second would hold N × readLinger goroutines) may hold, about
// 600 KB of stacks per core, while up to 128 clients a core that send
// back to back (the route benchmark's 128 connections on two cores) all
// keep their linger.
const lingerPerCore = 128

// poolIdlePerCore is how many goroutines each of the gateway's pools
// (read turns, route invocations) keeps idle per GOMAXPROCS, at most:
// once the lingering turns are bounded, a burst's turns that outlast it
// are few and short, and one that ends while this many wait exits rather
// than wait 5 to 10 s with its stack (gopool.NewMaxIdle).
const poolIdlePerCore = lingerPerCore

// lingerBound counts the read turns lingering (conn.linger) and bounds
// them: a turn past max goes straight back to the poller, as one whose
// linger ran out does.
type lingerBound struct {
	n   atomic.Int32 // turns lingering now
	max atomic.Int32 // lingerPerCore × GOMAXPROCS at New (atomic: tests set it)
	d   atomic.Int64 // readLinger (atomic: tests set it)
}

func newLingerBound() *lingerBound {
	b := &lingerBound{}
	b.max.Store(int32(lingerPerCore * runtime.GOMAXPROCS(0)))
	b.d.Store(int64(readLinger))
	return b
}

// enter takes a lingering turn's place; false: max turns linger already.
func (b *lingerBound) enter() bool {
	if b.n.Add(1) > b.max.Load() {
		b.n.Add(-1)
		return false
	}
	return true
}

func (b *lingerBound) leave() { b.n.Add(-1) }

// linger waits up to readLinger for the socket to turn readable and
// reports whether it did (data, EOF or an error to read). Only a poller's
// connection lingers; a blocking reader (closing, TLS) waits in readFrames.
// At most the gateway's lingerBound turns linger at once; the others
// report false at once.
func (c *conn) linger() bool {
	if thePoller == nil || c.rc == nil {
		return false
	}
	c.mu.Lock()
	blocking := c.blocking
	c.mu.Unlock()
	if blocking || !c.gw.linger.enter() {
		return false
	}
	defer c.gw.linger.leave()
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Duration(c.gw.linger.d.Load())))
	err := waitReadable(c.nc)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.blocking {
		// Cleared under the lock: a closing connection sets blocking (wake)
		// before its own read deadline (afterCloseSent), never after.
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	return err == nil
}

// readFrames reads the frames the socket has (waiting for the first byte
// when wait is set) and handles them. It reports true once the connection
// has ended: then it has closed it and run finish.
func (c *conn) readFrames(wait bool) (ended bool) {
	br, err := c.acquireReader(wait)
	var reason closeReason
	if err == nil {
		reason, err = c.readBuffered(br)
		c.releaseReader(br)
	}
	if err == nil && reason.Code == 0 {
		return false
	}
	if reason.Code != 0 {
		c.closeWith(reason)
		// Wait (bounded by closeWait) for the client's close frame or EOF.
		c.drain()
	}
	c.finish(err)
	return true
}

// readBuffered handles frames until br has nothing buffered. A message
// split over frames, or over turns, is assembled in c.msg; a whole
// message that fits the buffer is handled in place.
func (c *conn) readBuffered(br *bufio.Reader) (reason closeReason, err error) {
	for {
		var h ws.Header
		h, err = readHeader(br)
		if errors.Is(err, errLengthMSB) {
			return closeProtocol, nil
		}
		if err != nil {
			return reason, err
		}
		if r, bad := c.checkHeader(h, c.inMsg, len(c.msg)); bad {
			return r, nil
		}
		c.gw.stats.framesIn.Add(1)
		c.gw.stats.bytesIn.Add(uint64(h.Length) + uint64(ws.HeaderSize(h)))
		switch {
		case h.OpCode.IsControl():
			// At most 125 bytes, read in place from br's buffer.
			var p []byte
			if p, err = br.Peek(int(h.Length)); err != nil {
				return reason, err
			}
			ws.Cipher(p, h.Mask, 0)
			done := c.control(h.OpCode, p)
			_, _ = br.Discard(len(p))
			if done {
				return reason, io.EOF
			}
		case h.Fin && h.OpCode != ws.OpContinuation && h.Length <= int64(br.Size()):
			// A whole message that fits the buffer: no copy of our own.
			var p []byte
			if p, err = br.Peek(int(h.Length)); err != nil {
				return reason, err
			}
			ws.Cipher(p, h.Mask, 0)
			r, bad := c.message(h.OpCode, p)
			_, _ = br.Discard(len(p))
			if bad {
				return r, nil
			}
		default:
			if h.OpCode != ws.OpContinuation {
				c.msgOp, c.inMsg = h.OpCode, true
				c.msg = c.msg[:0]
			}
			n := len(c.msg)
			c.msg = grow(c.msg, int(h.Length))
			if _, err = io.ReadFull(br, c.msg[n:]); err != nil {
				return reason, err
			}
			ws.Cipher(c.msg[n:], h.Mask, 0)
			if h.Fin {
				c.inMsg = false
				r, bad := c.message(c.msgOp, c.msg)
				c.msg = nil // an idle connection holds no message buffer
				if bad {
					return r, nil
				}
			}
		}
		if br.Buffered() == 0 {
			return reason, nil
		}
	}
}

// checkHeader applies RFC 6455 and API Gateway's limits to a frame header.
func (c *conn) checkHeader(h ws.Header, inMsg bool, msgLen int) (closeReason, bool) {
	switch {
	case h.Rsv != 0, !h.Masked:
		return closeProtocol, true
	case h.OpCode == ws.OpPing, h.OpCode == ws.OpPong, h.OpCode == ws.OpClose:
		if !h.Fin || h.Length > 125 {
			return closeProtocol, true
		}
	case h.OpCode == ws.OpContinuation:
		if !inMsg {
			return closeProtocol, true
		}
	case h.OpCode == ws.OpText || h.OpCode == ws.OpBinary:
		if inMsg {
			return closeProtocol, true
		}
		if h.OpCode == ws.OpBinary && c.gw.current().cfg.BinaryFrames != "base64" {
			return closeBinary, true
		}
	default: // reserved: 0x3-0x7 and control 0xB-0xF
		return closeProtocol, true
	}
	if !h.OpCode.IsControl() {
		if h.Length > maxFrameBytes || int64(msgLen)+h.Length > maxMessageBytes {
			return closeTooBig, true
		}
	}
	return closeReason{}, false
}

// control handles ping, pong and close; done means the connection ends.
func (c *conn) control(op ws.OpCode, p []byte) (done bool) {
	switch op {
	case ws.OpPing:
		c.pong(p)
	case ws.OpClose:
		r := closeNoStatus
		if len(p) >= 2 {
			code := int(p[0])<<8 | int(p[1])
			r = closeReason{Code: code, Reason: string(p[2:]), Label: "client_close"}
			if !utf8.Valid(p[2:]) || !validCloseCode(code) {
				r = closeProtocol
			}
		} else if len(p) == 1 {
			r = closeProtocol
		}
		c.mu.Lock()
		if c.state == stateOpen {
			// The client closes: echo its code (RFC 6455 5.5.1), then close
			// the socket once the echo is written.
			c.state = stateClosing
			c.reason = &r
			c.closeSent = true
			if r.Code == closeNoStatus.Code {
				c.pushCountedLocked(controlFrame(ws.OpClose, nil))
			} else {
				c.pushCountedLocked(closeFrame(r.Code, ""))
			}
		}
		c.mu.Unlock()
		c.waitWriter()
		return true
	}
	return false
}

func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// message handles a complete data message.
func (c *conn) message(op ws.OpCode, msg []byte) (closeReason, bool) {
	c.touch()
	var body string
	b64 := false
	if op == ws.OpBinary {
		body, b64 = base64.StdEncoding.EncodeToString(msg), true
	} else {
		if !utf8.Valid(msg) {
			return closeInvalidUTF8, true
		}
		body = string(msg)
	}
	l := c.gw.acquire()
	key, rt := l.selectRoute(body, b64)
	if rt.inline() {
		// Nothing on the way blocks: no hand-off to a route worker.
		c.gw.route(c, l, key, rt, body, b64, len(msg))
		return closeReason{}, false
	}
	// Bound the invocations in flight: when full, stop reading this socket
	// (TCP pushes back on the client) until one finishes.
	c.mu.Lock()
	for c.inflight >= c.maxInflight {
		c.waitLocked()
	}
	c.inflight++
	c.mu.Unlock()
	c.gw.track.Add(1)
	c.gw.workers.Go(func() {
		defer c.invoked()
		c.gw.route(c, l, key, rt, body, b64, len(msg))
	})
	return closeReason{}, false
}

// waitLocked waits for the connection's condition (c.mu held).
func (c *conn) waitLocked() {
	if c.cond == nil {
		c.cond = sync.NewCond(&c.mu)
	}
	c.cond.Wait()
}

// broadcastLocked wakes whoever waits for the connection's condition
// (c.mu held).
func (c *conn) broadcastLocked() {
	if c.cond != nil {
		c.cond.Broadcast()
	}
}

// invoked ends a route invocation: one more may start.
func (c *conn) invoked() {
	c.mu.Lock()
	c.inflight--
	c.broadcastLocked()
	c.mu.Unlock()
	c.gw.track.Done()
}

// waitWriter waits until the writer has flushed the queue and exited. It is
// bounded because every write has a deadline (closeWait once closing).
func (c *conn) waitWriter() {
	c.mu.Lock()
	for c.writing {
		c.waitLocked()
	}
	c.mu.Unlock()
}

// drain reads and discards until the client's close frame, EOF or the
// close deadline, after we sent a close frame because of a bad frame.
func (c *conn) drain() {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.gw.closeWait))
	var buf [512]byte
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			return
		}
	}
}

// finish runs once, in the reader goroutine, when the connection is over:
// it closes the socket, takes the id out of the hub (so @connections
// answers 410 from now on) and fires $disconnect.
func (c *conn) finish(readErr error) {
	c.mu.Lock()
	for c.writing { // wait for the writer; closed below, in this critical section, so no turn starts after
		c.waitLocked()
	}
	var r closeReason
	if c.reason != nil {
		r = *c.reason
	}
	if c.state == stateOpen {
		r = closeAbnormal // EOF or reset without a close frame
	}
	c.state = stateClosed
	c.queue = nil
	c.queued, c.pongAt = 0, 0
	c.mu.Unlock()
	c.unpoll()
	_ = c.nc.Close()
	c.gw.hub.Unregister(c.s.connectionID)
	c.gw.conns.Add(-1)
	if r.Label == "" {
		r.Label = "client_close"
	}
	if c.gw.log.Enabled(context.Background(), slog.LevelDebug) {
		c.logger().Debug("connection closed", "code", r.Code, "reason", r.Label, "readError", readErr)
	}
	c.gw.disconnect(&c.s, r)
	c.gw.connWG.Done()
}

// grow extends b by n bytes, reusing its capacity.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n+len(b)/2)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// dataFrame encodes an unmasked, final data frame: text when the payload
// is valid UTF-8, binary otherwise. A text frame must hold UTF-8 (RFC 6455
// 5.6) and browsers fail the connection on one that does not, so bytes
// that are not text (a POST, a publish or a base64 route answer) go out
// as a binary frame (docs/compatibility.md).
func dataFrame(payload []byte) []byte {
	return appendDataFrame(make([]byte, 0, 10+len(payload)), payload)
}

// appendDataFrame appends payload's data frame to b (dataFrame).
func appendDataFrame(b, payload []byte) []byte {
	if utf8.Valid(payload) {
		return appendFrame(b, ws.OpText, payload)
	}
	return appendFrame(b, ws.OpBinary, payload)
}

// textFrame encodes an unmasked, final text frame; payload is UTF-8.
func textFrame(payload []byte) []byte { return controlFrame(ws.OpText, payload) }

// controlFrame encodes an unmasked, final frame of any opcode.
func controlFrame(op ws.OpCode, payload []byte) []byte {
	return appendFrame(make([]byte, 0, 10+len(payload)), op, payload)
}

// appendFrame appends an unmasked, final frame to b.
func appendFrame(b []byte, op ws.OpCode, payload []byte) []byte {
	n := len(payload)
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, payload...)
}

func closeFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := make([]byte, 2, 2+len(reason))
	p[0], p[1] = byte(code>>8), byte(code)
	return controlFrame(ws.OpClose, append(p, reason...))
}
