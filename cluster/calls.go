package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/hub"
)

// Calls on connection ids (post, get, delete, join, leave) travel to their
// owner in batches: one NATS request carries every call made to that node
// while the previous batches were out, one reply carries every answer. A
// call on an idle link goes at once, alone (no delay is added); under load
// a batch takes the calls that queued meanwhile, so the NATS messages, the
// servers' routing and the wake-ups per call fall with the load. Each call
// keeps its own deadline, dedupe key and retries: a call not answered
// within attemptTimeoutMillis retries (in a later batch) with the same key,
// and the answer to any of its batches ends it, the first to come: a
// batch that gets no reply within attemptTimeoutMillis gives its link's
// place to the next batch but still takes a late reply until its calls'
// deadlines pass (lateBatch), so on a cluster whose round trips all take
// longer than an attempt calls still complete within
// requestTimeoutMillis (before, every attempt's answer came after its
// attempt had been given up, and every call failed with 500).
//
// Wire format, no NATS headers (the body is all; integers are uvarints,
// strings and bytes are a uvarint length and the bytes):
//
//	request  = version(1) seq count item*
//	item     = op(1 byte) deadline(unix ms) id key arg body
//	reply    = seq count result*
//	result   = status text body
//
// arg is the group of a join or leave, the close reason's label of a
// delete. status is the HTTP status the origin answers, or 0: the owner
// dropped the call unrun, its deadline having passed. seq names the batch
// at its origin, and the reply echoes it: each link's batches share one
// reply subject (the origin's inbox and the owner's byte), so the NATS
// servers route every reply from their subject cache instead of matching
// and caching a new subject per batch (~11 allocations per batch in the
// two servers). NATS's "no responders" answer carries no seq; it ends the
// oldest batch the link has out (NATS answers a connection's requests in
// the order they were sent): one arriving late, after its batch timed
// out, at worst makes the next batch's calls retry, as a timeout would (a
// retry keeps its dedupe key; join, leave and get are idempotent).
const (
	batchVersion = 2
	// maxInFlight is how many batches may be out to one node at once;
	// calls made meanwhile wait for a reply and go together in the next.
	// A second batch goes only beside one of at most smallOut calls
	// (light load: a call need not wait a round trip for a batch of one
	// or two), never beside a larger one: under load a batch then takes
	// about a round trip's calls, and the cost of a cross-node call is
	// mostly per NATS message (both servers' reads, writes and wake-ups):
	// BenchmarkCrossNodeSend gave 7.1 calls per batch and −15 % CPU per
	// call with one batch out against 4.2 with two at any size.
	maxInFlight = 2
	smallOut    = 2
	// maxBatch bounds the calls in one batch (and so one reply's size).
	maxBatch = 256
	// statusExpired is the status of a call the owner dropped unrun.
	statusExpired = 0
)

// Ops of a call, one byte on the wire.
const (
	opPost byte = iota + 1
	opGet
	opDelete
	opJoin
	opLeave
)

var opNames = [...]string{opPost: "post", opGet: "get", opDelete: "delete", opJoin: "join", opLeave: "leave"}

// errAttemptTimeout: the batch got no answer within attemptTimeoutMillis.
var errAttemptTimeout = errors.New("no answer within attemptTimeoutMillis")

// errDropped: the owner dropped the call unrun, past its deadline.
var errDropped = errors.New("dropped by the owner past its deadline")

// item is one call on one connection.
type item struct {
	op       byte
	deadline int64 // unix ms: the owner must not act after deadline − 100 ms
	id       string
	key      string // dedupe key (post, delete); the owner answers a repeat once
	// seq, when key is empty, makes the key: the origin's prefix and seq
	// (written by encodeBatch, not kept as a string per call).
	seq uint64
	// keyb is the key as the owner decoded it (a slice of the message).
	keyb []byte
	arg  string // join/leave: group; delete: close reason label
	body []byte // post: the frame
}

func (it *item) size() int { return 48 + len(it.id) + len(it.key) + len(it.arg) + len(it.body) }

