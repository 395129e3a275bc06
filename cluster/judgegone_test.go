package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// reasonPeer is the reason of a node that declares another without having
// heard its incarnation, on a peer's answer that it takes it for gone.
const reasonPeer = "gone on a peer's judgement"

// errRegistryDown is the error a node of a cluster in registryDown takes
// for the registry's answer to its commit of another node's gone.
var errRegistryDown = errors.New("the registry is electing a leader (test)")

// deaf makes node drop the heartbeats of the node named from, its
// answers to node's pings and its start-up pings, in the cluster of cfgs,
// until the test ends.
func deaf(t *testing.T, cfgs []cluster.Config, node, from string) {
	deafTo.Store(cfgs[0].Name, func(n, f string, _ cluster.Heard) bool { return n == node && f == from })
	t.Cleanup(func() { deafTo.Delete(cfgs[0].Name) })
}

// deafToHeartbeats makes every node of the cluster of cfgs drop the
// heartbeats and the start-up pings of the node named from (not its
// answers to their pings), until the test ends.
func deafToHeartbeats(t *testing.T, cfgs []cluster.Config, from string) {
	deafTo.Store(cfgs[0].Name, func(_, f string, kind cluster.Heard) bool { return kind != cluster.HeardAnswer && f == from })
	t.Cleanup(func() { deafTo.Delete(cfgs[0].Name) })
}

// deafToAllButStartPings makes every node of the cluster of cfgs drop the
// heartbeats of the node named from and its answers to their pings (not
// its start-up pings), until the test ends.
func deafToAllButStartPings(t *testing.T, cfgs []cluster.Config, from string) {
	deafTo.Store(cfgs[0].Name, func(_, f string, kind cluster.Heard) bool { return kind != cluster.HeardPing && f == from })
	t.Cleanup(func() { deafTo.Delete(cfgs[0].Name) })
}

// registryCannotCommit makes every node of the cluster of cfgs fail its
// commits of another node's gone, until the test ends: each takes the node
// for gone locally, as when the registry's stream elects a leader (the dead
// node led it).
func registryCannotCommit(t *testing.T, cfgs []cluster.Config) {
	registryDown.Store(cfgs[0].Name, true)
	t.Cleanup(func() { registryDown.Delete(cfgs[0].Name) })
}

// waitHeardLater waits until later heard a heartbeat of node after earlier's
// last one.
func waitHeardLater(t *testing.T, node, later, earlier *cluster.Hub) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		if l, e := later.HeardSeq(node.Self()), earlier.HeardSeq(node.Self()); l <= e || e == 0 {
			return fmt.Errorf("node %02x heard heartbeat %d of %02x, node %02x %d", later.Self(), l, node.Self(), earlier.Self(), e)
		}
		return nil
	})
}

// waitGone waits until h answers 410 for an id of node b's and takes b for
// gone for one of reasons (any, when none is given).
func waitGone(t *testing.T, h *cluster.Hub, b byte, reasons ...string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		why := h.GoneReason(b)
		if why == "" || len(reasons) > 0 && !slices.Contains(reasons, why) {
			return fmt.Errorf("node %02x: reason %q for %02x, want one of %q", h.Self(), why, b, reasons)
		}
		return nil
	})
	if err := h.Send(context.Background(), hub.NewID(b), hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
		t.Fatalf("node %02x: a call on the dead node's id: %v, want ErrGone", h.Self(), err)
	}
}

// waitCallGone calls h on an id of node b's until it answers 410.
func waitCallGone(t *testing.T, h *cluster.Hub, b byte) {
	t.Helper()
	id := hub.NewID(b)
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := h.Send(context.Background(), id, hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
			return fmt.Errorf("a call on the killed node's id: %v", err)
		}
		return nil
	})
}

// TestClusterPeerTakingNodeGoneDoesNotObject: the dying node's last
// heartbeat reached B and not A, and the registry cannot commit (its
// stream's leader was the dead node). B takes it for gone locally at once
// (its watch, its port refused); A's judgement pings B, which heard the
// node later than A did: before, B objected (Wsg-Heard) until its commit
// went through and A's registry watch delivered it (under load, 7 s of
// election and 13 s of a stalled watch: the 19.9 s first 410 of C8). B
// takes the node for gone itself, so it agrees (Wsg-Gone), and A takes it
// for gone too.
func TestClusterPeerTakingNodeGoneDoesNotObject(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 3)
	hubs := startHubs(t, cfgs)
	a, b, c := hubs[0], hubs[1], hubs[2]
	waitWatching(t, c, a, b)
	deaf(t, cfgs, "n1", "n3")
	waitHeardLater(t, c, b, a)
	registryCannotCommit(t, cfgs)
	cluster.Kill(c)
	waitGone(t, b, c.Self(), reasonRefused)
	waitGone(t, a, c.Self())
}

// TestClusterUnheardNodeGoneOnPeerJudgement: A never heard the node's
// incarnation (it died within a heartbeat of joining; here A drops its
// heartbeats), so A has neither its direct address nor evidence of its
// own ("no responders" counts only against an incarnation heard). B, which
// heard it, takes it for gone (locally: the registry cannot commit); A's
// calls find no responders, its check asks the peers, and B's answer that
// it takes the node for gone declares it on A. Silence would decide only
// after nodeTimeoutMillis, here 40 s.
func TestClusterUnheardNodeGoneOnPeerJudgement(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].NodeTimeoutMillis, cfgs[i].IsolationSeconds = 40_000, 45
	}
	deaf(t, cfgs, "n1", "n3")
	hubs := startHubs(t, cfgs)
	a, b, c := hubs[0], hubs[1], hubs[2]
	waitWatching(t, c, b)
	if n := a.HeardSeq(c.Self()); n != 0 {
		t.Fatalf("node %02x heard heartbeat %d of %02x", a.Self(), n, c.Self())
	}
	registryCannotCommit(t, cfgs)
	cluster.Kill(c)
	waitGone(t, b, c.Self(), reasonRefused)
	waitCallGone(t, a, c.Self())
	waitGone(t, a, c.Self(), reasonPeer)
}

