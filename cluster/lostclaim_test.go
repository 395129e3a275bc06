package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterReclaimAnswerLost: a fence's claim of its byte back is
// applied, but its answer is lost (dropped at a proxy between the node
// and NATS; in one case the answer to the read that follows it too). The
// node finds its claim applied by reading its entry from the registry
// stream's leader, at once or at its next attempt, and answers the calls
// on its byte from then on, as of that write's send time. Before, a claim
// so found credited nothing (its send time was not known): the node left
// every call on its byte unanswered until its next renewal
// (leaseSeconds/5: 12 minutes here), and a call on a connection it took
// after the fence failed with a timeout (500).
func TestClusterReclaimAnswerLost(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name     string
		readLost bool
	}{
		{"read back at once", false},
		{"read back lost too, found by the next attempt", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startNATS(t)
			px := newAnswerDrop(t, url[len("nats://"):])
			cfgs := []cluster.Config{externalConfig(px.url(), "o1"), externalConfig(url, "o2")}
			for i := range cfgs {
				cfgs[i].LeaseSeconds = 3600
			}
			hubs := startHubs(t, cfgs)
			a, b := hubs[0], hubs[1]
			// The fence's Create is refused (the entry is there, its
			// previous incarnation's); the Update that takes the entry
			// is applied, its answer dropped.
			subject := "$KV.WSGATE_ext_NODES.node." + hub.NodeHex(a.Self())
			rules := []dropRule{{subject: subject, skip: 1}}
			if tc.readLost {
				rules = append(rules, dropRule{subject: "$JS.API.STREAM.MSG.GET.KV_WSGATE_ext_NODES"})
			}
			// Renewals write the entry too (every heartbeat while a peer
			// seems silent, as on a loaded machine): held until the test
			// ends, so that the fence's writes are the only ones.
			noRenewals := make(chan struct{})
			t.Cleanup(func() { close(noRenewals) })
			a.SetStepHook(func(step string) {
				if step == "renew-send" {
					<-noRenewals
				}
			})
			px.arm(rules...)
			writes := px.published(subject)
			before := a.Incarnation()
			a.FenceNow("test: a fence whose claim's answer is lost")
			testenv.Eventually(t, 60*time.Second, func() error {
				if a.Incarnation() == before {
					return errors.New("the fence has not taken a new incarnation")
				}
				return a.Ready() // the fence is over: the byte claimed again
			})
			if n := px.count(); n != len(rules) {
				t.Fatalf("%d answers dropped, want %d: not the interleaving under test", n, len(rules))
			}
			// Create and Update; and when the read back was lost, the next
			// attempt's Create, which finds the entry this node's.
			if n, want := px.published(subject)-writes, map[bool]int{false: 2, true: 3}[tc.readLost]; n != want {
				t.Fatalf("the fence wrote its entry %d times, want %d", n, want)
			}
			if a.Fenced() != 1 {
				t.Fatalf("fenced %d times, want 1", a.Fenced())
			}
			conn := hubtest.NewConn(hub.NewID(a.Self()), false)
			if err := a.Register(conn); err != nil {
				t.Fatal(err)
			}
			if err := b.Send(context.Background(), conn.ID(), hub.NewMessage([]byte("hello"))); err != nil {
				t.Fatalf("a call on the re-claimed node's new connection: %v", err)
			}
		})
	}
}

// TestClusterStartClaimAnswerLost: a starting node's claim of its byte is
// applied but its answer is lost. The claim gives up on it after
// requestTimeoutMillis, reads its entry back from the stream's leader,
// finds it its own and goes on: the node comes up with the byte and its
// connection is reached from the other node. Before, the claim waited for
// its answer until the start's own timeout, and the start failed.
func TestClusterStartClaimAnswerLost(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	b := startHubs(t, []cluster.Config{externalConfig(url, "o1")})[0]
	px := newAnswerDrop(t, url[len("nats://"):])
	self := freeByte(b)
	cfg := withByte(externalConfig(px.url(), "o2"), self)
	cfg.StartupTimeoutSeconds = 30
	px.arm(dropRule{subject: "$KV.WSGATE_ext_NODES.node." + hub.NodeHex(self)})
	a := startOne(t, cfg)
	if n := px.count(); n != 1 {
		t.Fatalf("%d answers dropped, want the claim's", n)
	}
	if a.Self() != self || a.Fenced() != 0 {
		t.Fatalf("the node has byte %d (want %d), fenced %d times", a.Self(), self, a.Fenced())
	}
	conn := hubtest.NewConn(hub.NewID(self), false)
	if err := a.Register(conn); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if st := stateOf(b, self); st != "up" {
			return errors.New("the other node does not see the node up")
		}
		return nil
	})
	if err := b.Send(context.Background(), conn.ID(), hub.NewMessage([]byte("hello"))); err != nil {
		t.Fatalf("a call on the node's connection: %v", err)
	}
}
