package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/mono"
)

// Headers of the node-to-node messages.
const (
	hdrOp       = "Wsg-Op"
	hdrConn     = "Wsg-Conn"
	hdrGroup    = "Wsg-Group"
	hdrReq      = "Wsg-Req"
	hdrDeadline = "Wsg-Deadline"
	hdrFrom     = "Wsg-From"
	hdrAfter    = "Wsg-After"
	hdrLimit    = "Wsg-Limit"
	hdrReason   = "Wsg-Reason"
	hdrStatus   = "Wsg-Status"
	hdrError    = "Wsg-Error"
)

// Options are what Start needs besides the config.
type Options struct {
	// Memory holds this node's connections. Required.
	Memory *hub.Memory
	// Logger receives the cluster's logs. Default slog.Default().
	Logger *slog.Logger
	// StoreDir is the embedded JetStream's directory when the config sets
	// none.
	StoreDir string
	// HTTP is this node's address for @cluster when node.advertiseHttp is
	// unset.
	HTTP string

	// stepHook, set by tests only (WithStepHook), is the hub's stepHook
	// from the start, so a test can hold a step of Start itself.
	stepHook func(step string)
}

// Hub is a hub.Hub over the nodes of a cluster: this node's connections
// in a hub.Memory, the others' reached over NATS.
type Hub struct {
	cfg     Config
	mem     *hub.Memory
	log     *slog.Logger
	prefix  string // wsg.<name>
	http    string
	started time.Time

	ns        *server.Server // embedded server, or nil
	ctl, data *nats.Conn
	kv        jetstream.KeyValue
	replicas  int // of the registry bucket; the others get as many

	leaseMu sync.Mutex // opens leases once; held across that NATS call
	leases  jetstream.KeyValue

	mu   sync.RWMutex
	self byte
	// selfB is self, for readers without mu (Self: every id the gateway
	// mints); written with it, under mu (own).
	selfB atomic.Uint32
	// left marks the bytes this process was up on and gave up (moveByte):
	// it never claims one again, so it mints no id of them again (under mu).
	left    [hub.MaxNode + 1]bool
	inc     string
	prevInc string
	claimed bool
	ownRev  uint64
	// claims counts the claims of a byte (start, each fence): evidence
	// found under one claim fences only that one (startFence).
	claims    uint64
	renewedAt time.Time
	// renewFailing is when the registry renewals began failing (zero
	// while they succeed): fencing rules 2 and 3 count from it.
	renewFailing time.Time
	peers        map[byte]*peer
	// answerUntil is until when (as mono.Since, nanoseconds) this node
	// answers the calls, queries, drains and paces sent to its byte: the
	// send time of its last write of its entry that is known applied, plus
	// that entry's time to live less a margin (ownedUntil), while its view
	// of the registry names this incarnation; 0 once the view names
	// another or none, or a fence began (written under mu). Past it the
	// node stays silent on its byte's subjects (owner): another node may
	// hold the byte, and an answer of this one (410, an empty listing)
	// would race the owner's, the first reply winning at the caller.
	answerUntil atomic.Int64
	// unsure is the first write of this node's entry not credited to
	// answerUntil (its answer lost or not come yet, or refused) since the
	// last one that was (written under mu): a write found applied later
	// by a read from the stream's leader was sent no earlier (unsureWrite).
	unsure   unsureWrite
	notOwned atomic.Int64 // messages on the byte left unanswered (notOwner)
	// goneSignal is closed (and replaced, under mu) whenever a node is
	// found gone, waking calls that wait on a node that stopped
	// answering; an atomic, so every attempt of a call, the first
	// included, watches it for one load (retry).
	goneSignal atomic.Pointer[chan struct{}]

	connectedAt atomic.Int64 // the ctl connection's last (re)connect, as mono.Since
	// The registry watch (registry.go, follow): the highest revision it
	// delivered; the highest this node learned from the registry's answers
	// (learned) and when (mono.Since); its watchers, counted; the one whose
	// updates are dropped (tests: a stalled consumer); its recreations.
	watchRev, knownRev     atomic.Uint64
	knownAt                atomic.Int64
	watchGen, watchStalled atomic.Int64
	watchRestarts          atomic.Int64
	hbSeq                  atomic.Uint64 // heartbeats sent (judge.go)
	// majoritySince is since when (unix nanoseconds) this node has heard
	// a strict majority of the live set without a break; 0 while it does
	// not. Only a node that does may take another for gone on silence.
	majoritySince atomic.Int64
	// minoritySince is since when (unix nanoseconds) this node has heard
	// fewer than a strict majority without a break; 0 while it hears one.
	// Fencing rule 2 needs nodeTimeoutMillis of it, not one sample.
	minoritySince atomic.Int64
	// probeMu serializes reachesMajority's pings; the last result is
	// kept (probeAt, for probeFor in a live set of probeLive).
	probeMu   sync.Mutex
	probeAt   time.Time
	probeLive int
	probeFor  byte
	probeOK   bool
	probeGone bool // a peer answered that it takes probeFor for gone

	// announced is set once Start made this node's entry "up" (announce);
	// until then its claims write it "joining", for joinTTL, and
	// joinStop stops the refreshing of that entry (keepJoining).
	announced atomic.Bool
	joinStop  func()
	fencing   atomic.Bool
	// heldBy: while a fence cannot take the byte back because another
	// incarnation holds it, what /readyz says of it (nil otherwise).
	heldBy atomic.Pointer[string]
	fenced atomic.Int64
	// moving is set from the moment a fence found its byte held by another
	// incarnation and left it (leaveByte) until the node is up again
	// (moveByte): on another byte (node.id auto), or on its own taken back
	// once its holder is gone (a configured node.id). A connection
	// registered meanwhile is closed (Register).
	moving atomic.Bool
	moves  atomic.Int64 // times this node moved to another byte
	// byteSubs are the subscriptions of this node's byte's subjects
	// (subscribeByte); only Start and the fence goroutine touch them.
	byteSubs []*nats.Subscription
	closing  atomic.Bool

	// direct is this node's direct query link (direct.go), or nil.
	direct *direct
	// checks are the checks of nodes whose link may be gone (gonecheck.go).
	checks goneChecks

	interestMu sync.Mutex
	subs       map[string]*groupSub
	seed       maphash.Seed // of worker
	workers    []chan *nats.Msg
	// marks are DrainGroups's marks in the workers' channels (a
	// *nats.Msg without a subscription), each with the channel its
	// worker closes when it reaches it.
	marks sync.Map
	// paces are handlePace's goroutines (at most paceWaiters).
	paces paceWaits

	dedupe dedupe

	// Calls on connection ids (calls.go): a queue per node, the batches
	// out waiting for their replies, and the keys of calls without one.
	links     [hub.MaxNode + 2]link
	inbox     string
	outMu     sync.Mutex
	out       map[uint64]*batch
	outSeq    atomic.Uint64
	reqPrefix string
	reqSeq    atomic.Uint64
	// queries are the queries out (startQuery), by number: where handleReply
	// puts their answers.
	queriesMu sync.Mutex
	queries   map[uint64]chan *nats.Msg
	// answers are this node's last answers to other nodes' queries.
	answers answers
	// batchesOut and callsOut count the batches sent and the calls in
	// them (attempts: a retry counts again).
	batchesOut, callsOut atomic.Int64
	// lateBatches counts the batches unanswered within
	// attemptTimeoutMillis, lateAnswers the replies to such batches that
	// came before their calls' deadlines (and answered those still
	// waiting): calls.go, lateBatch.
	lateBatches, lateAnswers atomic.Int64
	// registryUnread counts registry reads of registered that failed
	// (a call on a byte nobody answers could not tell whether it is held).
	registryUnread atomic.Int64

	streamReport atomic.Pointer[func() []byte]
	// connHook, set by tests only, runs first in handleConn: a slow owner.
	connHook atomic.Pointer[func(op string)]
	// queryHook, set by tests only, runs first when this node works out
	// a query's answer: a slow owner.
	queryHook atomic.Pointer[func(op string)]
	// groupHook, set by tests only, runs in a worker before it hands a
	// group message from another node to this node's members: a slow
	// node.
	groupHook atomic.Pointer[func(group string)]
	// renewHook, set by tests only, runs in renew once the registry
	// answered (err) and the claim was found current, before the answer
	// is judged: a renewal preempted there.
	renewHook atomic.Pointer[func(err error)]
	// stepHook, set by tests only, runs at named steps of the registry
	// work ("renew-send": a renewal read its claim and is about to write;
	// "renew-done": it was judged; "fence-claim": a fence took its new
	// incarnation and is about to claim its byte; "leave-released",
	// "leave-kept": Close deleted its registry entry, or could not;
	// "drain-marks": DrainGroups heard every node and put its marks in
	// the workers' channels; "claimed": Start claimed its byte, joining;
	// "join-refresh": the joining entry is about to be refreshed;
	// "subscribed": Start subscribed the byte's subjects and flushed;
	// "claim-read": a claim found the byte's entry there and is about to
	// read it; "apply": the registry watcher is about to record a change;
	// "not-owner": a message on the byte was left unanswered;
	// "move-claimed": a fenced node moving off a byte another node took
	// claimed another, joining, and is about to subscribe it), on the
	// goroutine doing it: a test holds one there to drive an interleaving
	// the scheduler makes rare.
	stepHook atomic.Pointer[func(step string)]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ hub.Hub = (*Hub)(nil)

// Start joins the cluster: it starts the embedded NATS server (if
// configured), connects, claims a node byte and subscribes. cfg must have
// passed Validate (defaults applied). Call Close to leave.
func Start(cfg Config, opts Options) (*Hub, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Hub{
		cfg: cfg, mem: opts.Memory, log: opts.Logger.With("component", "cluster", "self", cfg.Node.Name),
		prefix: "wsg." + cfg.Name, http: cfg.Node.AdvertiseHTTP, started: time.Now(),
		inc: newIncarnation(), peers: make(map[byte]*peer), subs: make(map[string]*groupSub),
	}
	if h.http == "" {
		h.http = opts.HTTP
	}
	h.initGoneSignal()
	if opts.stepHook != nil {
		h.stepHook.Store(&opts.stepHook)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(h.ctx, cfg.startupTimeout())
	defer cancel()
	if f := startAbort.Load(); f != nil {
		if abort := (*f)(&cfg); abort != nil {
			go func() {
				select {
				case <-abort:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
	}
	if err := h.start(ctx, opts); err != nil {
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

func (h *Hub) start(ctx context.Context, opts Options) error {
	url, replicas := h.cfg.NATS.URL, 3
	if e := h.cfg.NATS.Embedded; e != nil {
		dir := e.StoreDir
		if dir == "" {
			dir = opts.StoreDir
		}
		ns, err := startEmbedded(&h.cfg, dir, h.log, h.cfg.startupTimeout())
		if err != nil {
			return err
		}
		h.ns, url = ns, ns.ClientURL()
		replicas = max(1, min(3, len(e.Routes)))
	}
	var err error
	if h.ctl, err = h.connectBy(ctx, url, "ctl", true); err != nil {
		return err
	}
	if h.data, err = h.connectBy(ctx, url, "data", false); err != nil {
		return err
	}
	h.reqPrefix = "req:" + h.inc + "."
	if err := h.startCalls(); err != nil {
		return err
	}
	if err := h.openBucket(ctx, replicas); err != nil {
		return err
	}
	// What a peer's call may need, before anything can call: the group
	// workers and the dedupe cache; the heartbeats (no byte in their
	// subject) so the peers are heard from the start.
	h.startGroups()
	// On with any dedupeSeconds, 0 too: a forwarded call's retries must
	// not run it twice (dedupe.go).
	h.dedupe.init(h.cfg.requestTimeout())
	if _, err := h.ctl.Subscribe(h.prefix+".hb", h.handleHeartbeat); err != nil {
		return err
	}
	ready := make(chan struct{})
	h.wg.Add(1)
	go h.watch(h.ctx, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		return fmt.Errorf("the node registry did not answer: %w", ctx.Err())
	}
	// The byte is claimed "joining": held, but no peer routes to this
	// node, lists or drains it, or takes it for gone on "no responders",
	// until announce has made the entry "up", which it does only once
	// the subjects below exist on every live peer's NATS server.
	if err := h.claim(ctx); err != nil {
		return err
	}
	h.step("claimed")
	if err := h.startDirect(); err != nil {
		return err
	}
	if err := h.subscribeByte(h.Self()); err != nil {
		return err
	}
	h.step("subscribed")
	if err := h.announce(ctx); err != nil {
		return err
	}
	h.wg.Add(3)
	go h.beat()
	go h.tick()
	go h.watchSilence()
	h.heartbeat()
	h.log.Info("cluster node up", "node", hub.NodeHex(h.Self()), "name", h.cfg.Node.Name, "inc", h.incarnation())
	return nil
}

// subscribeByte subscribes the subjects of byte b: .c and .q on ctl, .d
// and .p on data; then it flushes both connections, so the node's NATS
// server has them and has queued their interest on every route. Each
// handler serves only while b is this node's byte: a message on a byte it
// has left (moveByte) that nats.go delivers after the unsubscribe began is
// left unanswered, as one on a byte this node may not own (notOwner).
func (h *Hub) subscribeByte(b byte) error {
	var subs []*nats.Subscription
	on := func(nc *nats.Conn, kind string, f nats.MsgHandler) error {
		s, err := nc.Subscribe(h.subject(b, kind), func(m *nats.Msg) {
			if h.Self() != b {
				h.notOwner()
				return
			}
			f(m)
		})
		if err == nil {
			subs = append(subs, s)
		}
		return err
	}
	err := errors.Join(on(h.ctl, "c", h.handleConn), on(h.ctl, "q", h.handleQuery),
		// Answered on the data connection, after every group message this
		// node published before (DrainGroups).
		on(h.data, "d", func(m *nats.Msg) {
			if !h.owner(time.Now()) {
				h.notOwner()
				return
			}
			_ = m.Respond(nil)
		}),
		// Answered once the group messages this node got before it were
		// handed to its members and they have room (Pace).
		on(h.data, "p", h.handlePace))
	if err == nil {
		err = h.data.Flush()
	}
	if err == nil {
		err = h.ctl.Flush()
	}
	if err != nil {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		return err
	}
	h.byteSubs = subs
	return nil
}

// unsubscribeByte drops the subscriptions of the byte this node was on
// (subscribeByte).
func (h *Hub) unsubscribeByte() {
	for _, s := range h.byteSubs {
		_ = s.Unsubscribe()
	}
	h.byteSubs = nil
}

// connectAttempt bounds one attempt to connect to NATS at start (the dial
// and the server's INFO/PONG): the client's default of 2 s fails on a
// machine under heavy load, and a longer one would delay reconnecting to
// the next server when one is unreachable.
const connectAttempt = 10 * time.Second

// connectBy connects as connect does, trying again every 250 ms while
// NATS is not there yet or did not answer in time, until ctx (the startup
// timeout) ends; any other error (credentials, TLS) is final.
func (h *Hub) connectBy(ctx context.Context, url, role string, ctl bool) (*nats.Conn, error) {
	for {
		nc, err := h.connect(url, role, ctl)
		if err == nil || !(errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoServers)) {
			return nc, err
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// connect opens one of the two NATS connections: ctl (by-id calls,
// queries, heartbeats, the registry) and data (group traffic), so a
// slow-consumer cut on group traffic cannot make the node look dead.
func (h *Hub) connect(url, role string, ctl bool) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("wsgate " + h.cfg.Node.Name + " " + role),
		nats.Timeout(connectAttempt),
		nats.ReconnectBufSize(-1), // a call while disconnected fails now instead of being sent late
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			h.log.Warn("NATS error", "connection", role, "error", err)
		}),
	}
	if !ctl {
		opts = append(opts, nats.NoEcho()) // a node delivers its own publishes locally
	} else {
		opts = append(opts,
			nats.ConnectHandler(func(*nats.Conn) { h.connectedAt.Store(int64(mono.Since())) }),
			nats.ReconnectHandler(func(*nats.Conn) {
				h.connectedAt.Store(int64(mono.Since()))
				h.log.Info("NATS reconnected")
			}),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if !h.closing.Load() {
					h.log.Warn("NATS disconnected", "error", err)
				}
			}))
	}
	if f := h.cfg.NATS.CredentialsFile; f != "" {
		opts = append(opts, nats.UserCredentials(f))
	}
	tc, err := h.cfg.natsTLS()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	if h.inProcess() {
		opts = append(opts, nats.InProcessServer(h.ns))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", url, explainTLS(err))
	}
	if ctl {
		h.connectedAt.Store(int64(mono.Since()))
	}
	return nc, nil
}

// inProcess says whether the node's connections reach its embedded
// server through in-memory pipes instead of loopback TCP.
func (h *Hub) inProcess() bool {
	return h.ns != nil && h.cfg.NATS.Embedded.InProcess
}

// Self is this node's byte; the gateway mints ids with it. It changes
// only when a fenced node whose byte another node took moves to another
// (docs/cluster.md), so the gateway asks for it at every id it mints.
func (h *Hub) Self() byte { return byte(h.selfB.Load()) }

// Fenced counts the times this node fenced.
func (h *Hub) Fenced() int64 { return h.fenced.Load() }

// Moves counts the times this node moved to another byte: fenced, it
// found its own held by another incarnation (moveByte).
func (h *Hub) Moves() int64 { return h.moves.Load() }

// LateCalls counts the call batches that turned late (no reply within
// attemptTimeoutMillis) and the replies that came for them after all
// (calls.go, lateBatch): wsgate_cluster_call_batches_late_total and
// wsgate_cluster_call_late_answers_total.
func (h *Hub) LateCalls() (batches, answers int64) {
	return h.lateBatches.Load(), h.lateAnswers.Load()
}

// RegistryUnread counts the failed registry reads of registered:
// wsgate_cluster_registry_unread_total.
func (h *Hub) RegistryUnread() int64 { return h.registryUnread.Load() }

// DedupeRepeats counts the POSTs and DELETEs this node answered with an
// earlier run's answer instead of running them again (dedupe.go):
// wsgate_cluster_dedupe_repeats_total.
func (h *Hub) DedupeRepeats() int64 { return h.dedupe.repeats.Load() }

// DirectCallsUnanswered counts the calls this node sent over a direct
// link whose answer did not come on it, their connection broken first or
// silent for a whole attempt (closed then), and which went again over
// NATS (directcalls.go): wsgate_cluster_direct_calls_unanswered_total.
func (h *Hub) DirectCallsUnanswered() (broken, silent int64) {
	if h.direct == nil {
		return 0, 0
	}
	return h.direct.unansweredBroken.Load(), h.direct.unansweredSilent.Load()
}

func (h *Hub) subject(b byte, kind string) string {
	return h.prefix + ".n." + hub.NodeHex(b) + "." + kind
}

// beat sends a heartbeat every heartbeatMillis. It runs apart from the
// registry work (tick), which waits on KV calls: a registry electing a
// leader must not silence this node's heartbeats, or the others would
// take it for gone (and it would fence) while it is alive.
// Each heartbeat also keeps a watch connection to every peer's direct
// link (keepWatches).
func (h *Hub) beat() {
	h.every(h.cfg.heartbeat(), func() {
		h.heartbeat()
		h.keepWatches()
	})
}

// every runs f every d until h closes; it is a goroutine of h's (wg).
func (h *Hub) every(d time.Duration, f func()) {
	defer h.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}

// tick renews the registry entry every lease/5 (every heartbeat while a
// peer is silent or a renewal failed), retries the commits of nodes taken
// for gone here, and fences this node when it is the isolated one.
func (h *Hub) tick() {
	lastRenew := time.Now()
	h.every(h.cfg.heartbeat(), func() {
		if time.Since(lastRenew) >= h.cfg.lease()/5 || h.suspicious() {
			lastRenew = time.Now()
			h.renew(h.ctx)
		}
		h.checkIsolation()
		h.commitLocalGone()
		h.dedupe.rotate(h.cfg.dedupeFor())
	})
}

// heartbeat sends this node's heartbeat; none while it moves to another
// byte (moveByte), until it is up there: as at a start, the first
// heartbeat of the byte follows its subscriptions on the same connection.
func (h *Hub) heartbeat() {
	if !h.announced.Load() {
		return
	}
	b, _ := json.Marshal(heartbeat{
		Node: hub.NodeHex(h.Self()), Name: h.cfg.Node.Name, Inc: h.incarnation(), State: "up",
		Conns: h.mem.Len(), Groups: h.mem.GroupCount(), HTTP: h.http, Q: h.direct.Addr(), T: time.Now().UnixMilli(), Seq: h.hbSeq.Add(1),
	})
	_ = h.ctl.Publish(h.prefix+".hb", b)
}

func (h *Hub) handleHeartbeat(m *nats.Msg) {
	var hb heartbeat
	if json.Unmarshal(m.Data, &hb) != nil {
		return
	}
	v, err := strconv.ParseUint(hb.Node, 16, 8)
	if err != nil || v > hub.MaxNode {
		return
	}
	if f := heartbeatHook.Load(); f != nil && !(*f)(&h.cfg, hb.Name, heardHeartbeat) {
		return
	}
	h.mu.Lock()
	p := h.peer(byte(v))
	if p.present && hb.Inc != p.e.Inc {
		// Not the incarnation the registry holds for that byte: not that
		// node. Another cluster's node of the same name routed in by
		// mistake (test processes side by side did: the cut-off node
		// heard a majority through it and took a live node for gone), or
		// a heartbeat that overtook its node's new entry, whose arrival
		// restarts the node's clock anyway (apply).
		h.mu.Unlock()
		return
	}
	if hb.Inc == p.hb.Inc && hb.Seq < p.hb.Seq {
		hb.Seq = p.hb.Seq // overtaken by a later one (a route that changed): keep the latest heard
	}
	first := p.hb.Inc != hb.Inc
	p.hb, p.lastSeen = hb, time.Now()
	undo := p.localGone && hb.Inc == p.e.Inc
	if undo {
		p.localGone = false
	}
	h.mu.Unlock()
	if first && h.announced.Load() {
		h.keepWatches()
	}
	if undo {
		h.log.Warn("cluster node taken for gone is heard again", "node", hb.Node, "name", hb.Name)
	}
}

// watchSilence looks for silent nodes on its own goroutine, when the
// first live peer's heartbeats will have been silent for nodeTimeoutMillis,
// and at least every quarter heartbeat (a node found silent but not yet
// judged gone, a majority heard only lately): a silent node is declared
// when its nodeTimeoutMillis is up, not up to a quarter heartbeat later
// (C9: the first 410 after a host loss), and not after the registry
// renewal the tick may be waiting on (C9 measured 3.5–4.3 s with the check
// on the tick, against 4 s).
func (h *Hub) watchSilence() {
	defer h.wg.Done()
	t := time.NewTimer(h.silenceCheck())
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.reapSilent()
		t.Reset(h.silenceCheck())
	}
}

// silenceCheck is how long the silence check may wait: until a live peer
// will have been silent for nodeTimeoutMillis (a millisecond after, as
// hearing counts silence from there), at most a quarter heartbeat.
func (h *Hub) silenceCheck() time.Duration {
	wait := max(h.cfg.heartbeat()/4, 10*time.Millisecond)
	now := time.Now()
	h.mu.RLock()
	defer h.mu.RUnlock()
	for b, p := range h.peers {
		if b == h.self || !p.present || p.e.State != "up" || p.localGone {
			continue
		}
		if d := p.lastSeen.Add(h.cfg.nodeTimeout() + time.Millisecond).Sub(now); d > 0 && d < wait {
			wait = d
		}
	}
	return wait
}

// hearing counts the live set (registry entries up, this node included)
// and the nodes heard within d (this node included), and lists the others.
func (h *Hub) hearing(d time.Duration) (heard, live int, silent []byte) {
	now := time.Now()
	heard, live = 1, 1
	h.mu.RLock()
	defer h.mu.RUnlock()
	for b, p := range h.peers {
		if b == h.self || !p.present || p.e.State != "up" {
			continue
		}
		live++
		if now.Sub(p.lastSeen) < d {
			heard++
		} else {
			silent = append(silent, b)
		}
	}
	return heard, live, silent
}

// reapSilent declares gone every up node whose heartbeats stopped for
// nodeTimeout, but only once this node has heard a strict majority of the
// live set (itself included) for that long without a break: the isolated
// one must not declare the others, nor one that has just come back and
// hears some peers before the rest.
func (h *Hub) reapSilent() {
	heard, live, silent := h.hearing(h.cfg.nodeTimeout())
	if 2*heard <= live {
		h.majoritySince.Store(0)
		h.minoritySince.CompareAndSwap(0, time.Now().UnixNano())
	} else {
		h.minoritySince.Store(0)
		h.majoritySince.CompareAndSwap(0, time.Now().UnixNano())
	}
	if len(silent) == 0 || !h.heardMajorityFor(h.cfg.nodeTimeout()) {
		return
	}
	for _, b := range silent {
		h.mu.RLock()
		pending := h.peers[b] != nil && h.peers[b].localGone
		h.mu.RUnlock()
		if !pending { // taken for gone here: tick retries its commit
			h.declareGone(h.ctx, b, "silent")
		}
	}
}

// heardMajorityFor reports whether this node hears a strict majority of
// the live set now and has for d without a break (as of its last tick).
func (h *Hub) heardMajorityFor(d time.Duration) bool {
	if heard, live, _ := h.hearing(h.cfg.nodeTimeout()); 2*heard <= live {
		return false
	}
	since := h.majoritySince.Load()
	return since != 0 && time.Since(time.Unix(0, since)) >= d
}

// Close leaves the cluster: the registry entry is deleted (every node
// answers 410 for this node's ids at once), the connections close and the
// embedded server stops. Call it after the gateway closed its connections.
func (h *Hub) Close() error {
	if !h.closing.CompareAndSwap(false, true) {
		return nil
	}
	h.mu.RLock()
	b, rev, claimed, inc := h.self, h.ownRev, h.claimed, h.inc
	h.mu.RUnlock()
	if claimed && h.kv != nil && h.ctl.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.requestTimeout())
		if err := h.releaseEntry(ctx, b, rev, inc); err != nil {
			h.log.Warn("cluster registry entry not released", "error", err)
			h.step("leave-kept")
		} else {
			h.step("leave-released")
		}
		cancel()
	}
	h.cancel()
	h.direct.close()
	for _, nc := range []*nats.Conn{h.data, h.ctl} {
		if nc != nil {
			if nc.IsConnected() {
				_ = nc.FlushTimeout(h.cfg.attemptTimeout())
			}
			nc.Close()
		}
	}
	h.stopGroups()
	h.paces.close()
	h.wg.Wait()
	if h.ns != nil {
		h.ns.Shutdown()
		h.ns.WaitForShutdown()
	}
	return nil
}