// TestClusterHeardLaterChecksItself: the dying node's last heartbeat
// reached B and not A, and B has no evidence of its own coming (its
// direct link never reached the node, so no watch and no refusal that
// counts; no calls; silence only after nodeTimeoutMillis, 40 s here).
// A's calls have it judged, whose pings B answers Wsg-Heard, and B checks
// the node itself: "no responders" for goneGraceMillis declares it on B,
// and A learns it from the registry.
func TestClusterHeardLaterChecksItself(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].NodeTimeoutMillis, cfgs[i].IsolationSeconds = 40_000, 45
	}
	refusing := testenv.RefusedAddr(t) // held for the test: a dial is refused
	queryVia.Store(cfgs[0].Name, func(node, addr string) string {
		if addr == queryAddr(&cfgs[2]) && node == "n2" {
			return refusing
		}
		return addr
	})
	t.Cleanup(func() { queryVia.Delete(cfgs[0].Name) })
	hubs := startHubs(t, cfgs)
	a, b, c := hubs[0], hubs[1], hubs[2]
	waitWatching(t, c, a)
	testenv.Eventually(t, 20*time.Second, func() error {
		if b.DirectDialsFailed() == 0 {
			return fmt.Errorf("node %02x has not dialled %02x yet", b.Self(), c.Self())
		}
		return nil
	})
	deaf(t, cfgs, "n1", "n3")
	waitHeardLater(t, c, b, a)
	cluster.Kill(c)
	// A's calls find the node's port refusing and no responders; each
	// judgement they ask for pings B (one check at a time there).
	waitCallGone(t, a, c.Self())
	waitGone(t, b, c.Self(), "no responders")
}

// TestClusterUnheardNodeGoneOnNoResponders: no peer ever hears a heartbeat
// of the node (its first one lost while the routes formed, as under load
// in C8; here every node drops them), so nobody has its direct address,
// and "no responders" counted only against an incarnation heard: it was
// declared on silence only, nodeTimeoutMillis after its entry appeared
// (3.4 s in C8; 40 s here, past the test's wait). Each peer pings a node
// whose entry goes up unheard; the answer, naming the incarnation, counts
// as having heard it, and A's calls after the kill have it declared on
// "no responders".
func TestClusterUnheardNodeGoneOnNoResponders(t *testing.T) {
	parallel(t)
	cfgs := slowSilenceConfigs(t)
	deafToHeartbeats(t, cfgs, "n3")
	hubs := startHubs(t, cfgs)
	a, b, c := hubs[0], hubs[1], hubs[2]
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, h := range []*cluster.Hub{a, b} {
			if !h.Answered(c.Self()) {
				return fmt.Errorf("node %02x has not had an answer of %02x yet", h.Self(), c.Self())
			}
		}
		return nil
	})
	killUnheard(t, a, b, c)
}

// slowSilenceConfigs are three embedded nodes' configs whose silence
// judges a node only after 40 s, past the tests' waits.
func slowSilenceConfigs(t *testing.T) []cluster.Config {
	cfgs := embeddedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].NodeTimeoutMillis, cfgs[i].IsolationSeconds = 40_000, 45
	}
	return cfgs
}

// killUnheard checks that a and b heard no heartbeat of c, kills c, and
// waits until a's calls on c's ids answer 410 and both take c for gone on
// "no responders".
func killUnheard(t *testing.T, a, b, c *cluster.Hub) {
	t.Helper()
	for _, h := range []*cluster.Hub{a, b} {
		if n := h.HeardSeq(c.Self()); n != 0 {
			t.Fatalf("node %02x heard heartbeat %d of %02x", h.Self(), n, c.Self())
		}
	}
	cluster.Kill(c)
	waitCallGone(t, a, c.Self())
	waitGone(t, a, c.Self(), "no responders")
	waitGone(t, b, c.Self(), "no responders")
}

// TestClusterStartPingHeard: no peer hears a heartbeat of C or has an
// answer of it to a ping, but A and B are up when C restarts, and C pings
// each on its subject before its entry goes up (after its subscriptions):
// that ping counts as hearing C. C is killed right after its entry went
// up, and A's calls have it declared on "no responders" (goneGraceMillis).
// Before, "no responders" counted only after a heartbeat or an answer of
// C, and C was declared on silence only (nodeTimeoutMillis, 40 s here).
func TestClusterStartPingHeard(t *testing.T) {
	parallel(t)
	cfgs := slowSilenceConfigs(t)
	deafToAllButStartPings(t, cfgs, "n3")
	hubs := startHubs(t, cfgs)
	a, b := hubs[0], hubs[1]
	// C restarts: A and B are up when it starts again, so it pings them.
	if err := hubs[2].Close(); err != nil {
		t.Fatal(err)
	}
	// Start returns once A and B answered C's start-up ping, which they
	// recorded before answering.
	c := startOne(t, cfgs[2])
	for _, h := range []*cluster.Hub{a, b} {
		testenv.Eventually(t, 20*time.Second, func() error {
			nodes, err := h.Nodes(context.Background())
			if err != nil || !slices.ContainsFunc(nodes, func(n hub.Node) bool { return n.ID == hub.NodeHex(c.Self()) && n.State == "up" }) {
				return fmt.Errorf("node %02x does not list %02x up: %v %v", h.Self(), c.Self(), nodes, err)
			}
			return nil
		})
	}
	killUnheard(t, a, b, c)
}
