package gateway

import (
	"runtime"
	"sync"
	"time"

	"github.com/wsgate/wsgate/hub"
)

// flusher writes the frames a group publish queued, for every member, on
// at most GOMAXPROCS goroutines: a publish only queues the frame on each
// member (SendBlock) and lists the members that had nothing pending, a
// block at a time; the flusher's goroutines then give each listed
// connection a write turn (flush): one non-blocking write(2), or writev(2)
// of every frame queued by then, on its descriptor (sockFD).
//
// So a fan-out costs no goroutine per member and no write deadline (a
// non-blocking write needs none), spreads its writes over the cores as
// the raw-write floor does, and the frames of back-to-back publishes that
// reach a member before its turn go out in one writev. A socket that does
// not take the whole batch at once goes to the connection's writer
// goroutine (writeLoop, with writeTimeout), so a client that does not
// read never holds a flusher goroutine.
//
// In a burst (spell) the flusher leaves one P and some CPU to taking in
// the next publishes, so that more of their frames meet in each writev.
//
// The list is intrusive (conn.next): a connection is on it at most once,
// while c.writing is set for its turn, so it needs no memory of its own and
// is bounded by the connections.
type flusher struct {
	mu         sync.Mutex
	head, tail *conn // connections waiting for a write turn, in order
	running    int   // goroutines draining the list, at most spell.limit
	spell      spell // while running > 0
}

// spell is a flusher's busy spell, from the first connection listed on an
// empty list to the list's running dry: how many goroutines it may run
// (limit), and whether it is in a burst.
//
// A burst is a second group publish handed off before the list ran dry,
// until burstLinger has passed since the last one. While it lasts:
//   - The goroutines are one fewer than the Ps (but at least one). A P
//     with nothing to run waits in the runtime's network poller and takes
//     in the next publish (an HTTP call, a cluster peer's message) at
//     once; a P that keeps running looks at the network only every 10 ms
//     or so (the runtime's sysmon), and a publish's own helpers
//     (hub.Memory's parallel publish) need a P too.
//   - A goroutine that took a full chunk with more behind it yields its
//     thread (sched_yield(2)) after writing it, so a publisher or a peer
//     sharing the machine gets the CPU before its next 32 writes.
//   - That goroutine's thread is lowered by 10 nice levels (lowerThread)
//     until it returns: sched_yield only gives the CPU to what is
//     runnable on the same CPU, which in a cluster sharing a host is
//     often another node's flusher; a lowered thread lets every intake
//     and the clients run first (BENCHMARKS.md, session 19).
//   - Until the writes lag: a write turn that finds a quarter of the
//     connection's outbound bound queued (lagging) means the publishes
//     come in faster than the lowered goroutine writes them, and the
//     member's queue would fill and skip frames of a client that reads
//     all it is sent. The goroutine then raises its thread back and
//     neither yields nor lowers again until it returns (BENCHMARKS.md,
//     session 20: a closed-loop batched publisher lost 43–1,154 frames
//     of 1.2–1.7 million in 2 of 4 runs without this).
//
// Every publish taken in sooner queues its frame behind the ones still
// waiting for their turn, and they go out in one writev: fewer, fuller
// writes for the same deliveries (BENCHMARKS.md, session 18). A lone
// publish, or what is left when a burst is over, is written on every P.
type spell struct {
	procs  int          // GOMAXPROCS, read when the spell began
	last   *hub.Message // the publish handed off last: only to tell the next from it
	lastAt int64        // when (a stamp)
	burst  bool         // a second publish came in this spell
}

// burstLinger is how long a burst lasts after its last publish was handed
// off: about how long a P that keeps running may go without looking at
// the network.
const burstLinger = int64(10 * time.Millisecond)

// begin starts a spell on a machine of procs Ps.
func (s *spell) begin(procs int) { *s = spell{procs: procs} }

// handedOff notes the connections of group publish m listed at now (a
// stamp); m is nil for a single send.
func (s *spell) handedOff(m *hub.Message, now int64) {
	if m != nil && m != s.last {
		s.burst = s.burst || s.last != nil
		s.last, s.lastAt = m, now
	}
}

// inBurst reports whether the spell is in a burst at now.
func (s *spell) inBurst(now int64) bool { return s.burst && now-s.lastAt < burstLinger }

// limit is how many goroutines may drain the list at now.
func (s *spell) limit(now int64) int {
	if s.inBurst(now) {
		return max(1, s.procs-1)
	}
	return s.procs
}

// flushChunk is how many connections a flusher goroutine takes off the
// list at a time: one lock round trip per chunk, small enough that the
// goroutines share a publish evenly.
const flushChunk = 32