// result is the owner's answer to one item, or the transport's error.
type result struct {
	status int
	text   string
	body   []byte
	err    error
}

// attempt is one call over NATS (its own copy of the call), shared by all
// its tries: each try queues it again (unless it is still queued), so it
// may be in several batches out at once, and done takes the first outcome
// any of them gets (offer; later ones are dropped): the answer to an
// earlier try that comes after that try's time ran out still ends the
// call. abandoned: its caller stopped waiting (the call ended), so a batch
// not yet sent leaves it out.
type attempt struct {
	it        item
	done      chan result
	abandoned atomic.Bool
	queued    bool // in its link's queue (l.mu)
	batches   int  // batches it went in (l.mu)
}

// offer hands r to a's caller unless an outcome is there already, unread
// (the first of its batches' outcomes wins; a call's answers agree: the
// owner's dedupe answers a repeat of a POST or DELETE with its first
// answer, and get, join and leave are idempotent).
func (a *attempt) offer(r result) {
	select {
	case a.done <- r:
	default:
	}
}

// attempts are attempts whose one outcome their caller received from the
// one batch that carried them: nothing else holds them then (a batch's
// finish sends each attempt's outcome last), so a call reuses one and its
// channel instead of allocating both (3 of a cross-node call's
// allocations). Any other attempt is abandoned and never put back: a
// batch not yet answered may still encode it or send it an outcome.
var attempts = sync.Pool{New: func() any { return &attempt{done: make(chan result, 1)} }}

// link is the queue of calls to one node.
type link struct {
	mu       sync.Mutex
	node     byte
	subject  string
	reply    string // this node's inbox for the link's replies
	queue    []*attempt
	inflight int // batches out (l.mu)
	outCalls int // calls in the batches out (l.mu)
	// out holds the seqs of the batches out, oldest first (h.outMu).
	out []uint64
}

// mayGo reports whether a batch may go now (l.mu held): none is out, or
// one small one (maxInFlight, smallOut).
func (l *link) mayGo() bool {
	return l.inflight == 0 || l.inflight < maxInFlight && l.outCalls <= smallOut
}

// batch is a request out, waiting for its reply.
type batch struct {
	link  *link
	atts  []*attempt
	timer *time.Timer
	slow  bool // its timer fired at slowAttempt (h.outMu)
	// late: no reply within attemptTimeoutMillis; the link's place is
	// given back and the batch waits for a late reply until its calls'
	// deadlines (h.outMu; not in link.out).
	late bool
}

// startCalls subscribes this node's reply inbox.
func (h *Hub) startCalls() error {
	h.inbox = nats.NewInbox()
	h.out = make(map[uint64]*batch)
	h.queries = make(map[uint64]chan *nats.Msg)
	for b := range h.links {
		h.links[b].node = byte(b)
		h.links[b].subject = h.subject(byte(b), "c")
		h.links[b].reply = h.inbox + "." + strconv.Itoa(b)
	}
	_, err := h.ctl.Subscribe(h.inbox+".*", h.handleReply)
	return err
}

// newAttempt is a call's attempt over NATS, for try; the call ends it
// with endAttempt.
func newAttempt(it *item) *attempt {
	a := attempts.Get().(*attempt)
	a.it = *it
	return a
}

// endAttempt ends a's call (answered: its outcome was read from done): a
// pooled again when its one batch's outcome was read, else abandoned.
func (h *Hub) endAttempt(b byte, a *attempt, answered bool) {
	l := &h.links[b]
	l.mu.Lock()
	reuse := answered && a.batches == 1 && !a.queued
	a.batches, a.queued = 0, false
	l.mu.Unlock()
	if !reuse {
		a.abandoned.Store(true)
		return
	}
	a.it = item{}
	attempts.Put(a)
}

