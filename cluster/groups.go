package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/hub"
)

// groupSub is this node's interest in one group.
type groupSub struct {
	sub        *nats.Subscription
	emptySince time.Time // zero while the group has local members
}

// groupInbox bounds the group receive path: the messages waiting for the
// workers, all together. A worker's full channel makes nats.go drop the
// message and report a slow consumer (at most once delivery to other
// nodes' members, as a full member queue).
const groupInbox = 1 << 16

// groupToken maps a group name to a subject token: names are
// [A-Za-z0-9._:-], and '.' would split NATS tokens, so it becomes '~'
// (which no name has, so the mapping reverses).
func groupToken(name string) string { return strings.ReplaceAll(name, ".", "~") }

func tokenGroup(tok string) string { return strings.ReplaceAll(tok, "~", ".") }

func (h *Hub) groupSubject(name string) string { return h.prefix + ".g." + groupToken(name) }

// startGroups starts the workers and the interest reaper. Each group's
// subscription delivers into one worker's channel (chosen by the group's
// hash), so one group's messages stay in order while groups spread over
// the cores, and no goroutine stands between nats.go and the worker.
func (h *Hub) startGroups() {
	h.seed = maphash.MakeSeed()
	h.workers = make([]chan *nats.Msg, workerCount)
	for i := range h.workers {
		ch := make(chan *nats.Msg, groupInbox/workerCount)
		h.workers[i] = ch
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				select {
				case <-h.ctx.Done():
					return
				case m := <-ch:
					if m.Sub == nil { // a mark (nats.go sets Sub on every message it delivers)
						if done, ok := h.marks.LoadAndDelete(m); ok {
							close(done.(chan struct{}))
						}
						continue
					}
					name := tokenGroup(m.Subject[len(h.prefix)+len(".g."):])
					if hook := h.groupHook.Load(); hook != nil {
						(*hook)(name)
					}
					_, _ = h.mem.Publish(h.ctx, name, hub.NewMessage(m.Data))
				}
			}
		}()
	}
	h.wg.Add(1)
	go h.reap()
}

// worker is the channel group's messages go to.
func (h *Hub) worker(group string) chan *nats.Msg {
	return h.workers[maphash.String(h.seed, group)%uint64(len(h.workers))]
}

func (h *Hub) stopGroups() {
	h.interestMu.Lock()
	defer h.interestMu.Unlock()
	for name, s := range h.subs {
		_ = s.sub.Unsubscribe()
		delete(h.subs, name)
	}
}

// joinLocal joins one of this node's connections and makes sure the node
// has the group's interest before the join is answered: a publish sent
// after the caller heard "joined" reaches the member (through this node's
// NATS server; across servers the route carries it in the same moment).
// The flush that confirms it waits requestTimeoutMillis at most (past it
// the origin has given up on the call): it runs on the goroutine that
// serves every call on this node's byte (handleConn) and under
// interestMu, and nats.go's Flush waited 10 s for a server that does not
// answer on the data connection, every call to this node (and every join
// and pace here) with it. A flush that fails answers the join all the
// same, as before (logged): the subscription stands, NATS replays it on
// reconnect.
func (h *Hub) joinLocal(group, id string) error {
	if err := h.mem.Join(h.ctx, group, id); err != nil {
		return err
	}
	h.interestMu.Lock()
	defer h.interestMu.Unlock()
	if s := h.subs[group]; s != nil {
		s.emptySince = time.Time{}
		return nil
	}
	sub, err := h.data.ChanSubscribe(h.groupSubject(group), h.worker(group))
	if err != nil {
		return fmt.Errorf("%w: subscribing group %s: %v", hub.ErrUnavailable, group, err)
	}
	h.subs[group] = &groupSub{sub: sub}
	if err := h.data.FlushTimeout(h.cfg.requestTimeout()); err != nil {
		h.log.Warn("group subscription not confirmed; NATS replays it on reconnect", "group", group, "error", err)
	}
	return nil
}

// reap drops the interest in groups without local members for
// groupLingerSeconds (a flapping group keeps its subscription).
func (h *Hub) reap() {
	h.every(min(max(h.cfg.linger()/2, 100*time.Millisecond), time.Second), func() {
		now := time.Now()
		h.interestMu.Lock()
		for name, s := range h.subs {
			switch {
			case h.mem.HasGroup(name):
				s.emptySince = time.Time{}
			case s.emptySince.IsZero():
				s.emptySince = now
				if h.cfg.linger() > 0 {
					continue
				}
				fallthrough
			case now.Sub(s.emptySince) >= h.cfg.linger():
				_ = s.sub.Unsubscribe()
				delete(h.subs, name)
			}
		}
		h.interestMu.Unlock()
	})
}