// releaseEntry deletes this node's registry entry, written at rev by
// incarnation inc. A renewal running beside Close (the ticker stops only
// after it) may have moved the entry on since rev: while the entry still
// holds inc, it is deleted at the revision the stream's leader has. A
// delete refused for its revision had left the entry up until its TTL ran
// out: the other nodes answered 500 for the leaving node's ids meanwhile,
// declared it gone on "no responders", and its restart found its byte
// taken and claimed another (found by TestClusterRollingRestart under
// load: "node 2 restarted with byte 66, had 65").
func (h *Hub) releaseEntry(ctx context.Context, b byte, rev uint64, inc string) error {
	err := h.kv.Delete(ctx, nodeKey(b), jetstream.LastRevision(rev))
	for range 3 {
		if !isWrongSequence(err) {
			return err
		}
		cur, gerr := h.leaderGet(ctx, nodeKey(b))
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return nil
		}
		if gerr != nil {
			return gerr
		}
		var e entry
		if json.Unmarshal(cur.Value(), &e) != nil || e.Inc != inc {
			return nil // deleted, or another incarnation's now: nothing of ours to release
		}
		err = h.kv.Delete(ctx, nodeKey(b), jetstream.LastRevision(cur.Revision()))
	}
	return err
}

// Register implements hub.Registry. A connection whose id names a byte
// that is not this node's (its upgrade minted the id before the node moved
// to another byte), or registered while the node moves, is closed at once
// with 1012 (hub.CloseFenced), as the fence closed the others: its byte
// is another node's, which answers 410 for it. So is one registered while
// a node with a configured node.id is off its byte, which another node
// holds. The check follows the registration, and leaveByte sets moving
// (moveByte then the byte) before its sweep of the connections: one of
// the two sees every such connection. A connection admitted before a
// fence began (RegisterAdmitted) is closed the same way.
func (h *Hub) Register(c hub.Conn) error {
	return h.register(c, false, 0)
}

