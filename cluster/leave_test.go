package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterLeaveAfterRenewal: a graceful shutdown deletes the node's
// registry entry even when a renewal beside it has just moved the entry
// on. C's renewal is held after the registry applied it and before C
// recorded the new revision; C shuts down meanwhile, so its delete names
// the revision before. Before, the delete was refused ("wrong last
// sequence") and the entry stayed up until its TTL: the others answered
// 500 for C's ids, and a restarted C found its byte held and took another
// (TestClusterRollingRestart under load).
func TestClusterLeaveAfterRenewal(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 3)
	cfgs[2].LeaseSeconds = 20 // a renewal every 4 s
	cfgs[2].IsolationSeconds = 15
	srvs := startServers(t, cfgs)
	a, c := srvs[0], srvs[2]
	self := c.Cluster().Self()

	held, release := make(chan struct{}), make(chan struct{})
	var holdOnce, releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	c.Cluster().SetRenewHook(func(err error) {
		if err == nil {
			holdOnce.Do(func() { close(held); <-release })
		}
	})
	left := make(chan string, 1)
	c.Cluster().SetStepHook(func(step string) {
		if step == "leave-released" || step == "leave-kept" {
			left <- step
		}
	})
	<-held // a renewal was applied; C has not recorded its revision

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		shut <- c.Shutdown(ctx)
	}()
	step := <-left
	letGo() // Close waits for its ticker, which waits here
	if step != "leave-released" {
		t.Fatalf("C's shutdown: %s, want its registry entry deleted", step)
	}
	if err := <-shut; err != nil {
		t.Fatalf("C's shutdown: %v", err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		nodes, err := a.Hub().Nodes(context.Background())
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.ID == hub.NodeHex(self) {
				return fmt.Errorf("A still lists C: %+v", nodes)
			}
		}
		return nil
	})
}