// Subscriptions is the number of groups this node has NATS interest in.
func (h *Hub) Subscriptions() int {
	h.interestMu.Lock()
	defer h.interestMu.Unlock()
	return len(h.subs)
}

// Publish implements hub.Router: one NATS message for every other node
// with members (NATS routes it only where the interest is), then this
// node's members. The counts are this node's; Forwarded says the message
// went to the cluster. While NATS is unreachable the publish fails (500)
// and is delivered nowhere.
func (h *Hub) Publish(ctx context.Context, group string, m *hub.Message) (hub.Delivery, error) {
	if err := h.data.Publish(h.groupSubject(group), m.Data); err != nil {
		return hub.Delivery{}, fmt.Errorf("%w: publishing to group %s: %v", hub.ErrUnavailable, group, err)
	}
	d, err := h.mem.Publish(ctx, group, m)
	d.Forwarded = true
	return d, err
}

// Flush returns once this node's NATS server has every group message this
// node published before the call, or fails (within requestTimeoutMillis):
// a change stream's batch counts as delivered only then, so a batch NATS
// did not take is offered again (at least once).
func (h *Hub) Flush(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout())
	defer cancel()
	if err := h.data.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("%w: flushing group messages: %v", hub.ErrUnavailable, err)
	}
	return nil
}

// DrainGroups returns once every group message that the other live nodes
// published before the call has been handed to this node's members (the
// frames queued on their connections), or when ctx ends. A graceful
// shutdown calls it before it closes its clients: a publish another node
// answered before the shutdown began could still be on its way (in the
// publisher's NATS buffer, on a route, in this node's workers' channels)
// and was lost to this node's members when their close frame came first
// (found by TestClusterRollingRestart under load).
//
// Each live node is asked over the data connection (subject .d, answered
// by the node on its own data connection): NATS keeps one connection's
// messages in order from end to end, so the answer comes after every
// group message that node published before it, and those were in this
// node's workers' channels when it came. A mark in each worker's channel
// then waits for them to be handed over. A node that does not answer
// within requestTimeoutMillis (or an older version, which has no .d:
// no responders) is waited for no longer.
func (h *Hub) DrainGroups(ctx context.Context) {
	if h.closing.Load() {
		return // closed already (a second Shutdown): nothing to drain into
	}
	rctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout())
	defer cancel()
	var wg sync.WaitGroup
	for _, b := range h.live() {
		wg.Go(func() {
			if _, err := h.data.RequestWithContext(rctx, h.subject(b, "d"), nil); err != nil && !errors.Is(err, nats.ErrNoResponders) {
				h.log.Warn("group messages from a node not drained before closing the clients", "node", hub.NodeHex(b), "error", err)
			}
		})
	}
	wg.Wait()
	dones := make([]chan struct{}, 0, len(h.workers))
	for _, ch := range h.workers {
		done := h.mark(ctx, ch)
		if done == nil {
			return
		}
		dones = append(dones, done)
	}
	h.step("drain-marks")
	for _, done := range dones {
		select {
		case <-done:
		case <-ctx.Done():
			return
		case <-h.ctx.Done():
			return
		}
	}
}

// mark puts a mark in the worker channel ch and returns the channel its
// worker closes when it reaches the mark: everything in ch before it has
// then been handed to this node's members. nil when ctx ended or the
// workers stopped first.
func (h *Hub) mark(ctx context.Context, ch chan *nats.Msg) chan struct{} {
	mark, done := &nats.Msg{}, make(chan struct{})
	h.marks.Store(mark, done)
	select {
	case ch <- mark:
		return done
	case <-ctx.Done():
	case <-h.ctx.Done(): // the workers stopped
	}
	h.marks.Delete(mark)
	return nil
}

var _ hub.Pacer = (*Hub)(nil)

// Pace implements hub.Pacer: this node's members are waited for here,
// and every other node (paceTargets) is asked at once over the data
// connection (subject .p, handlePace). NATS keeps one connection's messages in order,
// so the question reaches a node after every message this node published
// to the group before it; the node answers once those were handed to its
// members (within requestTimeoutMillis) and they are no longer
// backlogged (within hub.PaceWait). A node that does not answer is waited
// for requestTimeoutMillis more at most; no responders (an older
// version) is not waited for.
func (h *Hub) Pace(ctx context.Context, group string) {
	ctx, cancel := context.WithTimeout(ctx, hub.PaceWait+2*h.cfg.requestTimeout())
	defer cancel()
	var wg sync.WaitGroup
	for _, b := range h.paceTargets() {
		wg.Go(func() {
			m := nats.NewMsg(h.subject(b, "p"))
			m.Header.Set(hdrGroup, group)
			_, _ = h.data.RequestMsgWithContext(ctx, m) // best effort: pacing never fails a publish
		})
	}
	h.mem.Pace(ctx, group)
	wg.Wait()
}

