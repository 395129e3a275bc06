package cluster_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterCutNodeJudgesNobody cuts node C off and at once has it judge
// A and B on each kind of evidence. Its heartbeat view lags by up to
// nodeTimeoutMillis: right after the cut it still counts both as heard,
// and it took a live node for gone (its registry does not answer, so
// locally) and answered 410 for that node's live connections until it
// found itself alone (TestClusterHostLoss, once in CI). It must ask the
// others now: none answers across the cut, so it judges nobody.
func TestClusterCutNodeJudgesNobody(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 3)
	hubs := startHubs(t, cfgs)
	c := hubs[2]
	waitHeardMajority(t, c)
	nw.cut(2)
	cut := time.Now()
	for _, h := range hubs[:2] {
		for _, reason := range []string{"silent", "no responders"} {
			if c.JudgeGone(h.Self(), reason) {
				t.Errorf("C, cut off %v ago, took node %02x for gone on %q", time.Since(cut), h.Self(), reason)
			}
		}
	}
	if !c.HeardMajority() {
		t.Logf("the heartbeat view had caught up with the cut (%v) before the last judgement", time.Since(cut))
	}
}

// TestClusterForeignHeartbeatNotHeard cuts node C off while heartbeats
// naming A's and B's bytes and names, but not the incarnations the
// registry holds for them, reach C's own NATS server: another cluster's
// nodes of the same names, routed in by mistake. Test processes side by
// side did that (one's route port taken by another's server): the
// cut-off C counted them as A and B, heard a majority, took A for gone
// and answered 410 for A's live client (TestClusterHostLoss, "C answered
// 410 for a live client of A"). C must find itself alone all the same.
func TestClusterForeignHeartbeatNotHeard(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 3)
	hubs := startHubs(t, cfgs)
	c := hubs[2]
	waitHeardMajority(t, c)
	nc, err := nats.Connect(c.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var forged [][]byte
	for i, h := range hubs[:2] {
		b, _ := json.Marshal(map[string]any{"node": hub.NodeHex(h.Self()), "name": cfgs[i].Node.Name, "inc": "f0f0f0f0f0f0f0f0", "state": "up"})
		forged = append(forged, b)
	}
	nw.cut(2)
	cut := time.Now()
	testenv.Eventually(t, 60*time.Second, func() error {
		for _, b := range forged {
			if err := nc.Publish("wsg."+cfgs[2].Name+".hb", b); err != nil {
				return err
			}
		}
		if c.HeardMajority() {
			return errors.New("C still hears a majority (the other cluster's heartbeats)")
		}
		return nil
	})
	t.Logf("C found itself alone %v after the cut", time.Since(cut))
	for _, h := range hubs[:2] {
		if c.JudgeGone(h.Self(), "silent") {
			t.Errorf("C, cut off, took node %02x for gone", h.Self())
		}
	}
}

// waitHeardMajority waits until h has heard a strict majority of the live
// nodes for nodeTimeoutMillis (it judges nobody on silence before).
func waitHeardMajority(t *testing.T, h *cluster.Hub) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		if !h.HeardMajority() {
			return errors.New("not heard a majority for nodeTimeoutMillis yet")
		}
		return nil
	})
}
