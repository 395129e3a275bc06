package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterRenewalRefusedInFlight: on a replicated registry (three
// embedded JetStream servers) a compare-and-set of a key while another
// write of it is in flight (proposed by the stream's leader, not yet
// committed: the leader's routes are paused) is refused with code 10164,
// not 10071. The node on the leader's server renews then: isWrongSequence
// takes the refusal for one (which declareGone, announce and the joining
// refresh go by: "it renewed meanwhile", not "the registry did not
// answer"), the node reads its entry from the leader, finds it at its own
// revision, and counts a failed renewal: no fence. Once the routes resume,
// the write in flight (the entry rewritten as it was, as a renewal of the
// node's whose answer was lost would) is committed, the next renewal is
// refused for its revision and adopts the entry, and renewals succeed
// again, in the same incarnation, unfenced.
func TestClusterRenewalRefusedInFlight(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 3)
	for i := range cfgs {
		// Renewals every 2.4 s; nobody judged while a leader's routes
		// are paused for a moment on a loaded machine.
		cfgs[i].LeaseSeconds, cfgs[i].IsolationSeconds, cfgs[i].NodeTimeoutMillis = 12, 11, 10_000
	}
	hubs := startHubs(t, cfgs)
	bucket := "WSGATE_" + cfgs[0].Name + "_NODES"
	nc, err := nats.Connect(hubs[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	var leader int
	testenv.Eventually(t, 20*time.Second, func() error {
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			return err
		}
		info := s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return errors.New("the registry's stream has no leader with two replicas yet")
		}
		leader = slices.IndexFunc(cfgs, func(c cluster.Config) bool { return c.Node.Name == info.Cluster.Leader })
		if leader < 0 {
			return fmt.Errorf("leader %q is no node", info.Cluster.Leader)
		}
		return nil
	})
	h := hubs[leader]
	lc, err := nats.Connect(h.ClientURL()) // on the leader's server: reached with its routes paused
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ljs, _ := jetstream.New(lc)
	kv, err := ljs.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	key := "node." + hub.NodeHex(h.Self())
	inc := h.Incarnation()

	renewal := newGate(t)
	var refused atomic.Value // the held renewal's error
	var renewed atomic.Int64
	h.SetStepHook(func(step string) {
		if step == "renew-send" {
			renewal.pass()
		}
	})
	h.SetRenewHook(func(err error) {
		if err == nil {
			renewed.Add(1)
		}
		if refused.Load() == nil && err != nil {
			refused.Store(err)
		}
	})
	renewal.armed.Store(true)
	renewal.hold(t, "a renewal")
	cur, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	resume := func() { nw.each(leader, (*proxy).resume) }
	nw.each(leader, (*proxy).pause)
	t.Cleanup(resume)
	// The entry rewritten as it is, until one such write is in flight:
	// the first is proposed and waits for the replicas; the next is
	// refused at once, 10164.
	testenv.Eventually(t, 30*time.Second, func() error {
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := kv.Update(wctx, key, cur.Value(), cur.Revision())
		if code := apiCode(err); code != jetstream.JSErrCodeStreamWrongLastSequenceConstant {
			return fmt.Errorf("a write while one is in flight: %v (code %d), want 10164", err, code)
		}
		return nil
	})
	renewal.open()
	testenv.Eventually(t, 30*time.Second, func() error {
		if refused.Load() == nil {
			return errors.New("the renewal has not been answered")
		}
		return nil
	})
	err = refused.Load().(error)
	if code := apiCode(err); code != jetstream.JSErrCodeStreamWrongLastSequenceConstant || !cluster.IsWrongSequence(err) {
		t.Fatalf("the renewal with a write in flight: %v (code %d, taken for a refusal: %v), want 10164 taken for one", err, code, cluster.IsWrongSequence(err))
	}
	resume()
	n := renewed.Load()
	testenv.Eventually(t, 60*time.Second, func() error {
		if renewed.Load() < n+2 {
			return errors.New("renewals have not succeeded twice since the write in flight was committed")
		}
		return nil
	})
	if h.Fenced() != 0 || h.Incarnation() != inc {
		t.Fatalf("fenced %d times, incarnation %s (was %s); want neither", h.Fenced(), h.Incarnation(), inc)
	}
}

// apiCode is err's JetStream API error code, 0 if none.
func apiCode(err error) jetstream.ErrorCode {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	return 0
}