// add lists c for a write turn; c.writing is set (the turn owns writing).
func (f *flusher) add(c *conn) { f.addList(c, c, nil) }

// addList lists the connections from head to tail (linked by next) for
// write turns, in that order: one lock and at most one goroutine start for
// them all. Each one's c.writing is set. m is the group publish that
// queued their frames, nil for anything else.
func (f *flusher) addList(head, tail *conn, m *hub.Message) {
	f.mu.Lock()
	if f.tail == nil {
		f.head = head
	} else {
		f.tail.next = head
	}
	f.tail = tail
	if f.running == 0 {
		// Once per busy spell, not per member: GOMAXPROCS takes the
		// scheduler's lock.
		f.spell.begin(runtime.GOMAXPROCS(0))
	}
	now := stamp()
	f.spell.handedOff(m, now)
	start := f.running < f.spell.limit(now)
	if start {
		f.running++
	}
	f.mu.Unlock()
	if start {
		go f.run()
	}
}

// run gives the listed connections their write turns until the list is
// empty, or a burst wants fewer goroutines.
func (f *flusher) run() {
	var chunk [flushChunk]*conn
	w := writeScratches.Get().(*writeScratch) // for every writev of this goroutine
	defer writeScratches.Put(w)
	var raise func() bool // set while this goroutine's thread is lowered
	lag := false          // a write turn found its connection's queue lagging: no more lowering or yielding
	defer func() {
		if raise != nil {
			raise()
		}
	}()
	for {
		f.mu.Lock()
		now := stamp()
		limit := f.spell.limit(now)
		if f.running > limit {
			// A burst began: this goroutine's P goes to intake.
			f.running--
			f.mu.Unlock()
			return
		}
		n := 0
		for n < flushChunk && f.head != nil {
			c := f.head
			f.head, c.next = c.next, nil
			chunk[n] = c
			n++
		}
		if f.head == nil {
			f.tail = nil
		}
		if n == 0 {
			f.running--
			if f.running == 0 {
				f.spell = spell{} // over: the last publish is not kept
			}
			f.mu.Unlock()
			return
		}
		more := f.head != nil
		// A burst that is over leaves work behind: its P back to writing.
		start := more && f.running < limit
		if start {
			f.running++
		}
		yield := more && f.spell.inBurst(now)
		f.mu.Unlock()
		if start {
			go f.run()
		}
		for i, c := range chunk[:n] {
			if c.flush(&w.iov) {
				lag = true
			}
			chunk[i] = nil
		}
		if lag && raise != nil {
			ok := raise()
			raise = nil
			if !ok {
				// Still lowered (the process may not raise a
				// priority): a new goroutine, on an ordinary thread,
				// takes this one's place, and this thread ends.
				go f.run()
				return
			}
		}
		if yield && !lag {
			if raise == nil {
				raise = lowerThread()
			}
			osYield()
		}
	}
}

// flush is a connection's write turn from the flusher: it writes what is
// queued without blocking (iov: writev's scratch). c.writing is set and
// stays set for whoever continues: the flusher again when more frames
// arrived meanwhile, the writer goroutine when the socket did not take
// everything. It reports whether the turn found the queue lagging: a
// quarter of outboundQueueFrames or outboundQueueBytes waiting.
func (c *conn) flush(iov *iovecs) (lagging bool) {
	c.mu.Lock()
	batch := c.queue
	if len(batch) == 0 || c.state != stateOpen {
		// Closing (the writer knows how to finish a close) or nothing
		// to write.
		c.mu.Unlock()
		go c.writeLoop()
		return false
	}
	if cfg := &c.gw.current().cfg; 4*len(batch) >= cfg.OutboundQueueFrames || 4*c.queued >= cfg.OutboundQueueBytes {
		lagging = true
	}
	c.queue, c.spare = c.spare[:0], nil
	c.flight, c.flightBytes = len(batch), c.queued
	c.queued, c.pongAt = 0, 0
	c.mu.Unlock()

	var (
		frames, part int
		err          error
	)
	if fd, ok := c.sockFD(); ok {
		frames, part, err = writeNow(fd, batch, 0, iov)
	}
	if err != nil {
		c.mu.Lock()
		c.flight, c.flightBytes = 0, 0
		c.mu.Unlock()
		c.writeFailed(err)
		return lagging
	}
	c.mu.Lock()
	c.flight, c.flightBytes = 0, 0
	switch {
	case frames < len(batch):
		// The socket is full: the rest goes back to the head of the queue
		// for the writer goroutine, which waits with writeTimeout.
		k := copy(batch, batch[frames:])
		batch[0] = batch[0][part:]
		clear(batch[k:])
		queued := c.queue
		c.queue = append(batch[:k], queued...)
		clear(queued)
		c.spare = queued[:0]
		for _, b := range batch[:k] {
			c.queued += len(b)
		}
		if c.pongAt > 0 {
			c.pongAt += k
		}
		c.mu.Unlock()
		go c.writeLoop()
	case len(c.queue) > 0:
		// More frames arrived during the write: another turn.
		clear(batch)
		c.spare = batch[:0]
		c.mu.Unlock()
		c.gw.flush.add(c)
	default:
		clear(batch)
		c.spare = batch[:0]
		c.writing = false
		c.fullSince = 0
		c.broadcastLocked()
		c.mu.Unlock()
	}
	return lagging
}