// Admit reports whether the gateway may accept a new connection now: not
// while this node fences (closing its connections, then registering a new
// incarnation), since the other nodes may answer 410 for the ids it mints
// meanwhile. ticket, for RegisterAdmitted, is the fences begun so far,
// read before fencing, which a fence sets before it counts itself: a
// ticket admitted is never that of a fence under way.
func (h *Hub) Admit() (ticket int64, ok bool) {
	ticket = h.fenced.Load()
	return ticket, !h.fencing.Load()
}

// RegisterAdmitted is Register for a connection admitted with ticket
// (Admit), which also closes it at once with 1012 (hub.CloseFenced) when
// a fence began since: its upgrade passed the admission before the fence
// and registers after the fence's sweep, once the node took its byte
// back (the same byte, a new incarnation: Register alone finds nothing
// wrong with its id). Other nodes may have answered 410 for the byte's
// ids during the fence, and the client was admitted by the incarnation
// that fenced; it reconnects, as the fence's other clients do. The fence
// counts itself (ticket) before its sweep, and the check follows the
// registration: one of the two sees every such connection.
func (h *Hub) RegisterAdmitted(c hub.Conn, ticket int64) error {
	return h.register(c, true, ticket)
}

func (h *Hub) register(c hub.Conn, admitted bool, ticket int64) error {
	if err := h.mem.Register(c); err != nil {
		return err
	}
	b, ok := hub.NodeOf(c.ID())
	if h.moving.Load() || ok && b != h.Self() || admitted && h.fenced.Load() != ticket {
		c.Close(hub.CloseFenced)
	}
	return nil
}

