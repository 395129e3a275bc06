package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterStalledJoinAnswersNoCall: a start held after subscribing its
// byte's subjects, its refreshing held too (a stalled process), loses its
// joining entry, and another node takes the byte and registers a client.
// Both are subscribed to the byte's subjects; a call on the new owner's
// id reaches both. The stalled node must not answer it (it would answer
// 410, racing the owner's answer, the first reply winning): the owner's
// answer is held until the stalled node has had the call and left it
// unanswered, so before the fix every call was 410, a false "gone" for a
// live client.
func TestClusterStalledJoinAnswersNoCall(t *testing.T) {
	parallel(t)
	url, cfg, a, self, ew := joiningCluster(t)
	ctx := context.Background()
	subscribed, release := make(chan struct{}), make(chan struct{})
	silent := make(chan struct{}, 64)
	var subOnce, relOnce sync.Once
	hook := func(step string) {
		switch step {
		case "subscribed":
			subOnce.Do(func() { close(subscribed) })
			<-release
		case "join-refresh":
			<-release
		case "not-owner":
			select {
			case silent <- struct{}{}:
			default:
			}
		}
	}
	restarted := startAgain(t, cfg, func() { relOnce.Do(func() { close(release) }) }, hook)
	<-subscribed
	waitJoiningExpired(t, ew, a, self)

	other := startOne(t, withByte(externalConfig(url, "j4"), self))
	fresh := hubtest.NewConn(hub.NewID(self), false)
	if err := other.Register(fresh); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if s := stateOf(a, self); s != "up" {
			return fmt.Errorf("A sees the new owner %q, want up", s)
		}
		return nil
	})
	// Before the fix the stalled node answered.
	answerAfter(t, other, silent)
	for i := range 5 {
		if err := a.Send(ctx, fresh.ID(), hub.NewMessage(fmt.Appendf(nil, "%d", i))); err != nil {
			t.Fatalf("send %d to the new owner's connection, the stalled node subscribed too: %v", i, err)
		}
	}
	other.SetConnHook(func(string) {})

	relOnce.Do(func() { close(release) })
	if c, err := restarted.wait(); err == nil {
		t.Fatalf("the stalled start went on with byte %d, which another node holds", c.Self())
	}
	if err := a.Send(ctx, fresh.ID(), hub.NewMessage([]byte("after"))); err != nil {
		t.Fatalf("send once the stalled start failed: %v", err)
	}
}