// try sends a (again, unless it is still queued) to node b and waits for
// the outcome of any of its batches, at most timeout, and no longer than
// ctx or until gone (if not nil) closes. errAttemptTimeout: nothing came
// in time; a later try still takes the answer to this one.
func (h *Hub) try(ctx context.Context, b byte, a *attempt, timeout time.Duration, gone <-chan struct{}) result {
	l := &h.links[b]
	l.mu.Lock()
	if !a.queued {
		a.queued = true
		l.queue = append(l.queue, a)
	}
	if !l.mayGo() {
		l.mu.Unlock()
	} else {
		atts := l.take(h.batchLimit()) // holds a at least
		l.inflight++
		l.outCalls += len(atts)
		l.mu.Unlock()
		h.sendBatch(l, atts)
	}
	t := attemptTimer(timeout)
	defer attemptTimers.Put(t)
	select {
	case r := <-a.done:
		t.Stop()
		return r
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	case <-gone:
		t.Stop()
	}
	return result{err: errAttemptTimeout}
}

// attemptTimers are the stopped or fired timers of finished attempts: an
// attempt's timer is one of them reset, not a new timer and context per
// call (context.WithTimeout was ~5 % of a cross-node send's CPU in
// BenchmarkCrossNodeSend). A stopped timer's channel holds no stale tick
// (Go 1.23 timers).
var attemptTimers sync.Pool

