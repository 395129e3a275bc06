package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/hub"
)

type connsReply struct {
	Infos []hub.Info `json:"infos"`
	More  bool       `json:"more"`
}

type countReply struct {
	Connections int `json:"connections"`
}

// handleQuery serves wsg.<name>.n.<self>.q: this node's part of a listing
// or a count. A query it answered already (a retry: the same reply
// subject) gets the same answer again, not worked out anew.
func (h *Hub) handleQuery(m *nats.Msg) {
	if expired(m) {
		return
	}
	if !h.owner(time.Now()) {
		h.notOwner()
		return
	}
	if r := h.answers.get(m.Reply); r != nil {
		_ = m.RespondMsg(r)
		return
	}
	body, err := h.answerQuery(m)
	r := replyTo(m, body, err)
	h.answers.put(m.Reply, r)
	_ = m.RespondMsg(r)
}

// answerQuery works out this node's answer to query m.
func (h *Hub) answerQuery(m *nats.Msg) ([]byte, error) {
	p := hub.Page{After: m.Header.Get(hdrAfter)}
	p.Limit, _ = strconv.Atoi(m.Header.Get(hdrLimit))
	return h.answer(m.Header.Get(hdrOp), m.Header.Get(hdrGroup), p)
}

// answer works out this node's answer to query op (over NATS or the
// direct link).
func (h *Hub) answer(op, group string, p hub.Page) ([]byte, error) {
	if hook := h.queryHook.Load(); hook != nil {
		(*hook)(op)
	}
	var body any
	var err error
	switch op {
	case "members":
		return h.encodeMembers(group, p), nil
	case "conns":
		var r connsReply
		var next string
		r.Infos, next, err = h.mem.Connections(h.ctx, p)
		r.More = next != ""
		body = r
	case "count":
		var r countReply
		r.Connections, err = h.mem.Count(h.ctx, group)
		body = r
	case "streams":
		body = json.RawMessage("[]")
		if f := h.streamReport.Load(); f != nil {
			body = json.RawMessage((*f)())
		}
	default:
		err = fmt.Errorf("unknown query %q", op)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(body)
}

// Bounds of answers: the last queries' answers a node keeps, and their
// bytes (a page of 1,000 connections is ~150 KB of JSON).
const (
	maxAnswers     = 32
	maxAnswerBytes = 4 << 20
)

// answers are a node's last answers to queries, by reply subject (each
// call's own, shared by its attempts), at most maxAnswers of at most
// maxAnswerBytes together, the oldest dropped first: a retry that reaches
// the owner after the answer it asks for costs a lookup, not the query
// again, so an owner slower than an attempt works each call out once.
type answers struct {
	mu    sync.Mutex
	keys  []string // oldest first
	m     map[string]*nats.Msg
	bytes int
}

func (a *answers) get(reply string) *nats.Msg {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[reply]
}

func (a *answers) put(reply string, r *nats.Msg) {
	n := len(r.Data)
	if reply == "" || n > maxAnswerBytes {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.m[reply]; ok {
		return
	}
	if a.m == nil {
		a.m = make(map[string]*nats.Msg, maxAnswers)
	}
	for len(a.keys) > 0 && (len(a.keys) >= maxAnswers || a.bytes+n > maxAnswerBytes) {
		a.bytes -= len(a.m[a.keys[0]].Data)
		delete(a.m, a.keys[0])
		a.keys = a.keys[1:]
	}
	a.keys = append(a.keys, reply)
	a.m[reply] = r
	a.bytes += n
}

// scatter sends one query to each of nodes (page(i) is node i's), runs
// local (if not nil) while they are out, and calls collect with each
// reply's body, by the node's position. Every query's first attempt goes
// out before local runs, from this goroutine: sent from a goroutine of
// its own, it waited for that goroutine to be scheduled, on a busy
// machine until local was done (a page of members: a median 148 µs of a
// 2.0 ms listing before the first query left). A node that has a direct
// query link (direct.go) is asked over it, else (or when its connection
// breaks) over NATS. A node found gone meanwhile is skipped (its
// connections left every listing with it); any other failure fails the
// whole call: never a silent partial page.
func (h *Hub) scatter(ctx context.Context, op, group string, nodes []byte, page func(i int) hub.Page, local func() error, collect func(i int, body []byte) error) error {
	errs := make([]error, len(nodes))
	bodies := make([][]byte, len(nodes))
	qs := make([]*query, len(nodes))
	dcs := make([]*directConn, len(nodes))
	deadline := h.deadline(ctx)
	sent := time.Now()
	for i, b := range nodes {
		p := page(i)
		if addr, inc := h.directAddr(b); addr != "" {
			c := h.direct.get(b, addr, inc)
			if c != nil && c.send(op, group, p, deadline) {
				dcs[i] = c
				continue
			}
			if c != nil {
				h.direct.put(c, false)
			}
		}
		qs[i] = h.startQuery(b, queryMsg(h.subject(b, "q"), op, group, p), deadline)
	}
	var lerr error
	if local != nil {
		lerr = local()
	}
	// Each first attempt's answer is taken here, in turn: in the common
	// case every node answers it, and the reply goes from the inbox's
	// subscription (or the direct connection) to this goroutine, not
	// through a goroutine per node (a wake-up more per node, per page). A
	// node whose first attempt is not answered in its time, or not with
	// a success, goes on in a goroutine of its own under the rules of
	// retry (wait, askDirect) as before; the first attempts all end at
	// about the same time, so waiting for them in turn takes no longer
	// than in parallel.
	var wg sync.WaitGroup
	for i, q := range qs {
		b := nodes[i]
		if c := dcs[i]; c != nil {
			first := sent.Add(h.cfg.attemptTimeout())
			if deadline.Before(first) {
				first = deadline
			}
			body, err := h.readDirect(ctx, c, b, first, nil, nil)
			if err == nil {
				bodies[i] = body
				continue
			}
			wg.Go(func() {
				body, broken, err := h.askDirect(ctx, c, b, deadline, err)
				if broken { // over NATS, in the time left
					q := h.startQuery(b, queryMsg(h.subject(b, "q"), op, group, page(i)), deadline)
					var reply *nats.Msg
					reply, err = q.wait(ctx)
					body = replyBody(reply)
				}
				if errors.Is(err, hub.ErrGone) {
					return
				}
				bodies[i], errs[i] = body, err
			})
			continue
		}
		if m := q.answered(ctx); m != nil {
			bodies[i] = m.Data
			continue
		}
		wg.Go(func() {
			reply, err := q.wait(ctx)
			if errors.Is(err, hub.ErrGone) {
				return
			}
			bodies[i], errs[i] = replyBody(reply), err
		})
	}
	wg.Wait()
	if lerr != nil {
		return lerr
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%w: node %s: %v", hub.ErrUnavailable, hub.NodeHex(nodes[i]), err)
		}
	}
	for i, b := range bodies {
		if b == nil {
			continue
		}
		if err := collect(i, b); err != nil {
			return fmt.Errorf("%w: node %s answered %v", hub.ErrUnavailable, hub.NodeHex(nodes[i]), err)
		}
	}
	return nil
}

// queryMsg is query op of page p, to subject.
func queryMsg(subject, op, group string, p hub.Page) *nats.Msg {
	msg := nats.NewMsg(subject)
	msg.Header.Set(hdrOp, op)
	if group != "" {
		msg.Header.Set(hdrGroup, group)
	}
	msg.Header.Set(hdrAfter, p.After)
	msg.Header.Set(hdrLimit, strconv.Itoa(p.Limit))
	return msg
}

// query is one call of a query to node b (.q, request/reply with
// headers) under the rules of retry. Every attempt of one query names
// the same reply subject (this node's inbox, "q" and the query's
// number), so an answer to an earlier attempt that comes after its
// attempt timed out still ends the call, and the owner repeats a query's
// answer by its reply subject (answers) instead of working it out again.
// With a reply subject per attempt, an owner slower than
// attemptTimeoutMillis (a page of 1,000 connections on a loaded machine)
// answered each attempt after the origin had dropped it and worked out
// every retry in turn: the call failed after requestTimeoutMillis however
// long the owner took.
type query struct {
	h        *Hub
	b        byte
	msg      *nats.Msg
	id       uint64
	replies  chan *nats.Msg
	deadline time.Time
	sent     time.Time // the first attempt's
	err      error     // the first attempt's publish error
}

// startQuery sends the first attempt of query msg to node b, to be
// answered by deadline; wait ends it.
func (h *Hub) startQuery(b byte, msg *nats.Msg, deadline time.Time) *query {
	q := &query{h: h, b: b, msg: msg, deadline: deadline, replies: make(chan *nats.Msg, 1)}
	msg.Header.Set(hdrDeadline, strconv.FormatInt(q.deadline.UnixMilli(), 10))
	msg.Header.Set(hdrFrom, hub.NodeHex(h.Self())+"/"+h.incarnation())
	q.id = h.reqSeq.Add(1)
	msg.Reply = h.inbox + ".q" + strconv.FormatUint(q.id, 36)
	h.queriesMu.Lock()
	h.queries[q.id] = q.replies
	h.queriesMu.Unlock()
	q.sent = time.Now()
	q.err = h.ctl.PublishMsg(msg)
	return q
}

// answered waits for the first attempt's answer, within that attempt's
// time (wait's), and returns it if it is a success; nil otherwise, with
// the query left as it was for wait (an answer that is not a success is
// put back for wait's rules). A success ends the query.
func (q *query) answered(ctx context.Context) *nats.Msg {
	if q.err != nil {
		return nil
	}
	var m *nats.Msg
	select {
	case m = <-q.replies:
	default:
		timeout := min(q.h.cfg.attemptTimeout(), time.Until(q.deadline)) - time.Since(q.sent)
		if timeout <= 0 {
			return nil
		}
		t := attemptTimer(timeout)
		defer attemptTimers.Put(t)
		select {
		case m = <-q.replies:
			t.Stop()
		case <-t.C:
			return nil
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
	if noResponders(m) || replyError(m) != nil {
		select {
		case q.replies <- m: // for wait
		default: // a later answer is there: wait takes that one
		}
		return nil
	}
	q.h.queriesMu.Lock()
	delete(q.h.queries, q.id)
	q.h.queriesMu.Unlock()
	return m
}

// wait returns the query's reply: its first attempt's, else a later
// attempt's, under the rules of retry. The first attempt's time runs from
// when startQuery sent it.
func (q *query) wait(ctx context.Context) (*nats.Msg, error) {
	h := q.h
	defer func() {
		h.queriesMu.Lock()
		delete(h.queries, q.id)
		h.queriesMu.Unlock()
	}()
	var reply *nats.Msg
	got := func(m *nats.Msg) error {
		if noResponders(m) {
			return nats.ErrNoResponders
		}
		reply = m
		return replyError(m)
	}
	first := true
	err := h.retry(ctx, q.b, q.deadline, func(timeout time.Duration, gone <-chan struct{}) error {
		if first {
			first = false
			if q.err != nil {
				return q.err
			}
			timeout -= time.Since(q.sent)
		} else if err := h.ctl.PublishMsg(q.msg); err != nil {
			return err
		}
		select {
		case m := <-q.replies: // here already (the first attempt's time may be out)
			return got(m)
		default:
		}
		t := attemptTimer(max(timeout, 0))
		defer attemptTimers.Put(t)
		select {
		case m := <-q.replies:
			t.Stop()
			return got(m)
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-gone:
			t.Stop()
		}
		return errAttemptTimeout
	})
	return reply, err
}

func replyBody(m *nats.Msg) []byte {
	if m == nil {
		return nil
	}
	return m.Data
}

// A listing (Members, Connections) asks each node for its own smallest
// ids after the token, sorted, and merges them. Asking every node for a
// whole page moves nodes × Limit items for one page; instead each node
// (this one too) is first asked for its share of the page, by its
// connections in the last heartbeats, with room to spare (firstPages).
// The page is exact once, for every node
// that has more than it returned, at least Limit of the returned items
// are at most its last one: the page's items are then all below anything
// a node did not return. A node for which that does not hold yet (a
// skewed group, a stale heartbeat) is asked again after its last item
// for the rest it could contribute, Limit minus the returned items up to
// its last; each such node then holds, so one follow-up round is enough
// (for this node's own part it costs no round trip).
//
// A node's part: its items so far, sorted, and whether it has more.
type part[T any] struct {
	items []T
	more  bool
}

// add appends a node's next items, all after its previous ones.
func (pt *part[T]) add(items []T, more bool) {
	if pt.items == nil {
		pt.items = items
	} else {
		pt.items = append(pt.items, items...)
	}
	pt.more = more
}

// maxRounds bounds a listing's rounds of queries (one follow-up suffices;
// a node that answers against the contract fails the listing instead of
// looping).
const maxRounds = 3

// listPage returns one page of a listing over this node (local) and every
// other live node (op queries, their replies read by decode), merged by
// key, and the token of the next page (the last key, when more exist).
func listPage[T any](ctx context.Context, h *Hub, op, group string, p hub.Page, key func(T) string,
	local func(hub.Page) ([]T, bool, error), decode func([]byte) ([]T, bool, error)) ([]T, string, error) {
	nodes := h.live()
	parts := make([]part[T], len(nodes)+1) // parts[0] is this node's, parts[i+1] nodes[i]'s
	pages := h.firstPages(nodes, p)        // what each is asked next
	ask := make([]int, len(parts))         // the parts asked in this round
	for i := range ask {
		ask[i] = i
	}
	var remote []byte
	var at []int // remote[k] is parts[at[k]]'s node
	for round := 0; len(ask) > 0; round++ {
		if round == maxRounds {
			return nil, "", fmt.Errorf("%w: a listing's parts did not fill the page in %d rounds", hub.ErrUnavailable, maxRounds)
		}
		var lf func() error
		remote, at = remote[:0], at[:0]
		for _, i := range ask {
			if i > 0 {
				remote, at = append(remote, nodes[i-1]), append(at, i)
				continue
			}
			lp := pages[0]
			lf = func() error {
				items, more, err := local(lp)
				parts[0].add(items, more)
				return err
			}
		}
		err := h.scatter(ctx, op, group, remote, func(k int) hub.Page { return pages[at[k]] }, lf, func(k int, b []byte) error {
			items, more, err := decode(b)
			parts[at[k]].add(items, more)
			return err
		})
		if err != nil {
			return nil, "", err
		}
		ask = ask[:0]
		for i := range parts {
			if next, ok := followUp(parts, i, p, key); ok {
				pages[i], ask = next, append(ask, i)
			}
		}
	}
	lists := make([][]T, len(parts))
	more := false
	for i, pt := range parts {
		lists[i], more = pt.items, more || pt.more
	}
	items, next := cut(merge(lists, p.Limit, key), p.Limit, more, key)
	return items, next, nil
}

// followUp tells whether part i of a listing of page p may still hold
// items of the page (it has more than it returned, and fewer than
// p.Limit returned items are at most its last), and if so what to ask it
// next: the items after its last, as many as could still be in the page.
func followUp[T any](parts []part[T], i int, p hub.Page, key func(T) string) (hub.Page, bool) {
	pt := parts[i]
	if !pt.more || p.Limit <= 0 {
		return hub.Page{}, false
	}
	after := p.After // more, yet nothing returned: ask again
	if len(pt.items) > 0 {
		after = key(pt.items[len(pt.items)-1])
	}
	known := 0
	for _, o := range parts {
		known += sort.Search(len(o.items), func(j int) bool { return key(o.items[j]) > after })
	}
	if known >= p.Limit {
		return hub.Page{}, false
	}
	return hub.Page{After: after, Limit: p.Limit - known}, true
}

// firstPages is what this node (first) and each of nodes are first asked
// for in a listing of page p: ceil(m + 4·sqrt(m·(1−share))) + 10 items
// with m = p.Limit × share, at most p.Limit, by the node's share of the
// connections (this node's now, the others' in their last heartbeats);
// p.Limit (a whole page) when a node's share is not known. With a group
// spread as the connections are and random ids, a node's items in a page
// number about m, give or take sqrt(m·(1−share)) (binomial), so 4 of those
// and 10 more leave a follow-up to about 1 page in 30,000 per node; the
// earlier margin (m × 1.5 + 10: 510 ids of each of 3 nodes for a page of
// 1,000, against 403 now) moved 26 % more ids than this for nothing.
func (h *Hub) firstPages(nodes []byte, p hub.Page) []hub.Page {
	conns := make([]int, len(nodes)+1)
	conns[0] = h.mem.Len()
	total := conns[0]
	h.mu.RLock()
	for i, b := range nodes {
		pr := h.peers[b]
		if pr == nil || pr.lastSeen.IsZero() || pr.hb.Inc != pr.e.Inc {
			conns[i+1] = -1
			continue
		}
		conns[i+1] = pr.hb.Conns
		total += pr.hb.Conns
	}
	h.mu.RUnlock()
	out := make([]hub.Page, len(conns))
	for i, n := range conns {
		out[i] = p
		if p.Limit > 0 && n >= 0 && total > 0 {
			share := float64(n) / float64(total)
			mean := float64(p.Limit) * share
			out[i].Limit = min(p.Limit, int(math.Ceil(mean+4*math.Sqrt(mean*(1-share))))+10)
		}
	}
	return out
}

// Members implements hub.Router: the nodes' sorted parts, merged
// (listPage). The token is the last id, as on a single node.
func (h *Hub) Members(ctx context.Context, group string, p hub.Page) ([]string, string, error) {
	return listPage(ctx, h, "members", group, p, func(id string) string { return id },
		func(p hub.Page) ([]string, bool, error) {
			ids, next, err := h.mem.Members(ctx, group, p)
			return ids, next != "", err
		}, decodeIDs)
}

// encodeMembers is this node's members reply: "1" when the node has more,
// else "0", then each id after a newline (ids are base64url: no newline
// in them), written as the group's index gives them.
func (h *Hub) encodeMembers(group string, p hub.Page) []byte {
	b := make([]byte, 1, 1+min(max(p.Limit, 0), 1024)*17)
	more := h.mem.EachMember(group, p, func(id string) {
		b = append(b, '\n')
		b = append(b, id...)
	})
	b[0] = '0'
	if more {
		b[0] = '1'
	}
	return b
}

func decodeIDs(b []byte) ([]string, bool, error) {
	if len(b) == 0 || (b[0] != '0' && b[0] != '1') {
		return nil, false, errors.New("a members reply that does not parse")
	}
	more := b[0] == '1'
	if len(b) == 1 {
		return nil, more, nil
	}
	if b[1] != '\n' {
		return nil, false, errors.New("a members reply that does not parse")
	}
	// The ids share b (no copy): b is the reply's own payload, which
	// nats.go copies out of its read buffer for each message and nothing
	// writes to afterwards.
	// SliceData, not &b[2]: a reply of "0\n" alone has no b[2].
	return strings.Split(unsafe.String(unsafe.SliceData(b[2:]), len(b)-2), "\n"), more, nil
}

// merge merges lists, each sorted by key, into one sorted list of at most
// limit+1 items (all when limit is 0): one more than a page, so cut sees
// that more exist.
func merge[T any](lists [][]T, limit int, key func(T) string) []T {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	if limit > 0 {
		total = min(total, limit+1)
	}
	out := make([]T, 0, total)
	// The lists not yet used up, each with its head's key and the key's
	// first 8 bytes as a big-endian number (pre): most comparisons of two
	// ids end in those bytes, and comparing pre is one instruction where
	// comparing strings is a call (a third of a page's merge was in it).
	type head struct {
		l   []T
		pre uint64
		key string
	}
	var heads []head
	for _, l := range lists {
		if len(l) > 0 {
			k := key(l[0])
			heads = append(heads, head{l, keyPrefix(k), k})
		}
	}
	for len(out) < total {
		if len(heads) == 1 { // the rest is one list's
			out = append(out, heads[0].l[:total-len(out)]...)
			break
		}
		best := 0
		for i := 1; i < len(heads); i++ {
			if b := &heads[best]; heads[i].pre < b.pre || heads[i].pre == b.pre && heads[i].key < b.key {
				best = i
			}
		}
		hd := &heads[best]
		out = append(out, hd.l[0])
		if hd.l = hd.l[1:]; len(hd.l) > 0 {
			hd.key = key(hd.l[0])
			hd.pre = keyPrefix(hd.key)
		} else {
			heads = append(heads[:best], heads[best+1:]...)
		}
	}
	return out
}

// keyPrefix is k's first 8 bytes as a big-endian number, zeros after a
// shorter k. For keys a and b, keyPrefix(a) < keyPrefix(b) implies a < b
// (bytewise, as Go compares strings); equal prefixes say nothing.
func keyPrefix(k string) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(unsafe.Slice(unsafe.StringData(k), 8))
	}
	var b [8]byte
	copy(b[:], k)
	return binary.BigEndian.Uint64(b[:])
}

// Connections implements hub.Router, merged as Members.
func (h *Hub) Connections(ctx context.Context, p hub.Page) ([]hub.Info, string, error) {
	return listPage(ctx, h, "conns", "", p, func(in hub.Info) string { return in.ConnectionID },
		func(p hub.Page) ([]hub.Info, bool, error) {
			infos, next, err := h.mem.Connections(ctx, p)
			return infos, next != "", err
		}, func(b []byte) ([]hub.Info, bool, error) {
			var r connsReply
			err := json.Unmarshal(b, &r)
			return r.Infos, r.More, err
		})
}

// cut keeps the first limit items (all when limit is 0); the token is the
// last kept id when more exist anywhere.
func cut[T any](items []T, limit int, more bool, id func(T) string) ([]T, string) {
	if limit > 0 && len(items) > limit {
		items, more = items[:limit], true
	}
	if !more || len(items) == 0 {
		return items, ""
	}
	return items, id(items[len(items)-1])
}

// Count implements hub.Router: the members on every node, summed.
func (h *Hub) Count(ctx context.Context, group string) (int, error) {
	var n int
	nodes := h.live()
	err := h.scatter(ctx, "count", group, nodes, func(int) hub.Page { return hub.Page{} }, func() (err error) {
		n, err = h.mem.Count(ctx, group)
		return err
	}, func(_ int, b []byte) error {
		var r countReply
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		n += r.Connections
		return nil
	})
	return n, err
}

// SetStreamReport gives the function that answers other nodes' streams
// query: this node's change streams as JSON (the server's @streams items,
// with which of them this node leads). Call it before other nodes may ask;
// until then a node answers an empty list.
func (h *Hub) SetStreamReport(f func() []byte) { h.streamReport.Store(&f) }

// StreamReports asks every other live node for its stream report and
// returns the bodies. A node that does not answer fails the call, as a
// listing does.
func (h *Hub) StreamReports(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	err := h.scatter(ctx, "streams", "", h.live(), func(int) hub.Page { return hub.Page{} }, nil, func(_ int, b []byte) error {
		if !json.Valid(b) {
			return errors.New("a stream report that is not JSON")
		}
		out = append(out, b)
		return nil
	})
	return out, err
}
