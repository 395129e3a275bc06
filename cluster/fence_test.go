package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterFence: a node that finds itself declared gone (as the
// majority side does to a cut-off node) closes every client connection
// with 1012 and registers a new incarnation under the same byte; its old
// ids stay 410 elsewhere, new ones work.
func TestClusterFence(t *testing.T) {
	url := startNATS(t)
	hubs := startHubs(t, []cluster.Config{externalConfig(url, "f1"), externalConfig(url, "f2"), externalConfig(url, "f3")})
	victim := hubs[2]
	old := hubtest.NewConn(hub.NewID(victim.Self()), false)
	if err := victim.Register(old); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := hubs[0].Send(ctx, old.ID(), hub.NewMessage([]byte("before"))); err != nil {
		t.Fatal(err)
	}

	// Declare the victim gone in the registry, as another node would.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, "WSGATE_ext_NODES")
	if err != nil {
		t.Fatal(err)
	}
	key := "node." + hub.NodeHex(victim.Self())
	cur, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	_ = json.Unmarshal(cur.Value(), &e)
	oldInc := e["inc"]
	e["state"], e["by"], e["reason"] = "gone", "test", "partition"
	val, _ := json.Marshal(e)
	if _, err := kv.Update(ctx, key, val, cur.Revision()); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 15*time.Second, func() error {
		if r, ok := old.Closed(); !ok || r != hub.CloseFenced {
			return fmt.Errorf("victim's connection: closed %v %v, want 1012 fenced", ok, r)
		}
		cur, err := kv.Get(ctx, key)
		if err != nil {
			return err
		}
		var now map[string]any
		_ = json.Unmarshal(cur.Value(), &now)
		if now["state"] != "up" || now["inc"] == oldInc || now["name"] != "f3" {
			return fmt.Errorf("registry entry %v, want f3 up with a new incarnation", now)
		}
		return nil
	})
	if victim.Fenced() != 1 {
		t.Fatalf("fenced %d times, want 1", victim.Fenced())
	}
	victim.Unregister(old.ID()) // the gateway does this when the socket is gone
	if err := hubs[0].Send(ctx, old.ID(), hub.NewMessage([]byte("after"))); !errors.Is(err, hub.ErrGone) {
		t.Fatalf("old id after the fence: %v, want ErrGone", err)
	}
	fresh := hubtest.NewConn(hub.NewID(victim.Self()), false)
	if err := victim.Register(fresh); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		return hubs[1].Send(ctx, fresh.ID(), hub.NewMessage([]byte("hello")))
	})
}
