package cluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestClusterShutdownDrainsGroups: a group message another node answered
// before this node's graceful shutdown began reaches this node's member
// before its close frame, however late it is on its way. B's worker holds
// the message (a loaded node) while B shuts down; it is let go only once
// B's shutdown has heard A and put its marks behind it (step
// "drain-marks"). Before DrainGroups the member got its 1001 first and
// never the message (TestClusterRollingRestart under load: clients of the
// node going down missed the message published as its shutdown began).
func TestClusterShutdownDrainsGroups(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 2)
	srvs := startServers(t, cfgs)
	a, b := srvs[0], srvs[1]
	ctx := context.Background()
	ws, id := dial(t, b)
	if err := groupClient(t, a).Join(ctx, "g", id); err != nil {
		t.Fatal(err)
	}

	held, release := make(chan struct{}), make(chan struct{})
	var holdOnce, releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the servers' cleanup shuts them down
	b.Cluster().SetGroupHook(func(group string) {
		if group == "g" {
			holdOnce.Do(func() { close(held); <-release })
		}
	})
	draining := make(chan struct{})
	var drainOnce sync.Once
	b.Cluster().SetStepHook(func(step string) {
		if step == "drain-marks" {
			drainOnce.Do(func() { close(draining) })
		}
	})

	// What the member reads, in order, up to its close.
	type frame struct {
		data string
		err  error
	}
	frames := make(chan frame, 4)
	go func() {
		for {
			_, p, err := ws.ReadMessage()
			frames <- frame{string(p), err}
			if err != nil {
				return
			}
		}
	}()

	if _, err := groupClient(t, a).Publish(ctx, "g", []byte("before the shutdown")); err != nil {
		t.Fatal(err)
	}
	<-held // on B, in its worker
	shut := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		shut <- b.Shutdown(sctx)
	}()
	select {
	case <-draining:
	case f := <-frames:
		letGo()
		t.Fatalf("B's member got %q, %v while the group message was still on its way, want the message first", f.data, f.err)
	}
	letGo()
	f := <-frames
	if f.err != nil || f.data != "before the shutdown" {
		t.Fatalf("B's member got %q, %v, want the group message", f.data, f.err)
	}
	if f = <-frames; !websocket.IsCloseError(f.err, websocket.CloseGoingAway) {
		t.Fatalf("B's member then got %q, %v, want close 1001", f.data, f.err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("B's shutdown: %v", err)
	}
}