// Unregister implements hub.Registry.
func (h *Hub) Unregister(id string) { h.mem.Unregister(id) }

// Len implements hub.Registry: this node's connections.
func (h *Hub) Len() int { return h.mem.Len() }

// Each implements hub.Registry: this node's connections.
func (h *Hub) Each(f func(hub.Conn) bool) { h.mem.Each(f) }

// route tells where id lives: local, or the owner's byte; ErrGone when
// no node can have it.
func (h *Hub) route(id string) (node byte, local bool, err error) {
	b, ok := hub.NodeOf(id)
	if !ok {
		return 0, false, hub.ErrGone
	}
	if b == h.Self() {
		return b, true, nil
	}
	if gone, _ := h.gone(b); gone {
		return b, false, hub.ErrGone
	}
	return b, false, nil
}

// Send implements hub.Router.
func (h *Hub) Send(ctx context.Context, id string, m *hub.Message) error {
	b, local, err := h.route(id)
	if err != nil || local {
		if err == nil {
			err = h.sendLocal(dedupeKey(ctx), id, m)
		}
		return err
	}
	_, err = h.callConn(ctx, b, item{op: opPost, id: id, key: dedupeKey(ctx), body: m.Data})
	return err
}

// LookupLocal implements hub.Local: a connection of this node, for an
// operation with no dedupe key (a keyed one goes through Send, which
// delivers it once); nil for another node's id.
func (h *Hub) LookupLocal(ctx context.Context, id string) (hub.Conn, error) {
	if dedupeKey(ctx) != "" {
		return nil, nil
	}
	_, local, err := h.route(id)
	if err != nil || !local {
		return nil, err
	}
	return h.mem.LookupLocal(ctx, id)
}

