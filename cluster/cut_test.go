package cluster_test

import (
	"errors"
	"testing"
	"time"

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
	cfgs, nw := proxiedConfigs(t, 3)
	hubs := startHubs(t, cfgs)
	c := hubs[2]
	testenv.Eventually(t, 60*time.Second, func() error {
		if !c.HeardMajority() {
			return errors.New("C has not heard a majority for nodeTimeoutMillis yet")
		}
		return nil
	})
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
