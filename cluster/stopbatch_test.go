package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/streams"
)

// TestClusterStreamStopMidBatchStuckMember: n1 runs a stream whose group
// has, on n1, a member that reads nothing (its queue full: every paced
// step finds it backlogged), and is shut down while a batch of 64 rows
// goes out. The stop is logged (how long n1's Shutdown and its stream's
// run took); the member is waited for once (hub.PaceWait) and excused,
// so the batch ends within the delivery grace. n2 then takes the stream
// over and the members that read get every row.
func TestClusterStreamStopMidBatchStuckMember(t *testing.T) {
	heavy(t)
	stopMidBatch(t, false)
}

// TestClusterStreamStopMidBatchSilentPeer: as
// TestClusterStreamStopMidBatchStuckMember, with n3 silent instead: its
// group worker is held (a node far behind) and its requestTimeoutMillis
// is a minute, so it answers no pacing question, and each of n1's paced
// steps waits hub.PaceWait plus twice n1's requestTimeoutMillis (1 s)
// for it, excusing nobody. Before, a stop waited for the whole rest of
// the batch that way (8 steps of 3 s); now the batch is cut when the
// delivery grace (2 s) runs out, counted (Status.Cut,
// wsgate_stream_batches_cut_total), and n2, which takes the stream over,
// delivers it again: the members on n2 get every row (those published
// before the cut twice).
func TestClusterStreamStopMidBatchSilentPeer(t *testing.T) {
	heavy(t)
	stopMidBatch(t, true)
}

func stopMidBatch(t *testing.T, silent bool) {
	const (
		backlog = 64 // 8 paced steps with queues of 16 frames
		queue   = 16
		grace   = 2
	)
	db, conn := itemsDB(t)
	g := grace
	stream := streams.Config{
		Name:   "items",
		Source: streams.SourceConfig{Type: "sqlite", Path: db, Tables: []string{"items"}, DeliverGraceSeconds: &g},
		Target: streams.TargetConfig{Group: "g"},
	}
	cfgs := embeddedConfigs(t, 3)
	if silent {
		// n1 waits 1 s + 2 × 1 s for n3 at each step; n3 waits a minute
		// for its held worker before it answers.
		cfgs[0].RequestTimeoutMillis = 1000
		cfgs[2].RequestTimeoutMillis = 60_000
	}
	srvs := startServersWith(t, cfgs, func(c *server.Config) {
		if c.Cluster.Node.Name == "n1" {
			c.Streams = []streams.Config{stream}
		}
		c.OutboundQueueFrames = queue
		c.SlowConsumerSeconds, c.WriteTimeoutSeconds = 3600, 3600
	})
	// One reading member on each node, two on n2 (which has them after
	// n1 is gone).
	members := joinMembers(t, []*server.Server{srvs[0], srvs[1], srvs[1], srvs[2]}, "g")
	reached := func(ms []*member, upTo int) func() error {
		return func() error {
			for _, m := range ms {
				if k := m.missing(upTo, nil); k != 0 {
					return fmt.Errorf("a member has not received row %d", k)
				}
			}
			return nil
		}
	}
	value := strings.Repeat("x", 1000)
	insertItems(t, conn, 1, 1, value)
	if err := untilStill(time.Minute, streamProgress(srvs, members), reached(members, 1)); err != nil {
		t.Fatal(err)
	}

	// In the silent case n3's group worker holds the first group message
	// it gets from here on (held is closed then) until release.
	release := func() {}
	held := make(chan struct{})
	if silent {
		letGo := make(chan struct{})
		var heldOnce, letOnce sync.Once
		srvs[2].Cluster().SetGroupHook(func(string) {
			heldOnce.Do(func() { close(held) })
			<-letGo
		})
		release = func() { letOnce.Do(func() { close(letGo) }) }
		t.Cleanup(release)
	} else {
		stuckClient(t, srvs[0], "g")
	}
	waits := srvs[0].Cluster().PaceStats().Waits
	insertItems(t, conn, 2, backlog+1, value)
	// n1 is mid-batch: n3's worker holds the batch's first row, or n1
	// waits for its stuck member.
	testenv.Eventually(t, 60*time.Second, func() error {
		if silent {
			select {
			case <-held:
				return nil
			default:
				return errors.New("n3's worker has no row of the batch yet")
			}
		}
		if srvs[0].Cluster().PaceStats().Waits == waits {
			return errors.New("n1 has not waited for its stuck member yet")
		}
		return nil
	})

	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := srvs[0].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	st := srvs[0].StreamStatus()["items"]
	t.Logf("n1's shutdown mid-batch took %v; its stream's run stopped %v after its context ended (cause %q), %d batch(es) cut, stops %v",
		took.Round(time.Millisecond), st.StopTook.Round(time.Millisecond), st.StopCause, st.Cut, st.Stops)
	release()
	if st.Stops[streams.StopShutdown] != 1 || !strings.Contains(st.StopCause, streams.ErrShutdown.Error()) {
		t.Fatalf("n1's stream: stops %v, last cause %q; want one, for the shutdown", st.Stops, st.StopCause)
	}
	if silent && st.Cut == 0 {
		// Each step waits 3 s for n3, past the grace of 2 s.
		t.Fatal("n1's batch was not cut when its grace ran out")
	}

	// n2 takes the stream over; the members on n2 and n3 get every row,
	// but for n3's in the silent case: its worker, let go, hands it what
	// it held in one burst, past its queue.
	cfg := srvs[1].Config()
	cfg.Streams = []streams.Config{stream}
	if _, err := srvs[1].Reload(cfg); err != nil {
		t.Fatal(err)
	}
	check := members[1:]
	if silent {
		check = members[1:3]
	}
	if err := untilStill(time.Minute, streamProgress(srvs, members), reached(check, backlog+1)); err != nil {
		for i, m := range members {
			t.Logf("member %d (n1, n2, n2, n3): %s", i+1, m.report(backlog+1, nil))
		}
		t.Fatal(err)
	}
	dups, ordered := members[1].duplicates()
	t.Logf("a member on n2 got %d rows twice (first receipts in order: %v)", dups, ordered)
}