// SendLocalOnce implements hub.LocalOnce: a keyed send to a connection of
// this node costs the dedupe check and no Message (sendLocal's check,
// with the caller's send; the closure does not escape, the key's parts
// are hashed where they are: no allocation).
func (h *Hub) SendLocalOnce(key hub.CallKey, id string, data []byte, send func(hub.Conn, []byte) error) (bool, error) {
	_, local, err := h.route(id)
	if err != nil || !local {
		return err != nil, err
	}
	return true, h.dedupe.doKey(&key, func() error {
		c, err := h.mem.LookupLocal(h.ctx, id)
		if err != nil {
			return err
		}
		return send(c, data)
	})
}

// sendLocal sends to a connection of this node, answering a repeated key
// with the first answer.
func (h *Hub) sendLocal(key, id string, m *hub.Message) error {
	if key == "" {
		return h.mem.Send(h.ctx, id, m)
	}
	return h.dedupe.do(key, func() error { return h.mem.Send(h.ctx, id, m) })
}

// Info implements hub.Router.
func (h *Hub) Info(ctx context.Context, id string) (hub.Info, error) {
	b, local, err := h.route(id)
	if err != nil {
		return hub.Info{}, err
	}
	if local {
		return h.mem.Info(ctx, id)
	}
	body, err := h.callConn(ctx, b, item{op: opGet, id: id})
	if err != nil {
		return hub.Info{}, err
	}
	var info hub.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return hub.Info{}, fmt.Errorf("%w: node %s answered %v", hub.ErrUnavailable, hub.NodeHex(b), err)
	}
	return info, nil
}