func attemptTimer(d time.Duration) *time.Timer {
	if t, ok := attemptTimers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// batchLimit is the most bytes a batch may carry: the server's payload
// limit, less room for the envelope. A single call larger than that goes
// alone.
func (h *Hub) batchLimit() int { return int(h.ctl.MaxPayload()) - 4096 }

// take removes the next batch from the queue (l.mu held): the calls in
// order, up to maxBatch and limit bytes, the first one always; abandoned
// attempts are dropped. It returns nil when none is left.
func (l *link) take(limit int) []*attempt {
	var atts []*attempt
	n, size := 0, 0
	for ; n < len(l.queue) && len(atts) < maxBatch; n++ {
		a := l.queue[n]
		if a.abandoned.Load() {
			a.queued = false
			continue
		}
		s := a.it.size()
		if len(atts) > 0 && size+s > limit {
			break
		}
		size += s
		a.queued = false
		a.batches++
		atts = append(atts, a)
	}
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	return atts
}

// sendBatch publishes one batch and arms its attempt timer.
func (h *Hub) sendBatch(l *link, atts []*attempt) {
	h.batchesOut.Add(1)
	h.callsOut.Add(int64(len(atts)))
	seq := h.outSeq.Add(1)
	data := encodeBatch(atts, h.reqPrefix, seq)
	h.outMu.Lock()
	bt := &batch{link: l, atts: atts}
	h.out[seq] = bt
	l.out = append(l.out, seq)
	first := h.cfg.attemptTimeout()
	if h.direct != nil && slowAttempt < first {
		first = slowAttempt
	}
	bt.timer = time.AfterFunc(first, func() { h.batchTimer(seq) })
	h.outMu.Unlock()
	if err := h.ctl.PublishRequest(l.subject, l.reply, data); err != nil {
		h.finish(seq, nil, err)
	}
}

// batchTimer is batch seq's timer: at slowAttempt (with a direct link)
// the node is checked (suspect: does its link refuse connections?) and the
// timer set for the rest of the attempt; at attemptTimeoutMillis the batch
// turns late (lateBatch); once late, at its calls' last deadline it is
// forgotten. The common batch, answered well before, never gets here.
func (h *Hub) batchTimer(seq uint64) {
	h.outMu.Lock()
	bt := h.out[seq]
	switch {
	case bt == nil:
		h.outMu.Unlock()
	case bt.late: // past its calls' deadlines: no answer is wanted any more
		delete(h.out, seq)
		h.outMu.Unlock()
	case !bt.slow && h.direct != nil && slowAttempt < h.cfg.attemptTimeout():
		bt.slow = true
		bt.timer.Reset(h.cfg.attemptTimeout() - slowAttempt)
		b := bt.link.node
		h.outMu.Unlock()
		h.suspect(b, false)
	default:
		h.lateBatch(seq, bt)
	}
}

// lateBatch turns batch seq, unanswered for attemptTimeoutMillis, late
// (h.outMu held; it unlocks it): its place on the link goes to the next
// batch (the link's queue must not wait on a slow owner), it leaves
// link.out (a "no responders" is taken for a batch still in its time), and
// it stays in h.out until the last deadline of its calls still waiting
// (none: it is forgotten at once), so that a
// reply that comes after all still answers those of its calls still
// waiting (each waits on its own attempt's time, try, and has retried
// meanwhile in a later batch with the same key). Its callers are not told:
// each call's own attempt timer has run out already (it started no later
// than the batch's).
func (h *Hub) lateBatch(seq uint64, bt *batch) {
	bt.late = true
	bt.link.out = slices.DeleteFunc(bt.link.out, func(s uint64) bool { return s == seq })
	var last int64 // the last deadline of a call still waiting
	for _, a := range bt.atts {
		if !a.abandoned.Load() {
			last = max(last, a.it.deadline)
		}
	}
	if wait := time.Until(time.UnixMilli(last)); wait > 0 {
		bt.timer.Reset(wait)
	} else {
		delete(h.out, seq)
	}
	h.outMu.Unlock()
	h.lateBatches.Add(1)
	h.next(bt.link, len(bt.atts))
}

// handleReply takes a batch's reply (its seq first), or NATS's "no
// responders" for the batch out on the link the subject names; or, on a
// subject "q" and a number, the answer to a query (query.wait).
func (h *Hub) handleReply(m *nats.Msg) {
	suffix := m.Subject[min(len(h.inbox)+1, len(m.Subject)):]
	if q, ok := strings.CutPrefix(suffix, "q"); ok {
		id, err := strconv.ParseUint(q, 36, 64)
		if err != nil {
			return
		}
		h.queriesMu.Lock()
		replies := h.queries[id]
		h.queriesMu.Unlock()
		select {
		case replies <- m: // nil (the call ended) blocks: dropped
		default: // an earlier answer is still unread: this one adds nothing
		}
		return
	}
	if noResponders(m) {
		b, err := strconv.Atoi(suffix)
		if err != nil || b < 0 || b >= len(h.links) {
			return
		}
		var seq uint64
		h.outMu.Lock()
		if out := h.links[b].out; len(out) > 0 {
			seq = out[0]
		}
		h.outMu.Unlock()
		h.finish(seq, nil, nats.ErrNoResponders)
		return
	}
	r := reader{b: m.Data}
	seq := r.uvarint()
	if r.err != nil {
		return
	}
	h.finish(seq, r.b, nil)
}

// noResponders reports whether m is NATS's "no responders" answer to a
// request.
func noResponders(m *nats.Msg) bool {
	return len(m.Data) == 0 && m.Header.Get("Status") == "503"
}

// finish hands each call of batch seq its outcome and, unless the batch
// was late (its place given back already), sends the link's next batch. A
// batch already finished, or late past its calls' deadlines, is ignored.
func (h *Hub) finish(seq uint64, data []byte, err error) {
	h.outMu.Lock()
	bt := h.out[seq]
	delete(h.out, seq)
	late := false
	if bt != nil {
		late = bt.late
		if !late {
			bt.link.out = slices.DeleteFunc(bt.link.out, func(s uint64) bool { return s == seq })
		}
	}
	h.outMu.Unlock()
	if bt == nil {
		return
	}
	bt.timer.Stop()
	var rs []result
	if err == nil {
		if rs, err = decodeResults(data, len(bt.atts)); err != nil {
			err = fmt.Errorf("a reply that does not parse: %w", err)
		}
	}
	if late {
		h.lateAnswers.Add(1)
	}
	for i, a := range bt.atts {
		if err != nil {
			a.offer(result{err: err})
		} else {
			a.offer(rs[i])
		}
	}
	if !late {
		h.next(bt.link, len(bt.atts))
	}
}

// next gives back the place of a batch of n calls on l and sends the
// link's next batch: the queue's calls, unless a batch of more than
// smallOut calls is still out (its reply, or its turning late, sends
// them; the queue is never left without a batch out).
func (h *Hub) next(l *link, n int) {
	l.mu.Lock()
	l.inflight--
	l.outCalls -= n
	var atts []*attempt
	if l.mayGo() {
		if atts = l.take(h.batchLimit()); atts != nil {
			l.inflight++
			l.outCalls += len(atts)
		}
	}
	l.mu.Unlock()
	if atts != nil {
		h.sendBatch(l, atts)
	}
}

// handleConn serves wsg.<name>.n.<self>.c: a batch of ops on this node's
// connections, answered in one reply. Every op is non-blocking
// (hub.Memory's contract), but a first join, which subscribes the group
// and flushes. A call past its deadline is dropped unrun (status 0), so a
// 500 after a timeout means "not done".
func (h *Hub) handleConn(m *nats.Msg) {
	if m.Header.Get(hdrOp) == "ping" { // registry.silent: is anyone there; reachesMajority
		r := replyTo(m, nil, nil)
		r.Header.Set(hdrAnswerInc, h.incarnation()) // confirm
		h.pingedBy(m)
		h.answerJudgement(m, r)
		_ = m.RespondMsg(r)
		return
	}
	t := time.Now()
	if !h.owner(t) {
		h.notOwner()
		return
	}
	out, err := h.runBatch(nil, m.Data, t)
	if err != nil {
		h.log.Warn("cluster call that does not parse", "error", err)
		return
	}
	_ = m.Respond(out)
}

// runBatch runs the calls of batch data (the wire format) on this node,
// as of t, and appends the reply to out: the batch's seq, then an answer
// per call. A call past its deadline is dropped unrun (status 0), so the
// dedupe table need remember a POST's or DELETE's key only until then
// (dedupe.retryWithin) for its retries to run it at most once.
func (h *Hub) runBatch(out, data []byte, t time.Time) ([]byte, error) {
	seq, items, err := decodeBatch(data)
	if err != nil {
		return out, err
	}
	out = slices.Grow(out, 14+4*len(items))
	out = binary.AppendUvarint(out, seq)
	out = binary.AppendUvarint(out, uint64(len(items)))
	hook := h.connHook.Load()
	now := t.UnixMilli()
	for i := range items {
		it := &items[i]
		if hook != nil {
			(*hook)(opNames[it.op])
			now = time.Now().UnixMilli()
		}
		if now > it.deadline-100 {
			out = appendResult(out, statusExpired, "", nil)
			continue
		}
		if it.op == opPost || it.op == opDelete {
			// Its key is kept until its deadline at least: a retry
			// coming after that is dropped above.
			h.dedupe.retryWithin(time.Duration(it.deadline-now) * time.Millisecond)
		}
		body, err := h.run(it)
		st, text := status(err)
		out = appendResult(out, st, text, body)
		if it.op == opJoin {
			// A first join waits for its subscription's flush (up to
			// requestTimeoutMillis): the calls after it are judged
			// against the time it ends, not the batch's start. Every
			// other op is non-blocking.
			now = time.Now().UnixMilli()
		}
	}
	return out, nil
}

// notOwner counts a call, query, drain or pace on this node's byte left
// unanswered: this node is past answerUntil (owner). A node stalled past
// its entry's time to live (joining, or up past leaseSeconds), whose byte
// another node may have claimed meanwhile, stays subscribed to the byte's
// subjects until its start fails or its fence; the owner is subscribed
// too, and the caller takes the first answer. Silence lets the owner's
// win: an answer here (410 for the owner's ids, an empty listing) would
// race it. With no owner, the caller's attempt times out and it retries,
// as for a slow node (hub.go, retry); a ping is still answered (the node
// is alive, so no peer takes the byte for gone on its silence).
func (h *Hub) notOwner() {
	h.notOwned.Add(1)
	h.step("not-owner")
}

// run does one call on this node.
func (h *Hub) run(it *item) ([]byte, error) {
	switch it.op {
	case opPost:
		m := hub.NewMessage(it.body)
		return nil, h.dedupe.doBytes(it.keyb, func() error { return h.mem.Send(h.ctx, it.id, m) })
	case opGet:
		info, err := h.mem.Info(h.ctx, it.id)
		if err != nil {
			return nil, err
		}
		return json.Marshal(info)
	case opDelete:
		r, ok := hub.CloseReasonByLabel(it.arg)
		if !ok {
			return nil, fmt.Errorf("unknown close reason %q", it.arg)
		}
		return nil, h.dedupe.doBytes(it.keyb, func() error { return h.mem.Disconnect(h.ctx, it.id, r) })
	case opJoin:
		return nil, h.joinLocal(it.arg, it.id)
	case opLeave:
		return nil, h.mem.Leave(h.ctx, it.arg, it.id)
	}
	return nil, fmt.Errorf("unknown op %d", it.op)
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// encodeBatch encodes batch seq of atts; a call without a key gets prefix
// and its own seq (base 36) as its key.
func encodeBatch(atts []*attempt, prefix string, seq uint64) []byte {
	size := 8
	for _, a := range atts {
		size += a.it.size() + len(prefix)
	}
	b := make([]byte, 0, size)
	b = append(b, batchVersion)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(atts)))
	for _, a := range atts {
		b = appendItem(b, &a.it, prefix)
	}
	return b
}

