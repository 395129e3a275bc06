package cluster

import (
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// SetConnHook makes this node call f with the op of every request on its
// connections before anything else, on the handler's goroutine (a test's
// slow owner: requests queue behind it as behind a real pause).
func (h *Hub) SetConnHook(f func(op string)) { h.connHook.Store(&f) }

// SetQueryHook makes this node call f with the op of every query whose
// answer it works out, before it does, on the handler's goroutine (a
// test's slow owner).
func (h *Hub) SetQueryHook(f func(op string)) { h.queryHook.Store(&f) }

// SetGroupHook makes this node call f with the group of every group
// message from another node before its worker hands it to the members, on
// the worker's goroutine (a test's slow node).
func (h *Hub) SetGroupHook(f func(group string)) { h.groupHook.Store(&f) }

// GroupSubs counts the group subscriptions of this node's data connection
// as its embedded NATS server holds them, by group name.
func (h *Hub) GroupSubs() map[string]int {
	out := map[string]int{}
	cz, err := h.ns.Connz(&server.ConnzOptions{Subscriptions: true})
	if err != nil {
		return nil
	}
	for _, c := range cz.Conns {
		if c.Name != "wsgate "+h.cfg.Node.Name+" data" {
			continue
		}
		for _, s := range c.Subs {
			if tok, ok := strings.CutPrefix(s, h.prefix+".g."); ok {
				out[tokenGroup(tok)]++
			}
		}
	}
	return out
}

// CallsOut is the calls and the batches this node sent so far.
func (h *Hub) CallsOut() (calls, batches int64) { return h.callsOut.Load(), h.batchesOut.Load() }

// CallsPerBatch is the mean number of calls in the batches this node sent.
func (h *Hub) CallsPerBatch() float64 {
	if b := h.batchesOut.Load(); b > 0 {
		return float64(h.callsOut.Load()) / float64(b)
	}
	return 0
}

// SetRenewHook makes this node call f in each registry renewal once the
// registry answered (err) and the renewal found its claim current, before
// it judges the answer, on the renewing goroutine.
func (h *Hub) SetRenewHook(f func(err error)) { h.renewHook.Store(&f) }

// JudgeGone runs this node's judgement of node b on evidence reason
// ("silent", "no responders"), as its silence check and its calls do, and
// reports whether b is gone here now.
func (h *Hub) JudgeGone(b byte, reason string) bool { return h.declareGone(h.ctx, b, reason) }

// HeardMajority reports whether this node has heard a strict majority of
// the live set for nodeTimeoutMillis (its heartbeat view).
func (h *Hub) HeardMajority() bool { return h.heardMajorityFor(h.cfg.nodeTimeout()) }

// SetStepHook makes this node call f at the named steps of its registry
// work (Hub.stepHook), on the goroutine doing it.
func (h *Hub) SetStepHook(f func(step string)) { h.stepHook.Store(&f) }

// FenceNow fences this node as evidence against its current claim would
// (one of the fencing rules), why being the reason it logs.
func (h *Hub) FenceNow(why string) {
	h.mu.RLock()
	claim := h.claims
	h.mu.RUnlock()
	h.startFence(claim, why)
}

// Incarnation is this node's current incarnation.
func (h *Hub) Incarnation() string { return h.incarnation() }

// WithStepHook returns opts with f as the hub's step hook from the start
// of Start (SetStepHook can only follow it), on the goroutine doing each
// step.
func WithStepHook(opts Options, f func(step string)) Options {
	opts.stepHook = f
	return opts
}

// HasInterest reports whether this node's embedded NATS server knows of a
// subscription (its clients' or, over a route, another server's) that
// subject reaches.
func (h *Hub) HasInterest(subject string) bool {
	return h.ns.GlobalAccount().SubscriptionInterest(subject)
}

// SetEmbeddedHook makes every embedded NATS server of this process call f
// once it accepts clients, with its node's config and the addresses its
// client and route listeners took (port 0 picks one).
func SetEmbeddedHook(f func(c *Config, client, route string)) {
	g := func(c *Config, ns *server.Server) {
		route := ""
		if a := ns.ClusterAddr(); a != nil {
			route = a.String()
		}
		f(c, ns.Addr().String(), route)
	}
	embeddedUp.Store(&g)
}

// SetStartAbort makes every Start of this process ask f for a channel
// for its node (nil: none); closing it ends that Start's wait for NATS
// and the registry at once, with an error.
func SetStartAbort(f func(c *Config) <-chan struct{}) {
	startAbort.Store(&f)
}

// ClientURL is the URL of this node's embedded NATS server.
func (h *Hub) ClientURL() string { return h.ns.ClientURL() }

// IsWrongSequence reports whether err is a registry compare-and-set
// refused for its revision (isWrongSequence).
func IsWrongSequence(err error) bool { return isWrongSequence(err) }

// PaceWaitersBound is the most pacing goroutines a node runs at once.
const PaceWaitersBound = paceWaiters

// PaceSubject is the subject other nodes ask this node's pacing on.
func (h *Hub) PaceSubject() string { return h.subject(h.Self(), "p") }

// PaceWaiters is how many pacing goroutines run on this node now, and the
// most that ever ran at once.
func (h *Hub) PaceWaiters() (running, peak int) {
	h.paces.mu.Lock()
	defer h.paces.mu.Unlock()
	return h.paces.running, h.paces.peak
}