// sockFD returns the socket's descriptor, which newConn read through
// RawConn.Control (false when it could not, or the connection is no
// socket: the frames then go to the writer goroutine).
// The flusher writes it directly, without RawConn.Write's reference
// counting and deadline checks (a non-blocking write needs no deadline):
// only the holder of the write turn calls sockFD or writes, and the socket
// is closed only while no turn is held and none can start (finish and
// writeFailed set a closing state in the same critical section), so the
// descriptor cannot be closed, or reused by another socket, under a write.
func (c *conn) sockFD() (uintptr, bool) { return uintptr(c.wfd - 1), c.wfd > 0 }

var _ hub.BlockSender = (*conn)(nil)

// SendBlock implements hub.BlockSender: a group publish's frame for a
// block of members. Each member gets the frame queued under its mutex, as
// Send queues it (the same bound and slow-consumer clock); the members
// that had nothing pending are listed with the flusher in one hand-off at
// the end of the block, and the gateway's counters and the members'
// activity clock are updated once per block, not per member.
func (c *conn) SendBlock(members []hub.Conn, m *hub.Message) hub.Delivery {
	b := fanBlock{frame: m.Frame(dataFrame), now: stamp(), msg: m}
	for _, mc := range members {
		switch k := mc.(type) {
		case nil:
		case *conn:
			b.add(k)
		default:
			if mc.Send(m) == nil {
				b.d.Delivered++
			} else {
				b.d.Skipped++
			}
		}
	}
	b.handOff()
	return b.d
}

// fanBlock is one SendBlock in progress.
type fanBlock struct {
	frame      []byte
	msg        *hub.Message
	now        int64    // the members' last activity (a stamp, clock.go)
	gw         *Gateway // of the members queued since the last hand-off
	head, tail *conn    // those of them that wait for a write turn
	queued     int      // frames queued since the last hand-off
	d          hub.Delivery
}

// add queues the frame on k.
func (b *fanBlock) add(k *conn) {
	if k.gw != b.gw {
		b.handOff() // a hub shared by gateways: each has its own flusher
		b.gw = k.gw
	}
	k.mu.Lock()
	if k.admitLocked(len(b.frame), true, false) != nil {
		b.d.Skipped++
		return
	}
	k.queue = append(k.queue, b.frame)
	k.queued += len(b.frame)
	turn := !k.writing // else the turn in progress writes it
	k.writing = true
	k.mu.Unlock()
	k.lastActive.Store(b.now)
	b.queued++
	b.d.Delivered++
	switch {
	case !turn:
	case k.rc == nil:
		go k.writeLoop()
	case b.tail == nil:
		b.head, b.tail = k, k
	default:
		b.tail.next, b.tail = k, k // k's turn is ours: nothing else links it
	}
}

// handOff counts the frames queued since the last hand-off and lists the
// connections waiting for a write turn with their gateway's flusher.
func (b *fanBlock) handOff() {
	if b.queued > 0 {
		n := uint64(b.queued)
		st := &b.gw.stats
		st.framesOut.Add(n)
		st.bytesOut.Add(n * uint64(len(b.frame)))
		st.messagesOut.Add(n)
	}
	if b.head != nil {
		b.gw.flush.addList(b.head, b.tail, b.msg)
	}
	b.head, b.tail, b.queued = nil, nil, 0
}

// Unwritten counts, over this gateway's open connections, the frames
// queued or being written that their sockets have not taken yet, and the
// connections holding a write turn (a flusher turn, a writer goroutine or
// an inline write). It is a diagnostic: the bench reads it when a fan-out
// falls short, to tell frames still in wsgate from frames the kernel
// holds. It locks the connections one at a time, so the figures are not
// of one instant, and costs nothing on the write path.
func (g *Gateway) Unwritten() (frames, writing int) {
	g.hub.Each(func(hc hub.Conn) bool {
		c, ok := hc.(*conn)
		if !ok || c.gw != g {
			return true
		}
		c.mu.Lock()
		frames += len(c.queue) + c.flight
		if c.writing {
			writing++
		}
		c.mu.Unlock()
		return true
	})
	return frames, writing
}
