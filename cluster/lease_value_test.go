package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterLeaseValueFollowsMove: S (node.id auto) runs a stream's lease
// when it stalls (its registry renewals and watcher held; the lease's
// renewals go on) past its registry entry's life; N takes its byte, and
// S, woken, fences (a new incarnation) and moves to another byte. The
// term goes on (one run, never ended, the same term in the key), and the
// key's value names S as it is now, its new byte and incarnation, from
// the next renewal on; before, it named the byte and incarnation of the
// campaign for the whole term.
func TestClusterLeaseValueFollowsMove(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	startHubs(t, []cluster.Config{shortLease(externalConfig(url, "v1"))})
	s := startOne(t, shortLease(externalConfig(url, "v2")))
	from, inc := s.Self(), s.Incarnation()
	const key = "stream.v"
	var active, most atomic.Int32
	r := &runner{name: "s", active: &active, most: &most}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); _ = s.Lease(ctx, key, r.run) }()
	testenv.Eventually(t, 30*time.Second, func() error {
		if starts, _ := r.terms(); len(starts) != 1 {
			return errors.New("S does not run yet")
		}
		return nil
	})
	kv := leasesBucket(t, url)
	value := func() (map[string]any, error) {
		e, err := kv.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		var v map[string]any
		return v, json.Unmarshal(e.Value(), &v)
	}
	var term any
	testenv.Eventually(t, 30*time.Second, func() error {
		v, err := value()
		if err != nil || v["node"] != hub.NodeHex(from) || v["inc"] != inc || v["name"] != "v2" {
			return fmt.Errorf("the lease holds %v (%v), want S's byte %02x and incarnation %s", v, err, from, inc)
		}
		term = v["term"]
		return nil
	})

	hooks := stallPastLease(t, url, s)
	startOne(t, withByte(shortLease(externalConfig(url, "v3")), from))
	hooks.watcher.open()
	hooks.renewal.open()
	testenv.Eventually(t, 30*time.Second, func() error {
		if s.Moves() != 1 || s.Ready() != nil {
			return fmt.Errorf("S moved %d times, readiness %v", s.Moves(), s.Ready())
		}
		return nil
	})
	to, now := s.Self(), s.Incarnation()
	if to == from || now == inc {
		t.Fatalf("S on byte %02x incarnation %s after its move (was %02x, %s)", to, now, from, inc)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		v, err := value()
		if err != nil || v["node"] != hub.NodeHex(to) || v["inc"] != now || v["name"] != "v2" {
			return fmt.Errorf("the lease holds %v (%v), want S's new byte %02x and incarnation %s", v, err, to, now)
		}
		if v["term"] != term {
			return fmt.Errorf("the lease's term %v, want %v: the term went on", v["term"], term)
		}
		return nil
	})
	if starts, ends := r.terms(); len(starts) != 1 || len(ends) != 0 {
		t.Fatalf("S's terms: %d started, %d ended; want the one going on", len(starts), len(ends))
	}
}
