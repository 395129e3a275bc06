package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// reasonRefused is the reason a node is declared gone on its direct port
// refusing connections with its subject without responders.
const reasonRefused = "no responders, direct port refused"

// TestClusterKilledNodeDeclaredOnRefusal: a node whose process dies (its
// NATS connections and its embedded server gone, its direct link's
// listener and connections closed without a goodbye) is declared gone on
// its direct port refusing connections and "no responders", not after
// goneGraceMillis of "no responders" alone: the reason says which. The
// others' watch connections to it end; no call is needed.
func TestClusterKilledNodeDeclaredOnRefusal(t *testing.T) {
	parallel(t)
	hubs := startHubs(t, embeddedConfigs(t, 3))
	a, b, c := hubs[0], hubs[1], hubs[2]
	waitWatching(t, c, a, b)
	cluster.Kill(c)
	for _, h := range []*cluster.Hub{a, b} {
		testenv.Eventually(t, 30*time.Second, func() error {
			if why := h.GoneReason(c.Self()); why != reasonRefused {
				return fmt.Errorf("node %02x: reason %q for %02x, want %q", h.Self(), why, c.Self(), reasonRefused)
			}
			return nil
		})
	}
	// A call on one of its ids answers 410.
	if err := a.Send(context.Background(), hub.NewID(c.Self()), hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
		t.Fatalf("a call on the killed node's id: %v, want ErrGone", err)
	}
}

// TestClusterRefusalAloneDeclaresNothing: a node whose direct link closes
// without a goodbye while its NATS connections stay up is checked (its
// watchers' connections end), found refusing, and asked on its subject,
// which answers: nothing is declared, and its calls are answered.
func TestClusterRefusalAloneDeclaresNothing(t *testing.T) {
	parallel(t)
	hubs := startHubs(t, embeddedConfigs(t, 3))
	a, b, c := hubs[0], hubs[1], hubs[2]
	conn := hubtest.NewConn(hub.NewID(c.Self()), false)
	if err := c.Register(conn); err != nil {
		t.Fatal(err)
	}
	waitWatching(t, c, a, b)
	cluster.KillDirect(c)
	for _, h := range []*cluster.Hub{a, b} {
		testenv.Eventually(t, 30*time.Second, func() error {
			if h.Refusals() == 0 || h.Checking(c.Self()) {
				return fmt.Errorf("node %02x: %d checks found a refusal, one running: %v", h.Self(), h.Refusals(), h.Checking(c.Self()))
			}
			return nil
		})
	}
	for _, h := range []*cluster.Hub{a, b} {
		if why := h.GoneReason(c.Self()); why != "" {
			t.Fatalf("node %02x took the live %02x for gone: %q", h.Self(), c.Self(), why)
		}
		if err := h.Send(context.Background(), conn.ID(), hub.NewMessage([]byte("x"))); err != nil {
			t.Fatalf("node %02x: a call on the live node's id: %v", h.Self(), err)
		}
	}
}

// TestClusterRefusalOfUnreachedLinkNotEvidence: nodes that never reached
// a node's direct link (every dial of it refused from the start: a
// firewall that rejects, a wrong address) do not count its refusal when
// it dies: it is declared on "no responders" after goneGraceMillis, as
// without the link.
func TestClusterRefusalOfUnreachedLinkNotEvidence(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 3)
	refusing := testenv.RefusedAddr(t) // held for the test: a dial is refused
	victim := cfgs[2].Node.Name
	queryVia.Store(cfgs[0].Name, func(node, addr string) string {
		if addr == queryAddr(&cfgs[2]) && node != victim {
			return refusing
		}
		return addr
	})
	t.Cleanup(func() { queryVia.Delete(cfgs[0].Name) })
	hubs := startHubs(t, cfgs)
	a, b, c := hubs[0], hubs[1], hubs[2]
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, h := range []*cluster.Hub{a, b} {
			if h.DirectDialsFailed() == 0 {
				return fmt.Errorf("node %02x has not dialled %02x yet", h.Self(), c.Self())
			}
		}
		return nil
	})
	id := hub.NewID(c.Self())
	cluster.Kill(c)
	// A's calls find no responders; it checks c (refused, unreached:
	// no evidence) and declares it after the grace.
	testenv.Eventually(t, 30*time.Second, func() error {
		err := a.Send(context.Background(), id, hub.NewMessage([]byte("x")))
		if !errors.Is(err, hub.ErrGone) {
			return fmt.Errorf("a call on the killed node's id: %v", err)
		}
		return nil
	})
	for _, h := range []*cluster.Hub{a, b} {
		testenv.Eventually(t, 30*time.Second, func() error {
			if why := h.GoneReason(c.Self()); why != "no responders" && why != "silent" {
				return fmt.Errorf("node %02x: reason %q for %02x, want the grace's or silence's", h.Self(), why, c.Self())
			}
			return nil
		})
	}
	if n := a.Refusals() + b.Refusals(); n != 0 {
		t.Fatalf("%d checks counted a refusal of a link never reached", n)
	}
}

// waitWatching waits until each of watchers holds a watch connection to
// node's direct link.
func waitWatching(t *testing.T, node *cluster.Hub, watchers ...*cluster.Hub) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, h := range watchers {
			if !h.Watching(node.Self()) {
				return fmt.Errorf("node %02x has no watch connection to %02x yet", h.Self(), node.Self())
			}
		}
		return nil
	})
}

// TestClusterNoRespondersChecksWithinBackoff: a check that found a node
// there holds back the next check a slow batch or a judgement ping asks
// for (checkEvery), but not the one a call's "no responders" asks for:
// under load a slow batch's check found the node alive a moment before
// its kill, and with the back-off applied to "no responders" too, its
// first 410 came at 1.3 s (C8, BENCHMARKS.md, session 16).
func TestClusterNoRespondersChecksWithinBackoff(t *testing.T) {
	parallel(t)
	hubs := startHubs(t, embeddedConfigs(t, 2))
	a, b := hubs[0], hubs[1]
	testenv.Eventually(t, 20*time.Second, func() error {
		if a.Checking(b.Self()) {
			return fmt.Errorf("node %02x checks %02x", a.Self(), b.Self())
		}
		return nil
	})
	a.HoldChecks(b.Self())
	n := a.ChecksStarted()
	a.SuspectSlow(b.Self())
	if got := a.ChecksStarted(); got != n {
		t.Fatalf("a slow batch started a check within the back-off (%d checks, %d before)", got, n)
	}
	a.SuspectNoResp(b.Self())
	if got := a.ChecksStarted(); got != n+1 {
		t.Fatalf("a call's \"no responders\" started %d checks within the back-off, want 1", got-n)
	}
}