// Disconnect implements hub.Router.
func (h *Hub) Disconnect(ctx context.Context, id string, r hub.CloseReason) error {
	if _, ok := hub.CloseReasonByLabel(r.Label); !ok {
		return fmt.Errorf("close reason %q is not in hub's table", r.Label)
	}
	b, local, err := h.route(id)
	if err != nil || local {
		if err == nil {
			err = h.mem.Disconnect(ctx, id, r)
		}
		return err
	}
	_, err = h.callConn(ctx, b, item{op: opDelete, id: id, arg: r.Label})
	return err
}

// Join implements hub.Router.
func (h *Hub) Join(ctx context.Context, group, id string) error {
	b, local, err := h.route(id)
	if err != nil || local {
		if err == nil {
			err = h.joinLocal(group, id)
		}
		return err
	}
	_, err = h.callConn(ctx, b, item{op: opJoin, id: id, arg: group})
	return err
}

// Leave implements hub.Router.
func (h *Hub) Leave(ctx context.Context, group, id string) error {
	b, local, err := h.route(id)
	if err != nil || local {
		if err == nil {
			err = h.mem.Leave(ctx, group, id)
		}
		return err
	}
	_, err = h.callConn(ctx, b, item{op: opLeave, id: id, arg: group})
	return err
}

