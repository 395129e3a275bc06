package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/mono"
)

// entry is a node's registry value, key node.<NN>.
type entry struct {
	Name      string `json:"name"`
	Inc       string `json:"inc"`
	StartedAt int64  `json:"startedAt"`
	HTTP      string `json:"http,omitempty"`
	Renewed   int64  `json:"renewed"` // unix ms of the write
	State     string `json:"state"`   // joining | up | gone
	By        string `json:"by,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// stateJoining is an entry claimed at start whose node may not be
// subscribed yet (announce makes it up). It is written with a TTL of its
// own, joinTTL, and refreshed while Start runs (keepJoining): a node that
// dies while joining frees its byte within joinTTL, not leaseSeconds.
const stateJoining = "joining"

// joinTTL is how long a joining entry lives unless refreshed or made up:
// nodeTimeoutMillis in whole seconds (a message TTL's unit), at least 1 s;
// it is refreshed every heartbeatMillis, at least 3 times within it. A node
// that dies while joining is thus gone within the time a host loss takes.
func (c *Config) joinTTL() time.Duration {
	return max(time.Second, (c.nodeTimeout() + time.Second - 1).Truncate(time.Second))
}

// peer is what this node knows of another (or itself).
type peer struct {
	e       entry
	rev     uint64
	present bool // the registry holds an entry for the byte
	// localGone: taken for gone here while the registry could not commit
	// it (its stream was electing a leader); committed later, or cleared
	// if the same incarnation is heard again.
	localGone bool
	// goneWhy is the reason localGone was taken on, for its commit.
	goneWhy  string
	lastSeen time.Time // last heartbeat, or when the entry appeared
	hb       heartbeat
	// refusedAt: when a check (gonecheck.go) began that found the direct
	// link of incarnation refusedInc refusing connections.
	refusedAt  time.Time
	refusedInc string
	// answered: an incarnation of the node that answered a ping of this
	// node's over NATS (confirm, reachPeers), or that pinged this node at
	// its start (pingedBy): heard, as a heartbeat would be.
	answered string
	// confirming: a confirm of the node runs.
	confirming bool
}

type heartbeat struct {
	Node   string `json:"node"`
	Name   string `json:"name"`
	Inc    string `json:"inc"`
	State  string `json:"state"`
	Conns  int    `json:"conns"`
	Groups int    `json:"groups"`
	HTTP   string `json:"http,omitempty"`
	Q      string `json:"q,omitempty"` // direct query address (direct.go)
	T      int64  `json:"t"`
	// Seq counts the sender's heartbeats (from 1): which of two nodes
	// heard it later (judge.go). 0 from a node that does not count them.
	Seq uint64 `json:"seq,omitempty"`
}

func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func nodeKey(b byte) string { return "node." + hub.NodeHex(b) }

func keyNode(key string) (byte, bool) {
	hx, ok := strings.CutPrefix(key, "node.")
	if !ok || len(hx) != 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(hx, 16, 8)
	if err != nil || v > hub.MaxNode {
		return 0, false
	}
	return byte(v), true
}

// openBucket creates the registry bucket if missing, retrying until the
// deadline: a JetStream cluster whose servers start together needs a few
// seconds to elect its leaders.
func (h *Hub) openBucket(ctx context.Context, replicas int) error {
	kv, replicas, err := h.openKV(ctx, jetstream.KeyValueConfig{
		Bucket:         "WSGATE_" + h.cfg.Name + "_NODES",
		History:        1,
		TTL:            h.cfg.lease(),
		Storage:        jetstream.FileStorage,
		Replicas:       replicas,
		LimitMarkerTTL: time.Second,
	})
	if err != nil {
		return fmt.Errorf("the node registry did not answer: %w", err)
	}
	h.kv, h.replicas = kv, replicas
	return nil
}

// openKV opens a bucket, creating it if missing, retrying until ctx ends;
// it returns the replicas it has (fewer than asked when the JetStream
// servers are fewer).
func (h *Hub) openKV(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, int, error) {
	js, err := jetstream.New(h.ctl)
	if err != nil {
		return nil, 0, err
	}
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err := js.KeyValue(actx, cfg.Bucket)
		if err != nil {
			h.log.Debug("bucket not found", "bucket", cfg.Bucket, "error", err)
			kv, err = js.CreateKeyValue(actx, cfg)
		}
		cancel()
		if err == nil {
			return kv, cfg.Replicas, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && cfg.Replicas > 1 && (apiErr.ErrorCode == 10074 || apiErr.ErrorCode == 10023) {
			// replicas > 1 unsupported (no JetStream cluster) or not
			// enough JetStream servers: fewer replicas.
			cfg.Replicas--
			continue
		}
		h.log.Debug("bucket not ready", "bucket", cfg.Bucket, "error", err)
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("JetStream KV %s: %w", cfg.Bucket, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// watch follows the registry; ready is closed once the initial values are in.
//
// nats.go's KV watch is an ordered push consumer (R1, in memory) with idle
// heartbeats every 5 s; it notices that it stopped receiving only when an
// activity check, every 10 s, finds nothing (no message, no heartbeat)
// since the last one, then recreates the consumer, and a recreation that
// times out (the registry's stream electing a leader) waits for the next
// check (nats.go's js.go: activityCheck, resetOrderedConsumer). A consumer
// on the server of a node just killed thus delivered nothing for 10–20 s,
// or more across an election (C8 under load: 20 s and more, every registry
// change on that node waiting on it). This node knows the revisions its
// own writes and reads got from the registry (learned): when the watch has
// not delivered one of them within watchStall of learning it, it is taken
// for stalled and recreated. Its initial values bring every entry's latest.
func (h *Hub) watch(ctx context.Context, ready chan<- struct{}) {
	defer h.wg.Done()
	t := time.NewTicker(h.watchStall() / 4)
	defer t.Stop()
	for ctx.Err() == nil {
		w, err := h.kv.WatchAll(ctx)
		if err != nil {
			h.log.Warn("cluster registry watch failed; retrying", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		h.follow(ctx, w, &ready, t.C)
		_ = w.Stop()
	}
}

// follow applies watcher w's updates until it ends, ctx ends, or it is
// found stalled (at a tick of tick).
func (h *Hub) follow(ctx context.Context, w jetstream.KeyWatcher, ready *chan<- struct{}, tick <-chan time.Time) {
	gen := h.watchGen.Add(1)
	from := time.Duration(mono.Since())
	for {
		select {
		case <-ctx.Done():
			return
		case up, ok := <-w.Updates():
			switch {
			case !ok:
				return
			case up == nil:
				if *ready != nil {
					close(*ready)
					*ready = nil
				}
				// The initial values bring every key's latest: a
				// revision learned before and not among them was
				// removed since (an expired entry) and will not come.
				if k, d := h.knownRev.Load(), h.watchRev.Load(); k > d {
					h.knownRev.CompareAndSwap(k, d)
				}
			case gen != h.watchStalled.Load():
				maxStore(&h.watchRev, up.Revision())
				h.apply(up)
			}
		case <-tick:
			known, at := h.knownRev.Load(), time.Duration(h.knownAt.Load())
			if known <= h.watchRev.Load() || mono.Since()-max(at, from) < h.watchStall() {
				continue
			}
			h.watchRestarts.Add(1)
			h.log.Warn("cluster registry watch stalled; recreating it", "revision", known, "delivered", h.watchRev.Load(), "stalledFor", (mono.Since() - max(at, from)).String())
			return
		}
	}
}

// watchStall is how long the watch may lag behind a revision this node
// learned from the registry before it is recreated: two heartbeats (a
// healthy watch delivers within milliseconds).
func (h *Hub) watchStall() time.Duration { return 2 * h.cfg.heartbeat() }

// learned notes a revision the registry answered this node (its write
// applied, or a read): the watch should deliver it (follow).
func (h *Hub) learned(rev uint64) {
	if maxStore(&h.knownRev, rev) {
		h.knownAt.Store(int64(mono.Since()))
	}
}

// maxStore raises v to n, reporting whether it did.
func maxStore(v *atomic.Uint64, n uint64) bool {
	for {
		cur := v.Load()
		if n <= cur {
			return false
		}
		if v.CompareAndSwap(cur, n) {
			return true
		}
	}
}

// apply records one registry change.
func (h *Hub) apply(up jetstream.KeyValueEntry) {
	h.step("apply")
	b, ok := keyNode(up.Key())
	if !ok {
		return
	}
	h.mu.Lock()
	p := h.peer(b)
	if up.Revision() < p.rev {
		h.mu.Unlock()
		return // older than what a CAS of ours already recorded
	}
	p.rev = up.Revision()
	if up.Operation() != jetstream.KeyValuePut {
		p.present = false // deleted at shutdown, or expired (TTL marker)
		p.e = entry{}
	} else {
		var e entry
		if json.Unmarshal(up.Value(), &e) == nil {
			if !p.present || p.e.Inc != e.Inc {
				// A new incarnation: a fresh heartbeat clock, and what was
				// taken for gone locally was the previous one.
				p.lastSeen, p.localGone = time.Now(), false
			}
			p.e, p.present = e, true
		}
	}
	if !p.present || p.e.State == "gone" {
		h.signalGoneLocked()
	}
	confirm := h.confirmingLocked(b, p)
	// Until Start made the entry up, announce judges a change of it
	// (wentUp), not a fence.
	notMine := b == h.self && h.claimed && (!p.present || p.e.Inc != h.inc || p.e.State == "gone")
	if notMine {
		h.answerUntil.Store(0) // another node may hold the byte: silent (owner)
	}
	mine := notMine && h.announced.Load()
	seen := fmt.Sprintf("op %v, revision %d, incarnation %q (mine %q), state %q", up.Operation(), up.Revision(), p.e.Inc, h.inc, p.e.State)
	claim := h.claims
	h.mu.Unlock()
	if confirm != "" {
		go h.confirm(b, confirm)
	}
	if mine {
		h.startFence(claim, "this node's registry entry was taken or declared gone: "+seen)
	}
}

// signalGoneLocked wakes the calls waiting on a node (call); h.mu must be
// held for writing.
func (h *Hub) signalGoneLocked() {
	next := make(chan struct{})
	close(*h.goneSignal.Swap(&next))
}

// initGoneSignal gives a new hub its first goneSignal.
func (h *Hub) initGoneSignal() {
	c := make(chan struct{})
	h.goneSignal.Store(&c)
}

// peer returns the record of b, creating it; h.mu must be held.
func (h *Hub) peer(b byte) *peer {
	p := h.peers[b]
	if p == nil {
		p = &peer{}
		h.peers[b] = p
	}
	return p
}

// me is this node's registry value under incarnation inc: joining until
// Start announced the node, up after.
func (h *Hub) me(inc string) []byte { return h.value(inc, h.state()) }

// value is this node's registry value under incarnation inc in state.
func (h *Hub) value(inc, state string) []byte {
	b, _ := json.Marshal(entry{Name: h.cfg.Node.Name, Inc: inc, StartedAt: h.started.UnixMilli(), HTTP: h.http, State: state, Renewed: time.Now().UnixMilli()})
	return b
}

func (h *Hub) state() string {
	if h.announced.Load() {
		return "up"
	}
	return stateJoining
}

// ttl is the TTL of this node's entry as written now: joinTTL while it is
// joining, 0 (the bucket's, leaseSeconds) once up.
func (h *Hub) ttl() time.Duration {
	if h.announced.Load() {
		return 0
	}
	return h.cfg.joinTTL()
}

// writeEntry writes val to key by compare-and-set against rev (kv.Update),
// with a TTL of its own when ttl is not 0 (kv.Update takes none).
func (h *Hub) writeEntry(ctx context.Context, key string, val []byte, rev uint64, ttl time.Duration) (uint64, error) {
	if ttl == 0 {
		return h.kv.Update(ctx, key, val, rev)
	}
	js, err := jetstream.New(h.ctl)
	if err != nil {
		return 0, err
	}
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: "$KV." + h.kv.Bucket() + "." + key, Data: val},
		jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttl))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// claim takes a node byte: the configured one, or with auto the first free
// one from a hash of the node name. Bytes never held (or released) are
// tried before bytes declared gone, so a fenced node usually finds its own
// byte still free to take back.
func (h *Hub) claim(ctx context.Context) error {
	for {
		err := h.claimOnce(ctx)
		if err == nil {
			h.keepJoining()
			return nil
		}
		var final *finalError
		if errors.As(err, &final) {
			return err
		}
		// The registry's stream may still be electing its leader (a
		// JetStream cluster starting together, a loaded machine).
		h.log.Debug("claiming a node byte failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// errClaimRaced is a claim that lost a race with a change of the entry:
// it was gone when read after the create found it (a joining entry's TTL
// ran out, and its marker went, in between), or moved before the write.
// The byte may be free now: a configured byte is claimed again (claim
// retries), not reported held; auto goes on to the next byte.
var errClaimRaced = errors.New("the registry entry changed during the claim")

// finalError is a claim failure that retrying does not cure.
type finalError struct{ msg string }

func (e *finalError) Error() string { return e.msg }

func (h *Hub) claimOnce(ctx context.Context) error {
	if b, ok := h.cfg.Node.ID.Static(); ok {
		ok, err := h.claimWithin(ctx, b, true)
		if err != nil {
			return err // errClaimRaced among them: claim tries again
		}
		if !ok {
			h.mu.RLock()
			p := h.peer(b)
			e := p.e
			h.mu.RUnlock()
			return &finalError{fmt.Sprintf("cluster.node.id %d is held by %s (incarnation %s, since %s); choose another id or use auto",
				b, e.Name, e.Inc, time.UnixMilli(e.StartedAt).UTC().Format(time.RFC3339))}
		}
		return nil
	}
	f := fnv.New32a()
	_, _ = f.Write([]byte(h.cfg.Node.Name))
	start := f.Sum32() % (hub.MaxNode + 1)
	for _, takeGone := range []bool{false, true} {
		for i := range uint32(hub.MaxNode + 1) {
			b := byte((start + i) % (hub.MaxNode + 1))
			h.mu.RLock()
			left := h.left[b]
			h.mu.RUnlock()
			if left {
				continue // given up by a move: never minted again here
			}
			ok, err := h.claimWithin(ctx, b, takeGone)
			if errors.Is(err, errClaimRaced) {
				continue // the next pass may get it
			}
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
		}
	}
	return &finalError{"no free node byte: 255 nodes hold every one (or this process gave some up, moving)"}
}

// claimWithin is claimByte within requestTimeoutMillis (and the
// goneGraceMillis its check of a previous incarnation may take): a write
// whose answer is lost is given up then, and read back, instead of
// holding the start until its timeout.
func (h *Hub) claimWithin(ctx context.Context, b byte, takeGone bool) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout()+h.cfg.goneGrace())
	defer cancel()
	return h.claimByte(cctx, b, takeGone)
}

// claimByte tries to own b by compare-and-set: false when another
// incarnation holds it, errClaimRaced when the entry changed under the
// claim.
//
// A write whose answer was lost (it timed out here, a JetStream leader
// answering late) may have been applied: the entry is read back from the
// stream's leader at once, and if it holds this incarnation the claim
// is this node's, as of the first such write's send time (sending).
// Before, the claim was adopted only by the next attempt, with no send
// time known: the node answered nothing on its byte until its next
// write, after a fence's re-claim up to leaseSeconds/5.
func (h *Hub) claimByte(ctx context.Context, b byte, takeGone bool) (bool, error) {
	key := nodeKey(b)
	inc := h.incarnation()
	var opts []jetstream.KVCreateOpt
	ttl := h.ttl()
	if ttl != 0 {
		opts = append(opts, jetstream.KeyTTL(ttl))
	}
	sent := h.sending(b, inc)
	rev, err := h.kv.Create(ctx, key, h.me(inc), opts...)
	if err == nil {
		h.own(b, rev, sent)
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		if mayBeApplied(err) && h.appliedAfterAll(b, inc) {
			return true, nil
		}
		return false, fmt.Errorf("claiming node byte %d: %w", b, err)
	}
	h.step("claim-read")
	cur, err := h.leaderGet(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, fmt.Errorf("claiming node byte %d: %w", b, errClaimRaced)
		}
		return false, fmt.Errorf("claiming node byte %d: %w", b, err)
	}
	var e entry
	_ = json.Unmarshal(cur.Value(), &e)
	h.mu.Lock()
	p := h.peer(b)
	if cur.Revision() >= p.rev {
		p.e, p.rev, p.present = e, cur.Revision(), true
	}
	h.mu.Unlock()
	if e.Inc == inc && e.State != "gone" {
		// This incarnation's entry already: a claim whose answer was
		// lost, or a renewal that wrote it during a fence.
		h.adoptClaim(b, inc, cur.Revision())
		return true, nil
	}
	take := takeGone && e.State == "gone"
	if !take && e.Name == h.cfg.Node.Name && e.Inc != "" && e.Inc == h.prevIncarnation() {
		take = true // this process's own entry, before a fence
	}
	if !take && e.Name == h.cfg.Node.Name && e.Inc != inc {
		// My previous incarnation, if it answers nothing, crashed.
		take = h.silent(ctx, b)
	}
	if !take {
		return false, nil
	}
	sent = h.sending(b, inc)
	rev, err = h.writeEntry(ctx, key, h.me(inc), cur.Revision(), ttl)
	if err != nil {
		if mayBeApplied(err) && h.appliedAfterAll(b, inc) {
			return true, nil
		}
		h.log.Debug("claiming node byte: the registry moved first", "node", hub.NodeHex(b), "revision", cur.Revision(), "error", err)
		return false, fmt.Errorf("claiming node byte %d: %w", b, errClaimRaced) // someone else moved first
	}
	h.own(b, rev, sent)
	return true, nil
}

// appliedAfterAll reads b's entry from the stream's leader after a claim
// of it under inc whose outcome is unknown (its answer lost, or no answer
// in time): if the entry holds inc, not gone, a write of this claim was
// applied, and b is this node's (adoptClaim). The read has a context of
// its own: the write may have used up the claim's.
func (h *Hub) appliedAfterAll(b byte, inc string) bool {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.requestTimeout())
	defer cancel()
	cur, err := h.leaderGet(ctx, nodeKey(b))
	if err != nil {
		return false
	}
	var e entry
	if json.Unmarshal(cur.Value(), &e) != nil || e.Inc != inc || e.State == "gone" {
		return false
	}
	h.log.Info("a claim of this node's byte whose answer was lost had been applied", "node", hub.NodeHex(b), "revision", cur.Revision())
	h.adoptClaim(b, inc, cur.Revision())
	return true
}

// adoptClaim records b claimed at rev, found holding inc (this
// incarnation) by a read from the stream's leader, not by a write's
// answer: as of the first write of it not credited yet (appliedSinceLocked).
func (h *Hub) adoptClaim(b byte, inc string, rev uint64) {
	h.mu.RLock()
	sent := h.appliedSinceLocked(b, inc, rev)
	h.mu.RUnlock()
	h.own(b, rev, sent)
}

// leaderEntry is a registry value read from the stream's leader.
type leaderEntry struct {
	value []byte
	rev   uint64
}

func (e leaderEntry) Value() []byte    { return e.value }
func (e leaderEntry) Revision() uint64 { return e.rev }

// leaderGet reads key from the registry stream's leader. kv.Get is a
// direct get, which any replica may answer: this node's own, behind after
// a partition, answered an old revision for seconds (once for over a
// minute), and every compare-and-set against it failed.
func (h *Hub) leaderGet(ctx context.Context, key string) (leaderEntry, error) {
	return h.leaderRead(ctx, h.kv.Bucket(), key)
}

// leaderRead reads key of bucket from its stream's leader (leaderGet).
func (h *Hub) leaderRead(ctx context.Context, bucket, key string) (leaderEntry, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + key})
	msg, err := h.ctl.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return leaderEntry{}, err
	}
	var r struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return leaderEntry{}, err
	}
	switch {
	case r.Error != nil && r.Error.Code == 404:
		return leaderEntry{}, jetstream.ErrKeyNotFound
	case r.Error != nil:
		return leaderEntry{}, fmt.Errorf("registry: %s", r.Error.Description)
	case r.Message == nil:
		return leaderEntry{}, errors.New("registry: empty answer")
	case strings.Contains(string(r.Message.Hdrs), "KV-Operation"),
		strings.Contains(string(r.Message.Hdrs), jetstream.MarkerReasonHeader):
		// Deleted or purged, or the server's marker of a value that
		// expired (kept LimitMarkerTTL): nats.go's Get says "deleted"
		// for both.
		return leaderEntry{}, jetstream.ErrKeyNotFound
	}
	return leaderEntry{value: r.Message.Data, rev: r.Message.Seq}, nil
}

// own records b claimed at rev by a write sent at sent (zero: sent at a
// time not known, by an earlier attempt: the node answers on b from its
// next write of the entry on).
func (h *Hub) own(b byte, rev uint64, sent time.Time) {
	h.learned(rev)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.self, h.ownRev, h.claimed, h.renewedAt, h.renewFailing = b, rev, true, time.Now(), time.Time{}
	h.selfB.Store(uint32(b))
	h.claims++
	p := h.peer(b)
	if rev >= p.rev {
		p.rev, p.present = rev, true
		p.e = entry{Name: h.cfg.Node.Name, Inc: h.inc, StartedAt: h.started.UnixMilli(), HTTP: h.http, State: h.state()}
	}
	if !sent.IsZero() {
		h.ownedUntilLocked(h.inc, sent, h.entryTTL())
	}
}

// entryTTL is how long this node's entry lives after a write now: its
// ttl, or the bucket's (leaseSeconds) once up.
func (h *Hub) entryTTL() time.Duration {
	if t := h.ttl(); t != 0 {
		return t
	}
	return h.cfg.lease()
}

// ownedUntilLocked records that this node's entry under incarnation inc,
// written at sent (the send time of a write known applied) and living
// ttl from when the registry stored it, cannot have expired before sent
// + ttl less a margin for the clocks' rates (ttl/8, at most a second: a
// node up with renewals failing falls silent that long before rule 3
// fences it, the stream lease's margin is 3 s): the node answers
// on its byte until then (answerUntil), unless its view of the registry
// names another incarnation or none, or inc is not its own any more (a
// fence began). h.mu held for writing.
func (h *Hub) ownedUntilLocked(inc string, sent time.Time, ttl time.Duration) {
	p := h.peers[h.self]
	if !h.claimed || inc != h.inc || p == nil || !p.present || p.e.Inc != inc || p.e.State == "gone" {
		return
	}
	if until := int64(sent.Sub(mono.Start) + ttl - min(ttl/8, time.Second)); until > h.answerUntil.Load() {
		h.answerUntil.Store(until)
	}
	if u := h.unsure; u.b == h.self && u.inc == inc && !u.sent.After(sent) {
		// Credited from here: a write sent before this one is never
		// applied after it.
		h.unsure = unsureWrite{}
	}
}

// unsureWrite is a write of this node's entry of byte b under incarnation
// inc, sent at sent, not credited to answerUntil (Hub.unsure).
type unsureWrite struct {
	b    byte
	inc  string
	sent time.Time
}

// sending notes a write of b's entry under inc about to be sent, and
// returns its send time. Every write of this node's entry notes itself so
// before it is sent: when its answer is lost it may have been applied all
// the same, and a read from the stream's leader that finds inc there at
// a revision later than any this node knows it wrote proves that a write
// since the last one credited to answerUntil was applied, sent no
// earlier than the first of them noted (a write sent before one known
// applied is a compare-and-set against an older revision: it is never
// applied after it). The first note is kept; a write of another byte or
// incarnation replaces it (a note is about the entry of its own byte and
// incarnation only: a write found applied with none credits nothing),
// but a write of an incarnation given up does not replace a note of the
// current one (a renewal of the previous claim sent while a fence claims
// the byte again: its entry is credited nothing anyway).
func (h *Hub) sending(b byte, inc string) time.Time {
	now := time.Now()
	h.mu.Lock()
	u := h.unsure
	if u.sent.IsZero() || (u.b != b || u.inc != inc) && (inc == h.inc || u.inc != h.inc) {
		h.unsure = unsureWrite{b: b, inc: inc, sent: now}
	}
	h.mu.Unlock()
	return now
}

// appliedSinceLocked is the send time to credit for b's entry found
// holding inc at rev by a read from the stream's leader, not by a write's
// answer: the first write of it noted since the last one credited
// (sending), if rev is later than every revision this node knows it wrote
// (ownRev); zero otherwise, which credits nothing. h.mu held.
func (h *Hub) appliedSinceLocked(b byte, inc string, rev uint64) time.Time {
	if u := h.unsure; u.b == b && u.inc == inc && rev > h.ownRev {
		return u.sent
	}
	return time.Time{}
}

// owner reports whether this node answers on its byte at now (a time
// with a monotonic reading): one atomic load (answerUntil).
func (h *Hub) owner(now time.Time) bool {
	return now.Sub(mono.Start) < time.Duration(h.answerUntil.Load())
}

// ping is a request asking node b whether it is there (handleConn
// answers it first).
func (h *Hub) ping(b byte) *nats.Msg {
	msg := nats.NewMsg(h.subject(b, "c"))
	msg.Header.Set(hdrOp, "ping")
	msg.Header.Set(hdrDeadline, strconv.FormatInt(time.Now().Add(h.cfg.attemptTimeout()).UnixMilli(), 10))
	return msg
}

// silent reports whether node b's subject had no responders for goneGrace.
func (h *Hub) silent(ctx context.Context, b byte) bool {
	deadline := time.Now().Add(h.cfg.goneGrace())
	for {
		_, err := h.ctl.RequestMsgWithContext(ctx, h.ping(b))
		if !errors.Is(err, nats.ErrNoResponders) {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// renew rewrites this node's entry by compare-and-set; it fences when the
// entry was taken or declared gone, or could not be renewed for a lease.
// It writes the incarnation of the claim it renews: a fence that began
// meanwhile must find its previous incarnation there to take the byte back.
func (h *Hub) renew(ctx context.Context) {
	h.mu.RLock()
	b, rev, last, claimed, claim, inc := h.self, h.ownRev, h.renewedAt, h.claimed, h.claims, h.inc
	h.mu.RUnlock()
	if !claimed || !h.announced.Load() {
		return // not up (a move to another byte: its joining entry is refreshed by keepJoining)
	}
	defer h.step("renew-done")
	h.step("renew-send")
	sent := h.sending(b, inc)
	rctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout())
	nrev, err := h.kv.Update(rctx, nodeKey(b), h.me(inc), rev)
	cancel()
	h.mu.RLock()
	stale := h.claims != claim
	h.mu.RUnlock()
	if f := h.renewHook.Load(); f != nil {
		(*f)(err)
	}
	switch {
	case stale:
		// The byte was claimed again (a fence re-registered) while this
		// renewal was out: its answer, and the renewal time read before
		// it, say nothing about the new entry (it fenced a node a second
		// time right after an outage beyond the lease).
		return
	case err == nil:
		h.learned(nrev)
		h.mu.Lock()
		if h.claims == claim {
			h.ownRev, h.renewedAt, h.renewFailing = nrev, time.Now(), time.Time{}
			h.ownedUntilLocked(inc, sent, h.cfg.lease())
		}
		h.mu.Unlock()
	case errors.Is(err, jetstream.ErrKeyExists), isWrongSequence(err):
		mine, gerr := h.stillMine(ctx, b, claim, inc)
		if mine {
			return // a renewal that timed out here had been applied
		}
		if gerr == nil {
			h.startFence(claim, "this node's registry entry changed under it: "+err.Error())
			return
		}
		// The entry could not be read (NATS just back, say): not
		// evidence either way; a failed renewal, which rules 2 and 3
		// judge (it fenced a node a second time right after an outage).
		h.renewFailed(claim, gerr, sent, last)
	default:
		h.renewFailed(claim, err, sent, last)
	}
}

// renewFailed handles a renewal of claim sent at sent that failed with
// err: the node fences once the last good one is a lease old (rule 3);
// before that the failure is remembered for rule 2.
func (h *Hub) renewFailed(claim uint64, err error, sent, last time.Time) {
	if time.Since(last) >= h.cfg.lease() {
		h.startFence(claim, "the registry could not be renewed for a lease: "+err.Error())
		return
	}
	h.mu.Lock()
	if h.claims == claim && h.renewFailing.IsZero() {
		h.renewFailing = sent
	}
	h.mu.Unlock()
	h.log.Warn("cluster registry renewal failed", "error", err)
}

// suspicious reports whether the registry renewal should run now rather
// than at its period: a renewal failed, or a peer missed two heartbeats.
// Fencing rule 2 counts from the first failed renewal, so the isolated
// node must find out soon.
func (h *Hub) suspicious() bool {
	h.mu.RLock()
	failing := !h.renewFailing.IsZero()
	h.mu.RUnlock()
	_, _, silent := h.hearing(2 * h.cfg.heartbeat())
	return failing || len(silent) > 0
}

// checkIsolation is fencing rule 2: connected to NATS, registry renewals
// failing for isolationSeconds, and fewer than a strict majority of the
// live set heard: this node is on the minority side of a partition (core
// NATS reaches it, the registry's quorum does not). The majority declares
// it gone after nodeTimeoutMillis and answers 410 for its ids, so it
// closes its clients rather than keep them connected but unreachable.
// A full NATS outage is rule 3's (leaseSeconds): nobody can declare
// anybody gone then. The minority must have lasted nodeTimeoutMillis
// without a break (reapSilent keeps minoritySince), not be one sample: a
// node on the majority side whose process was starved for a few seconds
// heard nobody for a moment, while the registry, whose leader the lost
// node was, still elected a new one and failed its renewals; it fenced
// and closed its live clients (TestClusterHostLoss under load, with rule
// 2 checked every quarter heartbeat: all three nodes fenced).
func (h *Hub) checkIsolation() {
	h.mu.RLock()
	since, claim := h.renewFailing, h.claims
	h.mu.RUnlock()
	if since.IsZero() || time.Since(since) < h.cfg.isolation() || !h.ctl.IsConnected() {
		return
	}
	heard, live, _ := h.hearing(h.cfg.nodeTimeout())
	minority := h.minoritySince.Load()
	if 2*heard > live || minority == 0 || time.Since(time.Unix(0, minority)) < h.cfg.nodeTimeout() {
		return
	}
	h.startFence(claim, fmt.Sprintf("isolated: registry renewals failing for %v while %d of %d nodes are heard (fewer than a majority for %v)", time.Since(since).Round(time.Second), heard, live, time.Since(time.Unix(0, minority)).Round(100*time.Millisecond)))
}

// stillMine reads this node's entry from the registry stream's leader
// after a renewal of claim (writing incarnation inc) was refused for its
// revision: a renewal whose answer timed out (the registry electing a
// leader) may have been applied, leaving this node a revision behind. If
// the entry still holds inc, up, at a revision after the one this node
// holds, and claim is still current, that revision is adopted (mine). A
// claim given up meanwhile (a fence claimed the byte again after the
// renewal's stale check) is mine too: the refusal is no evidence about the
// new claim. err is a failed read, or an entry of this claim that does not
// explain the refusal (not after the revision the renewal was refused
// for): both are a failed renewal, which fencing rules 2 and 3 judge.
//
// It compares against the renewal's incarnation and claim, not the
// current ones, so its verdict is about the claim it renews by itself.
// Against the current incarnation it came out the same
// (TestClusterRefusedRenewalAcrossReclaim holds a refused renewal across
// a fence and across a re-claim): renewals run one at a time on the tick,
// so after the stale check only the fence's own claim can write a new
// incarnation, its own() already holds that revision and adoption only
// raises it, and a "not mine" about an earlier claim reaches startFence
// under that claim's number and is dropped there.
//
// The read goes to the leader, as claims' do: a direct get may be answered
// by a replica that is behind, whose older revision of this claim made the
// refusal look like a renewal already applied, with nothing to adopt:
// renewals failed unnoticed (neither adopted nor counted as failing) until
// the replica caught up or the entry's TTL ran out and the node fenced.
func (h *Hub) stillMine(ctx context.Context, b byte, claim uint64, inc string) (bool, error) {
	gctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout())
	defer cancel()
	cur, err := h.leaderGet(gctx, nodeKey(b))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var e entry
	if json.Unmarshal(cur.Value(), &e) != nil || e.Inc != inc || e.State != "up" {
		return false, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.claims != claim:
		return true, nil
	case cur.Revision() <= h.ownRev:
		return false, fmt.Errorf("the registry refused revision %d but holds this claim at revision %d", h.ownRev, cur.Revision())
	}
	if at := h.appliedSinceLocked(b, inc, cur.Revision()); !at.IsZero() {
		// The renewal applied was sent at at or later: the entry lives
		// a lease from then, and rule 3 counts from there too.
		h.ownedUntilLocked(inc, at, h.cfg.lease())
		if at.After(h.renewedAt) {
			h.renewedAt = at
		}
	}
	h.ownRev = cur.Revision()
	return true, nil
}

// isWrongSequence reports whether err is a compare-and-set refused for
// its revision: 10071, or 10164, which a replicated stream answers
// instead while another write of the key is in flight (nats.go's
// ErrKeyExists and ErrKeyRevisionMismatch match both).
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// mayBeApplied reports whether a write of the registry that failed with
// err may have been applied all the same: the registry did not answer it
// (in time: a timeout, a connection lost meanwhile), rather than refuse
// it (an API error, a refused compare-and-set among them) or have nobody
// take it (no responders).
func mayBeApplied(err error) bool {
	var apiErr *jetstream.APIError
	return !errors.As(err, &apiErr) && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrNoStreamResponse)
}

// declareGone commits node b as gone. It reads the entry from the
// registry (not the watcher's copy) and writes "gone" by compare-and-set
// against that revision, unless the entry was written within the evidence
// window (the node renewed: it is alive) or holds another incarnation. When
// the registry cannot answer within an attempt (its stream may be electing
// a leader: the dead node may have led it, measured 4–20 s), b is taken for
// gone here at once and the commit is retried every heartbeat; it is
// undone if the same incarnation is heard again. It reports whether b is
// gone now.
func (h *Hub) declareGone(ctx context.Context, b byte, reason string) bool {
	return h.declareGoneSince(ctx, b, reason, time.Time{})
}

// declareGoneSince is declareGone on evidence gathered since since (not
// zero): an entry written after it is a node alive.
func (h *Hub) declareGoneSince(ctx context.Context, b byte, reason string, since time.Time) bool {
	h.mu.RLock()
	p := h.peers[b]
	var seen entry
	present := p != nil && p.present
	if present {
		seen = p.e
	}
	h.mu.RUnlock()
	if !present || seen.State == "gone" {
		return true
	}
	if !h.mayJudge(b, reason) || !h.reachesMajority(ctx, b) {
		return false
	}
	window := h.cfg.goneGrace() + h.cfg.attemptTimeout()
	switch {
	case !since.IsZero():
		window = time.Since(since)
	case reason == "silent":
		window = h.cfg.nodeTimeout()
	}
	if f := commitHook.Load(); f != nil {
		if err := (*f)(&h.cfg); err != nil {
			return h.goneLocally(b, seen, reason, err)
		}
	}
	gctx, cancel := context.WithTimeout(ctx, h.cfg.attemptTimeout())
	defer cancel()
	cur, err := h.kv.Get(gctx, nodeKey(b))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		h.mu.Lock()
		h.peer(b).present = false
		h.signalGoneLocked()
		h.mu.Unlock()
		return true
	case err != nil:
		return h.goneLocally(b, seen, reason, err)
	}
	var e entry
	_ = json.Unmarshal(cur.Value(), &e)
	if e.State == "gone" {
		h.record(b, e, cur.Revision())
		return true
	}
	if e.Inc != seen.Inc || time.Since(time.UnixMilli(e.Renewed)) < window {
		return false // a new incarnation, or it renewed while we waited: alive
	}
	e.State, e.By, e.Reason = "gone", h.cfg.Node.Name, reason
	val, _ := json.Marshal(e)
	nrev, err := h.kv.Update(gctx, nodeKey(b), val, cur.Revision())
	switch {
	case err == nil:
		h.record(b, e, nrev)
		h.log.Warn("cluster node declared gone", "node", hub.NodeHex(b), "name", e.Name, "reason", reason)
		return true
	case isWrongSequence(err):
		return false // it renewed meanwhile
	}
	return h.goneLocally(b, seen, reason, err)
}

// mayJudge reports whether this node's view is evidence that b is gone:
// it has heard a strict majority of the live set for nodeTimeoutMillis
// without a break, or (for "no responders") it heard b itself within
// nodeTimeoutMillis. A node cut off hears neither; a node just back from a
// partition hears some peers before the routes have brought back the
// others' interest, and without this rule it declared a live node gone on
// "no responders", which then fenced (settleSeconds covers a NATS
// reconnect, not a healed route; found by TestClusterHostLoss). A node
// heard a moment ago whose subject has no responders died: that stays fast.
// A node declaring on a peer's judgement (reasonPeer) has no view of b to
// weigh: the judging peer's rules held, and reachesMajority reaches a
// majority now.
func (h *Hub) mayJudge(b byte, reason string) bool {
	if reason == reasonPeer || h.heardMajorityFor(h.cfg.nodeTimeout()) {
		return true
	}
	return reason != "silent" && h.silentFor(b) < h.cfg.nodeTimeout()
}

// reachesMajority asks the live peers other than b, now, whether they
// are there (a ping on each one's subject, in parallel, each within
// attemptTimeoutMillis), and reports whether this node and those that
// answered are a strict majority of the live set. mayJudge rests on
// heartbeats, which lag by up to nodeTimeoutMillis: in the first seconds
// after a node is cut off, every peer still counts as heard, and the
// cut-off node took a live node for gone on "no responders" (the cut
// removes the interest its routes carried) or on the silence of the peer
// whose last heartbeat came first, and answered 410 for that node's live
// connections until it heard the others were silent too (found by
// TestClusterHostLoss in CI). A peer that answers is reached over NATS now.
// A peer counts only if it has not heard b since this node last did (the
// ping carries this node's last heartbeat of b, judge.go): this node's
// view of b may be older than the majority's, and its evidence is no
// evidence then (TestClusterPartialHealJudgesNobody: a node cut off,
// healed to B first, found A silent and without responders while B heard
// A throughout, and declared the live A gone). With two live nodes there
// is no majority without b, and the ping cannot tell a crash from a cut: the heartbeat rule alone decides, as
// docs/cluster.md says of two-node clusters. A result is reused for
// 100 ms, so calls waiting on one gone node ask once between them. A peer
// that takes b for gone itself counts whatever it heard (judge.go).
func (h *Hub) reachesMajority(ctx context.Context, b byte) bool {
	ok, _ := h.judgeRound(ctx, b)
	return ok
}

// judgeRound is reachesMajority's round of pings; peerGone: a peer
// answered that it takes b for gone (Wsg-Gone).
func (h *Hub) judgeRound(ctx context.Context, b byte) (ok, peerGone bool) {
	others := h.live()
	live := 1 + len(others)
	others = slices.DeleteFunc(others, func(p byte) bool { return p == b })
	h.probeMu.Lock()
	defer h.probeMu.Unlock()
	if time.Since(h.probeAt) < 100*time.Millisecond && h.probeLive == live && h.probeFor == b {
		return h.probeOK, h.probeGone
	}
	var reached, heard, gone atomic.Int32
	var wg sync.WaitGroup
	probe := h.probe(b)
	for _, p := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, h.cfg.attemptTimeout())
			defer cancel()
			if r, err := h.ctl.RequestMsgWithContext(pctx, probe(p)); err == nil {
				reached.Add(1)
				switch {
				case r.Header.Get(hdrGone) != "":
					gone.Add(1)
				case r.Header.Get(hdrHeard) != "":
					heard.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	ok = live <= 2 || 2*(1+int(reached.Load()-heard.Load())) > live
	peerGone = gone.Load() > 0
	h.probeAt, h.probeLive, h.probeFor, h.probeOK, h.probeGone = time.Now(), live, b, ok, peerGone
	if !ok {
		h.log.Info("cluster node not judged: no majority that has not heard it since this node did", "node", hub.NodeHex(b), "reached", reached.Load(), "heardIt", heard.Load(), "live", live)
	}
	return ok, peerGone
}

// record stores an entry this node wrote or read.
func (h *Hub) record(b byte, e entry, rev uint64) {
	h.learned(rev)
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.peer(b); rev >= p.rev {
		p.e, p.rev, p.present, p.localGone = e, rev, true, false
		if e.State == "gone" {
			h.signalGoneLocked()
		}
	}
}

// goneLocally takes b for gone on this node only (the registry did not
// answer), if this node may judge (mayJudge).
func (h *Hub) goneLocally(b byte, seen entry, reason string, err error) bool {
	if !h.mayJudge(b, reason) {
		return false
	}
	h.mu.Lock()
	p := h.peer(b)
	first := !p.localGone && p.e.Inc == seen.Inc
	if p.e.Inc == seen.Inc {
		p.localGone = true
		if first {
			p.goneWhy = reason
		}
	}
	if first {
		h.signalGoneLocked()
	}
	gone := p.localGone
	h.mu.Unlock()
	if first {
		h.log.Warn("cluster node taken for gone; the registry did not answer, committing later", "node", hub.NodeHex(b), "name", seen.Name, "reason", reason, "error", err)
	}
	return gone
}

// commitLocalGone retries the registry commit of nodes taken for gone here.
func (h *Hub) commitLocalGone() {
	h.mu.RLock()
	var pending []byte
	var why []string
	for b, p := range h.peers {
		if p.localGone {
			pending = append(pending, b)
			why = append(why, cmp.Or(p.goneWhy, "no responders"))
		}
	}
	h.mu.RUnlock()
	for i, b := range pending {
		// The evidence's window is the grace's (the commit comes a
		// heartbeat or more after the evidence).
		if !h.declareGoneSince(h.ctx, b, why[i], time.Now().Add(-h.cfg.goneGrace()-h.cfg.attemptTimeout())) {
			h.mu.Lock()
			h.peer(b).localGone = false // alive after all
			h.mu.Unlock()
		}
	}
}

// gone reports whether b is known gone: its entry says so, or the entry
// was removed. unknown is true when the registry never had it.
func (h *Hub) gone(b byte) (gone, known bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	if p == nil {
		return false, false
	}
	return !p.present || p.e.State == "gone" || p.localGone, true
}

// startFence runs fence once at a time, for evidence against claim (the
// count of h.claims it was found under): evidence against an earlier
// claim is about an incarnation that already fenced and registered
// again. A renewal out across that re-claim (its "could not be renewed
// for a lease", its failed read) reached here after the fence had
// finished, and fenced the node a second time for one NATS outage.
func (h *Hub) startFence(claim uint64, why string) {
	if h.closing.Load() || !h.fencing.CompareAndSwap(false, true) {
		return
	}
	h.mu.RLock()
	current := h.claims == claim
	h.mu.RUnlock()
	if !current { // no re-claim can happen now: fencing is held
		h.fencing.Store(false)
		h.log.Info("cluster node not fenced again: the evidence is about its previous claim", "reason", why)
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer h.fencing.Store(false)
		h.fence(why)
	}()
}

// fence closes every client connection (another node may already answer
// 410 for them) and registers a new incarnation under the same byte. When
// another incarnation holds the byte (it was free while this node stalled
// or was cut off past its entry's life, and was claimed), the node steps
// off the byte (leaveByte: its subjects are the holder's) and joins again
// as a start does: a node with node.id auto under another byte
// (moveByte); one with a configured node.id under its own, asking for it
// every second, once its holder is gone (or when this process is
// restarted): a byte an operator pinned does not move.
func (h *Hub) fence(why string) {
	h.log.Error("cluster node fenced: closing every connection", "reason", why)
	h.fenced.Add(1)
	h.mem.Each(func(c hub.Conn) bool {
		c.Close(hub.CloseFenced)
		return true
	})
	h.mu.Lock()
	h.prevInc, h.inc = h.inc, newIncarnation()
	h.answerUntil.Store(0) // until the new incarnation's claim
	b := h.self
	h.mu.Unlock()
	h.step("fence-claim")
	defer h.heldBy.Store(nil)
	_, pinned := h.cfg.Node.ID.Static()
	var held string // what /readyz says of the holder, once known
	for tries := 0; !h.closing.Load(); {
		if !h.moving.Load() {
			ctx, cancel := context.WithTimeout(h.ctx, h.cfg.requestTimeout())
			ok, err := h.claimByte(ctx, b, true)
			cancel()
			if ok {
				h.log.Info("cluster node registered again", "node", hub.NodeHex(b), "inc", h.incarnation())
				return
			}
			switch {
			case err == nil && pinned:
				// Another incarnation holds the byte: it was free meanwhile
				// (this node stalled past its entry's life) and was taken. It
				// stays taken while its holder lives, and the configured
				// node.id names it: said once, loudly, and by /readyz for as
				// long as it lasts. The node steps off the byte's subjects
				// (a ping answered here would hide the holder's death from
				// the peers: they would wait for its silence) and takes the
				// byte back once its holder is gone.
				e := h.holder(b)
				h.leaveByte()
				held = pinnedHeld(b, e)
				h.heldBy.Store(&held)
				h.log.Error("cluster node cannot take its byte back: another node took it while this one was cut off or stalled, and node.id pins it; it answers nothing on the byte and takes it back once that node is gone, or restart this process to join again (with another node.id, or auto)", "node", hub.NodeHex(b), "holder", e.Name, "holderInc", e.Inc)
			case err == nil:
				e := h.holder(b)
				held = fmt.Sprintf("fenced, and node byte %s is now held by %s (incarnation %s): moving to another node byte", hub.NodeHex(b), e.Name, e.Inc)
				h.heldBy.Store(&held)
				h.startMove(b, e)
			default:
				h.heldBy.Store(nil)
				h.log.Warn("cluster node cannot take its byte back yet", "node", hub.NodeHex(b), "error", err)
			}
		}
		if h.moving.Load() {
			err := h.moveByte(pinned)
			var final *finalError
			switch {
			case err == nil && pinned:
				h.log.Info("cluster node took its byte back from a node gone and registered there", "node", hub.NodeHex(b), "inc", h.incarnation())
				return
			case err == nil:
				h.log.Info("cluster node moved to another byte and registered there", "from", hub.NodeHex(b), "node", hub.NodeHex(h.Self()), "inc", h.incarnation())
				return
			case pinned && errors.As(err, &final):
				// Still held (claim's "is held by"): by whom now.
				why := pinnedHeld(b, h.holder(b))
				h.heldBy.Store(&why)
				h.log.Debug("cluster node byte still held by another node", "node", hub.NodeHex(b), "error", err)
			default:
				why := held + "; no byte taken yet (" + err.Error() + "), trying again"
				h.heldBy.Store(&why)
				if tries++; tries == 1 {
					h.log.Warn("cluster node could not join again yet; trying again every second", "from", hub.NodeHex(b), "error", err)
				} else {
					h.log.Debug("cluster node could not join again yet", "from", hub.NodeHex(b), "error", err)
				}
			}
		}
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// pinnedHeld is what /readyz says while a fenced node whose node.id is
// configured finds its byte b held by holder.
func pinnedHeld(b byte, holder entry) string {
	return fmt.Sprintf("fenced, and node byte %s is now held by %s (incarnation %s): restart this process to join the cluster again (it takes the byte back once that node is gone)", hub.NodeHex(b), holder.Name, holder.Inc)
}

// holder is the registry entry this node last saw for byte b.
func (h *Hub) holder(b byte) entry {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.peer(b).e
}

// leaveByte takes a fenced node off the byte another incarnation holds:
// from here no connection stays (those registered since the fence's sweep
// are closed now, later ones at their Register: moving), the byte's
// subjects are dropped (its holder answers there; a ping or a call
// answered, or left unanswered, here would hide the holder's death from
// its peers: no "no responders", only its silence), and the node is not
// up any more (announced false: its claims write joining entries, it
// sends no heartbeat and renews nothing, and a change of its entry seen
// by the watcher is judged by announce, as at a start). moveByte makes it
// a member again.
func (h *Hub) leaveByte() {
	h.moving.Store(true)
	h.mem.Each(func(c hub.Conn) bool {
		c.Close(hub.CloseFenced)
		return true
	})
	h.unsubscribeByte()
	h.announced.Store(false)
}

// startMove begins a fenced node's move (node.id auto) off byte from,
// which another incarnation (holder) holds (leaveByte). from is marked
// left: this process never claims it again, so no id of it is minted
// here again. Said once in the log.
func (h *Hub) startMove(from byte, holder entry) {
	h.leaveByte()
	h.mu.Lock()
	h.left[from] = true
	h.mu.Unlock()
	h.log.Error("cluster node byte taken by another node while this one was fenced: moving to another byte (node.id auto); its connections were closed, their ids answer 410", "node", hub.NodeHex(from), "holder", holder.Name, "holderInc", holder.Inc)
}

// moveByte makes this node, off its byte (leaveByte), a member again the
// way a start does (Start): it claims a byte (node.id auto: the first
// free one from a hash of node.name, skipping those it left; a
// configured node.id: that one, pinned, which fails with claim's "is
// held by" while its holder lives) joining, subscribes the byte's
// subjects, pings the live peers over them and rewrites the entry up
// (announce); then it sends a heartbeat, and the fence ends (new clients
// are admitted, their ids minted with the byte: Self). A move to another
// byte (not pinned) is counted (Moves). Stream leases are not touched: a
// term goes by its key's revisions, not by the node's byte
// (docs/cluster.md); a term's next renewal once the node is up writes
// its new byte and incarnation in the key's value (renewedLeaseValue). All within startupTimeoutSeconds; one that fails
// after its claim gives the byte up (its joining entry is deleted, or
// expires) and the fence tries again a second later.
func (h *Hub) moveByte(pinned bool) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.startupTimeout())
	defer cancel()
	if err := h.claim(ctx); err != nil {
		return err
	}
	h.step("move-claimed")
	err := h.subscribeByte(h.Self())
	if err == nil {
		err = h.announce(ctx)
	}
	if err != nil {
		h.abandonMove()
		return err
	}
	h.moving.Store(false)
	if !pinned {
		h.moves.Add(1)
	}
	h.heartbeat()
	return nil
}

// abandonMove undoes a move that failed after its claim: no answers on the
// byte, its subscriptions and joining refresher stopped, its entry deleted
// if it is still this incarnation's (else it expires within joinTTL).
func (h *Hub) abandonMove() {
	h.stopJoining()
	h.unsubscribeByte()
	h.mu.Lock()
	h.answerUntil.Store(0)
	b, rev, inc := h.self, h.ownRev, h.inc
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.requestTimeout())
	defer cancel()
	if err := h.releaseEntry(ctx, b, rev, inc); err != nil {
		h.log.Debug("the entry of a move that failed was not deleted; it expires", "node", hub.NodeHex(b), "error", err)
	}
}

func (h *Hub) prevIncarnation() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.prevInc
}

func (h *Hub) incarnation() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.inc
}

// step runs the test hook at a named step (stepHook); nothing otherwise.
func (h *Hub) step(name string) {
	if f := h.stepHook.Load(); f != nil {
		(*f)(name)
	}
}

// announce makes this node's entry up, once its subjects are reachable:
// Start has subscribed them and flushed both connections, so its NATS
// server has them and has queued their interest to every route; each
// live peer is then pinged on its own subject (reachPeers), and a ping
// answered came over that route after the interest, so the peer's server
// has it too. Only then does the entry say up, which is what makes the
// peers route calls, listings and drains here. Until then it says
// joining: the byte is held, and a peer answers a call on one of its ids
// that finds no responders with 410 (the ids are an earlier
// incarnation's: this one mints none before it is up).
//
// The joining entry lives joinTTL unless refreshed (keepJoining, stopped
// here before the entry is written up). If it expired all the same (this
// process was stalled for joinTTL, or the registry could not take the
// refreshes), the byte was free meanwhile: announce creates the entry
// again if it still is (peers answered 410 for the byte's ids meanwhile,
// which is right: this incarnation minted none), and fails the start if
// another node took it. A start never goes on with a byte another node
// holds; and until announce succeeds, a change of this node's entry in
// the registry does not fence it (apply): announce judges it.
func (h *Hub) announce(ctx context.Context) error {
	h.reachPeers(ctx)
	h.stopJoining()
	// Every write of the entry up comes after this: the earliest a write
	// found applied (one whose answer was lost) can have been sent.
	since := time.Now()
	for {
		h.mu.RLock()
		b, rev, inc := h.self, h.ownRev, h.inc
		h.mu.RUnlock()
		rctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout())
		up := h.value(inc, "up")
		h.sending(b, inc)
		nrev, err := h.kv.Update(rctx, nodeKey(b), up, rev)
		if isWrongSequence(err) || errors.Is(err, jetstream.ErrKeyExists) {
			// An earlier attempt whose answer was lost was applied, or
			// the joining entry expired (and another node may have
			// claimed the byte): go by the entry the stream's leader has.
			cur, gerr := h.leaderGet(rctx, nodeKey(b))
			switch {
			case errors.Is(gerr, jetstream.ErrKeyNotFound):
				h.log.Warn("this node's joining entry expired before it went up; claiming the byte again", "node", hub.NodeHex(b))
				nrev, err = h.kv.Create(rctx, nodeKey(b), up)
			case gerr != nil:
				err = gerr
			default:
				var e entry
				_ = json.Unmarshal(cur.Value(), &e)
				if e.Inc != inc || e.State == "gone" {
					cancel()
					return fmt.Errorf("node byte %d was taken or declared gone during the start (incarnation %s, %s)", b, e.Inc, e.State)
				}
				nrev, err = cur.Revision(), nil
				if e.State != "up" {
					h.mu.Lock()
					if h.ownRev == rev {
						h.ownRev = nrev
					}
					h.mu.Unlock()
					err = errors.New("the entry is still joining at the leader")
				}
			}
		}
		cancel()
		if err == nil {
			return h.wentUp(b, inc, nrev, since)
		}
		h.log.Debug("announcing the node failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("the node registry did not take this node's entry up: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// wentUp records this node's entry up at rev, unless the watcher has
// already seen it change since (another node's entry, gone, or removed):
// then the start fails. From here on a change of the entry fences the
// node (apply); announced is set under h.mu, which apply holds while it
// judges, so no change falls between the two.
func (h *Hub) wentUp(b byte, inc string, rev uint64, sent time.Time) error {
	h.learned(rev)
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.peer(b)
	if p.rev > rev && (!p.present || p.e.Inc != inc || p.e.State == "gone") {
		return fmt.Errorf("node byte %d was taken or declared gone as this node went up (incarnation %q, %s)", b, p.e.Inc, p.e.State)
	}
	h.announced.Store(true)
	if h.ownRev <= rev {
		h.ownRev, h.renewedAt = rev, time.Now()
	}
	if rev >= p.rev {
		p.rev, p.present = rev, true
		p.e = entry{Name: h.cfg.Node.Name, Inc: inc, StartedAt: h.started.UnixMilli(), HTTP: h.http, State: "up"}
	}
	h.ownedUntilLocked(inc, sent, h.cfg.lease())
	return nil
}

// keepJoining refreshes this node's joining entry every heartbeatMillis,
// each time for joinTTL, by compare-and-set, until announce stops it or
// the hub closes: a start held between its claim and announce (a slow
// NATS, a loaded host) keeps its byte, while a process that died there
// stops refreshing and its entry expires. A refresh whose answer was lost
// but was applied is adopted (its revision read from the leader, as
// stillMine does); an entry found expired or taken ends the refreshing,
// and announce finds out.
func (h *Hub) keepJoining() {
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	h.mu.Lock()
	h.joinStop = func() { cancel(); <-done }
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(done)
		t := time.NewTicker(h.cfg.heartbeat())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			h.step("join-refresh")
			if ctx.Err() != nil || !h.refreshJoining(ctx) {
				return
			}
		}
	}()
}

// stopJoining stops keepJoining and waits for it.
func (h *Hub) stopJoining() {
	h.mu.Lock()
	stop := h.joinStop
	h.joinStop = nil
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// refreshJoining writes this node's joining entry again for joinTTL; it
// reports whether refreshing should go on.
func (h *Hub) refreshJoining(ctx context.Context) bool {
	h.mu.RLock()
	b, rev, inc := h.self, h.ownRev, h.inc
	h.mu.RUnlock()
	rctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout())
	defer cancel()
	sent := h.sending(b, inc)
	nrev, err := h.writeEntry(rctx, nodeKey(b), h.value(inc, stateJoining), rev, h.cfg.joinTTL())
	if isWrongSequence(err) {
		// An earlier write whose answer was lost was applied: credited
		// as of the first one since the last credited (sending).
		sent = time.Time{}
		cur, gerr := h.leaderGet(rctx, nodeKey(b))
		if gerr != nil && !errors.Is(gerr, jetstream.ErrKeyNotFound) {
			h.log.Warn("refreshing this node's joining entry failed", "error", err, "readError", gerr)
			return true
		}
		var e entry
		if gerr == nil {
			_ = json.Unmarshal(cur.Value(), &e)
		}
		if gerr != nil || e.Inc != inc || e.State != stateJoining {
			h.log.Warn("this node's joining entry expired or was taken; the start will find out", "node", hub.NodeHex(b), "error", err)
			return false
		}
		if cur.Revision() <= rev {
			// Still at this node's revision: refused while another write
			// of the key was in flight (10164 on a replicated stream), an
			// earlier refresh of its own. A failed refresh, not a lost
			// entry: the next one asks again.
			h.log.Warn("refreshing this node's joining entry refused while it is still this node's", "error", err, "revision", cur.Revision())
			return true
		}
		nrev, err = cur.Revision(), nil
	}
	if err != nil {
		h.log.Warn("refreshing this node's joining entry failed", "error", err)
		return true
	}
	h.mu.Lock()
	if h.ownRev == rev {
		if sent.IsZero() {
			sent = h.appliedSinceLocked(b, inc, nrev)
		}
		h.ownRev = nrev
		if !sent.IsZero() {
			h.ownedUntilLocked(inc, sent, h.cfg.joinTTL())
		}
	}
	h.mu.Unlock()
	return true
}

// reachPeers pings every live peer on its own subject, in parallel, until
// each answers or requestTimeoutMillis passes (a peer that does not
// answer is lost or cut off: its server is not waited for). The ping
// names this node (startPing): the peer counts it as having heard this
// incarnation (judge.go, pingedBy); and an answer naming the peer's
// incarnation counts here as having heard the peer (answeredBy).
func (h *Hub) reachPeers(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, h.cfg.requestTimeout())
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range h.live() {
		wg.Go(func() {
			for {
				actx, cancel := context.WithTimeout(rctx, h.cfg.attemptTimeout())
				r, err := h.ctl.RequestMsgWithContext(actx, h.startPing(p))
				cancel()
				if err == nil {
					if inc := r.Header.Get(hdrAnswerInc); inc != "" {
						h.answeredBy(p, inc, r)
					}
					return
				}
				select {
				case <-rctx.Done():
					h.log.Info("cluster peer not reached before this node's entry goes up", "node", hub.NodeHex(p), "error", err)
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
}