// paceTargets are the nodes Pace asks: every other node this one knows
// of, up or not, and whatever the registry says of it now. A group
// message reaches a node through its NATS interest, not through the
// registry (whose view lags under load, or while a node renews late), and
// asking a node that is not there costs nothing: no responders.
func (h *Hub) paceTargets() []byte {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]byte, 0, len(h.peers))
	for b := range h.peers {
		if b != h.self {
			out = append(out, b)
		}
	}
	return out
}

// paceWaiters bounds the goroutines handlePace runs at once. A stream's
// group target paces one step at a time (each asks every node once and
// waits), so a node is asked by at most as many paces at once as the
// cluster has streams leading with group targets; a peer or a client of
// NATS that floods .p would otherwise start a goroutine per question,
// each living up to requestTimeoutMillis + hub.PaceWait.
const paceWaiters = 64

// paceWaits are handlePace's goroutines: how many run (at most
// paceWaiters), the most that ever ran at once, the questions refused
// because paceWaiters ran, and whether the hub closed (no goroutine
// starts after that; Close waits for those that run).
type paceWaits struct {
	mu            sync.Mutex
	running, peak int
	closed        bool
	wg            sync.WaitGroup
	refused       atomic.Int64
}

// start takes a place for a pacing goroutine, false when paceWaiters run
// or the hub closed.
func (p *paceWaits) start() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.running >= paceWaiters {
		return false
	}
	p.running++
	p.peak = max(p.peak, p.running)
	p.wg.Add(1) // under mu, never after close's Wait began
	return true
}

func (p *paceWaits) done() {
	p.mu.Lock()
	p.running--
	p.mu.Unlock()
	p.wg.Done()
}

// close refuses new pacing goroutines and waits for those that run
// (they end with the hub's context).
func (p *paceWaits) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}

// handlePace answers a publisher's Pace (subject .p) for this node's
// members of the group: on a goroutine of its own, so that one stream's
// wait does not hold another's answer. The worker's backlog before the
// question is waited for requestTimeoutMillis at most (a node behind is
// not a member's fault, and excuses nobody), the members hub.PaceWait.
// With paceWaiters goroutines waiting already (or the hub closing) the
// question is answered at once with status 503 and counted
// (PaceStats().Refused, wsgate_stream_pace_refused_total): the publisher
// ignores what a node answers and goes on, as for a node that has no
// members, so a refusal only means that this step was not paced here.
func (h *Hub) handlePace(m *nats.Msg) {
	if !h.owner(time.Now()) {
		h.notOwner()
		return
	}
	group := m.Header.Get(hdrGroup)
	h.interestMu.Lock()
	_, subscribed := h.subs[group]
	h.interestMu.Unlock()
	if !subscribed {
		_ = m.Respond(nil) // nothing of the group's came here
		return
	}
	if !h.paces.start() {
		h.paces.refused.Add(1)
		r := nats.NewMsg(m.Reply)
		r.Header.Set(hdrStatus, strconv.Itoa(http.StatusServiceUnavailable))
		r.Header.Set(hdrError, fmt.Sprintf("pace refused: %d paces waiting on this node already, or it is closing", paceWaiters))
		_ = m.RespondMsg(r)
		return
	}
	go func() {
		defer h.paces.done()
		defer func() { _ = m.Respond(nil) }()
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.requestTimeout())
		defer cancel()
		// The group's messages that came before this question are in its
		// worker's channel (nats.go put them there, in order, before it
		// handed this one to its callback).
		done := h.mark(ctx, h.worker(group))
		if done == nil {
			return
		}
		select {
		case <-done:
			h.mem.Pace(h.ctx, group) // bounded by hub.PaceWait
		case <-ctx.Done():
		}
	}()
}

// PaceStats reports what Pace did for this node's members, and (Refused)
// the other nodes' pacing questions this node answered at once because
// paceWaiters of them were waiting already (handlePace).
func (h *Hub) PaceStats() hub.PaceStats {
	st := h.mem.PaceStats()
	st.Refused = h.paces.refused.Load()
	return st
}