// callConn runs one call on a connection of node b (in a batch, calls.go)
// under the rules of retry, and returns the owner's reply body.
func (h *Hub) callConn(ctx context.Context, b byte, it item) ([]byte, error) {
	deadline := h.deadline(ctx)
	it.deadline = deadline.UnixMilli()
	if it.key == "" {
		// The owner answers a retry of this call once (the key is
		// reqPrefix and seq: encodeBatch writes it).
		it.seq = h.reqSeq.Add(1)
	}
	var body []byte
	// dc: the direct connection the call went on (directcalls.go), until
	// its answer is read; a call that goes alone goes over it when there
	// is one, else over NATS (try). a: the call over NATS, shared by its
	// tries (an earlier try's late answer ends the call too); answered:
	// its last outcome was read.
	dc := h.sendCall(b, &it, deadline)
	checked := false
	var a *attempt
	answered := false
	tryNATS := func(timeout time.Duration, gone <-chan struct{}) result {
		if a == nil {
			a = newAttempt(&it)
		}
		r := h.try(ctx, b, a, timeout, gone)
		answered = !errors.Is(r.err, errAttemptTimeout)
		return r
	}
	err := h.retry(ctx, b, deadline, func(timeout time.Duration, gone <-chan struct{}) error {
		var r result
		if dc != nil {
			end := time.Now().Add(timeout)
			r = h.readCall(ctx, dc, b, end, gone, &checked)
			switch {
			case errors.Is(r.err, errCallBroken): // again over NATS, same key
				dc = nil
				h.direct.unansweredBroken.Add(1)
				if timeout = time.Until(end); timeout <= 0 {
					return errAttemptTimeout
				}
				r = tryNATS(timeout, gone)
			case errors.Is(r.err, errAttemptTimeout):
				if !time.Now().Before(end) {
					// A whole attempt without an answer: the next goes
					// over NATS, same key, as a batch's retry does (a
					// link cut while NATS is not).
					h.direct.put(dc, false)
					dc = nil
					h.direct.unansweredSilent.Add(1)
				} // else b may have been found gone: retry looks, then reads on
			default:
				dc = nil // given back
			}
		} else {
			r = tryNATS(timeout, gone)
		}
		if r.err != nil {
			return r.err
		}
		body = r.body
		return resultError(r)
	})
	if dc != nil {
		h.direct.put(dc, false) // its answer never came
	}
	if a != nil {
		h.endAttempt(b, a, answered)
	}
	return body, err
}

// deadline is when a call started now must be answered: requestTimeout,
// or ctx's deadline if sooner.
func (h *Hub) deadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(h.cfg.requestTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// retry runs attempts of one call on node b until one is answered (its
// error, or nil, is the call's); an attempt gets its time (at most
// attemptTimeoutMillis) and a channel closed when a node is found gone
// (end it as soon as b is found gone: the first attempt too, so a call in
// flight when b died answers 410 at its declaration, not at the end of
// its attempt; one atomic load). The rules are those the 1 s promise
// rests on: "no responders" for goneGrace, or at once when b's direct
// link was found refusing connections (gonecheck.go), once this node has
// been connected settleSeconds, declares b gone (410); a node the registry never had
// answers 410 at once; a timeout retries the same call within the
// deadline, unless b was declared gone meanwhile (410); past it, 500 (not
// done: the owner drops a call after its deadline, and says so when it
// drops one, which ends the call with 500 at once).
func (h *Hub) retry(ctx context.Context, b byte, deadline time.Time, attempt func(timeout time.Duration, gone <-chan struct{}) error) error {
	var noResp time.Time
	// regErr: an attempt was answered "no responders" and the registry
	// could not be read to tell whether any node holds b, and no read
	// since told.
	var regErr error
	for {
		remain := time.Until(deadline)
		if remain <= 0 {
			break
		}
		signal := *h.goneSignal.Load()
		err := attempt(min(h.cfg.attemptTimeout(), remain), signal)
		switch {
		case errors.Is(err, errDropped):
			return fmt.Errorf("%w: node %s did not answer within %d ms", hub.ErrUnavailable, hub.NodeHex(b), h.cfg.RequestTimeoutMillis)
		case errors.Is(err, nats.ErrNoResponders):
			if noResp.IsZero() {
				noResp = time.Now()
			}
			if _, known := h.gone(b); !known {
				reg, err := h.registered(ctx, b, deadline)
				if err == nil && !reg {
					return hub.ErrGone // no node has this byte
				}
				regErr = err // unread: as if registered, asked again next time
			}
			heard, joining := h.heardIncarnation(b)
			if joining {
				// Its ids are an earlier incarnation's: a node mints none
				// before its entry is up (announce).
				return hub.ErrGone
			}
			// "No responders" is evidence only against an incarnation
			// this node has heard: its heartbeat (or start-up ping, or
			// answer) came over the route after its subscriptions, so
			// this node's server had them (judge.go).
			// Or at once when b's direct link refused a connection
			// (gonecheck.go): the grace is for a lone "no responders".
			refused := h.refusedSince(b)
			if !refused.IsZero() && h.settled() && heard && h.declareGoneSince(ctx, b, reasonRefused, refused) {
				return hub.ErrGone
			}
			if refused.IsZero() {
				h.suspectNoResp(b) // does it refuse? (a check at a time)
			}
			if time.Since(noResp) >= h.cfg.goneGrace() && h.settled() && heard && h.declareGone(ctx, b, "no responders") {
				return hub.ErrGone
			}
			if gone, _ := h.gone(b); gone {
				return hub.ErrGone
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w: %v", hub.ErrUnavailable, ctx.Err())
			case <-time.After(min(100*time.Millisecond, time.Until(deadline))):
			case <-signal: // a node found gone: b? (looked at above, next)
			}
		case errors.Is(err, errAttemptTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout):
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %v", hub.ErrUnavailable, ctx.Err())
			}
			// Declared gone (silent) while this call waited: 410 now,
			// as the end of the budget would answer, not a whole
			// requestTimeout after the declaration.
			if gone, _ := h.gone(b); gone {
				return hub.ErrGone
			}
		case err == nil, errors.Is(err, hub.ErrGone), errors.Is(err, hub.ErrQueueFull), errors.Is(err, hub.ErrLimitExceeded), errors.Is(err, hub.ErrUnavailable):
			return err // answered
		default:
			return fmt.Errorf("%w: %v", hub.ErrUnavailable, err)
		}
	}
	if h.silentFor(b) >= h.cfg.nodeTimeout() && h.declareGone(ctx, b, "silent") {
		return hub.ErrGone
	}
	if regErr != nil {
		return fmt.Errorf("%w: node %s did not answer within %d ms, and the cluster registry could not be read to tell whether any node holds byte %s: %v", hub.ErrUnavailable, hub.NodeHex(b), h.cfg.RequestTimeoutMillis, hub.NodeHex(b), regErr)
	}
	return fmt.Errorf("%w: node %s did not answer within %d ms", hub.ErrUnavailable, hub.NodeHex(b), h.cfg.RequestTimeoutMillis)
}