// appendItem appends call it to a batch; a call without a key gets
// prefix and its own seq (base 36) as its key.
func appendItem(b []byte, it *item, prefix string) []byte {
	b = append(b, it.op)
	b = binary.AppendUvarint(b, uint64(it.deadline))
	b = appendString(b, it.id)
	if it.key != "" {
		b = appendString(b, it.key)
	} else {
		var digits [16]byte
		d := strconv.AppendUint(digits[:0], it.seq, 36)
		b = binary.AppendUvarint(b, uint64(len(prefix)+len(d)))
		b = append(append(b, prefix...), d...)
	}
	b = appendString(b, it.arg)
	return appendBytes(b, it.body)
}

func appendResult(b []byte, st int, text string, body []byte) []byte {
	b = binary.AppendUvarint(b, uint64(st))
	b = appendString(b, text)
	return appendBytes(b, body)
}

// reader decodes the wire format; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns the next length-prefixed field, a slice of the message.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errors.New("truncated")
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errors.New("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// decodeBatch returns a batch's seq and calls.
func decodeBatch(data []byte) (uint64, []item, error) {
	r := reader{b: data}
	if v := r.byte(); r.err == nil && v != batchVersion {
		return 0, nil, fmt.Errorf("version %d, want %d", v, batchVersion)
	}
	seq := r.uvarint()
	n := r.uvarint()
	if r.err == nil && n > maxBatch {
		return 0, nil, fmt.Errorf("%d calls in one batch, at most %d", n, maxBatch)
	}
	items := make([]item, n)
	for i := range items {
		it := &items[i]
		it.op = r.byte()
		it.deadline = int64(r.uvarint())
		it.id = string(r.bytes())
		it.keyb = r.bytes()
		it.arg = string(r.bytes())
		it.body = r.bytes()
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("trailing bytes")
	}
	return seq, items, r.err
}

func decodeResults(data []byte, want int) ([]result, error) {
	r := reader{b: data}
	if n := r.uvarint(); r.err == nil && n != uint64(want) {
		return nil, fmt.Errorf("%d answers for %d calls", n, want)
	}
	rs := make([]result, want)
	for i := range rs {
		rs[i].status = int(r.uvarint())
		rs[i].text = string(r.bytes())
		rs[i].body = r.bytes()
	}
	return rs, r.err
}

// resultError is the error a call's status stands for.
func resultError(r result) error {
	switch r.status {
	case 200, 204:
		return nil
	case 410:
		return hub.ErrGone
	case 429:
		if r.text != "" {
			return fmt.Errorf("%w: %s", hub.ErrLimitExceeded, r.text)
		}
		return hub.ErrQueueFull
	case statusExpired:
		return errDropped
	}
	return fmt.Errorf("%w: %d %s", hub.ErrUnavailable, r.status, r.text)
}