// registered asks the registry's leader whether b has an entry (the
// watcher may not have delivered a node that just claimed it; a direct
// get, which any replica may answer, may come from one that is behind and
// say "no entry" for a node that just registered, whose connections would
// then be answered a false 410). err: the registry could not be read
// within an attempt (and the deadline), so nothing is known: the caller
// asks again on its next attempt, and past its deadline answers 500
// naming the registry, never 410 on an unread registry (before, an
// unread registry counted as "registered" and the call ended with a 500
// that blamed the node).
func (h *Hub) registered(ctx context.Context, b byte, deadline time.Time) (bool, error) {
	if b > hub.MaxNode {
		return false, nil
	}
	end := time.Now().Add(h.cfg.attemptTimeout())
	if deadline.Before(end) {
		end = deadline
	}
	gctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	_, err := h.leaderGet(gctx, nodeKey(b))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	}
	h.registryUnread.Add(1)
	return false, err
}

// heardIncarnation reports whether this node has heard a heartbeat of
// b's incarnation in the registry, and whether that entry is joining.
func (h *Hub) heardIncarnation(b byte) (heard, joining bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	if p == nil || !p.present {
		return false, false
	}
	return heardLocked(p), p.e.State == stateJoining
}

// heardLocked reports whether this node has heard p's incarnation in the
// registry: a heartbeat of it, its answer to a ping (confirm, reachPeers),
// or its start-up ping (pingedBy); h.mu must be held.
func heardLocked(p *peer) bool {
	return p.e.Inc != "" && (!p.lastSeen.IsZero() && p.hb.Inc == p.e.Inc || p.answered == p.e.Inc)
}

func (h *Hub) silentFor(b byte) time.Duration {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p := h.peers[b]
	if p == nil || p.lastSeen.IsZero() {
		return 0
	}
	return time.Since(p.lastSeen)
}

// replyError is the error a query reply's Wsg-Status stands for.
func replyError(m *nats.Msg) error {
	st, err := strconv.Atoi(m.Header.Get(hdrStatus))
	if err != nil || st == statusExpired {
		st = 500
	}
	return resultError(result{status: st, text: m.Header.Get(hdrError)})
}

func status(err error) (int, string) {
	var limit string
	switch {
	case err == nil:
		return 200, ""
	case errors.Is(err, hub.ErrGone):
		return 410, ""
	case errors.Is(err, hub.ErrQueueFull):
		return 429, ""
	case errors.Is(err, hub.ErrLimitExceeded):
		limit = err.Error()
		if s, ok := cutPrefix(limit, hub.ErrLimitExceeded.Error()+": "); ok {
			limit = s
		}
		return 429, limit
	}
	return 500, err.Error()
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// replyTo is the answer to request m: the status err stands for and body.
func replyTo(m *nats.Msg, body []byte, err error) *nats.Msg {
	st, text := status(err)
	r := nats.NewMsg(m.Reply)
	r.Header.Set(hdrStatus, strconv.Itoa(st))
	if text != "" {
		r.Header.Set(hdrError, text)
	}
	r.Data = body
	return r
}

// expired reports whether the origin has given up on query m (or is
// about to): then the owner does nothing.
func expired(m *nats.Msg) bool {
	ms, err := strconv.ParseInt(m.Header.Get(hdrDeadline), 10, 64)
	return err != nil || time.Now().After(time.UnixMilli(ms).Add(-100*time.Millisecond))
}

// Nodes implements hub.Router: the registry's entries with the last
// heartbeat of each, ascending by byte.
func (h *Hub) Nodes(context.Context) ([]hub.Node, error) {
	now := time.Now()
	h.mu.RLock()
	out := make([]hub.Node, 0, len(h.peers))
	for b, p := range h.peers {
		if !p.present {
			continue
		}
		n := hub.Node{ID: hub.NodeHex(b), Name: p.e.Name, State: p.e.State, HTTP: p.e.HTTP}
		if b == h.self {
			n.Connections, n.Groups = h.mem.Len(), h.mem.GroupCount()
		} else if !p.lastSeen.IsZero() && p.hb.Inc == p.e.Inc {
			n.Connections, n.Groups = p.hb.Conns, p.hb.Groups
			n.LastSeenMillis = now.Sub(p.lastSeen).Milliseconds()
		}
		out = append(out, n)
	}
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b hub.Node) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// live returns the bytes of the other nodes a listing must ask.
func (h *Hub) live() []byte {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []byte
	for b, p := range h.peers {
		if b != h.self && p.present && p.e.State == "up" {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return out
}

var workerCount = runtime.GOMAXPROCS(0)

// Ready reports whether this node is a working member of the cluster: it
// holds its registry entry, is connected to NATS and is not fencing or
// leaving. /readyz asks it.
func (h *Hub) Ready() error {
	switch {
	case h.closing.Load():
		return errors.New("leaving the cluster")
	case h.fencing.Load():
		if why := h.heldBy.Load(); why != nil {
			return errors.New(*why)
		}
		return errors.New("fenced: closing its connections and registering again")
	case !h.ctl.IsConnected() || !h.data.IsConnected():
		return errors.New("not connected to NATS")
	}
	h.mu.RLock()
	claimed := h.claimed
	h.mu.RUnlock()
	if !claimed {
		return errors.New("no node byte claimed in the registry")
	}
	return nil
}

// LiveNodes is the number of nodes up, this one included.
func (h *Hub) LiveNodes() int { return len(h.live()) + 1 }
