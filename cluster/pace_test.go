package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/streams"
)

// TestClusterStreamTakeoverPaced: a stream taken over with a backlog many
// times a member's outbound queue (1000 rows, queues of 16 frames)
// delivers every row to the member on every node: the new leader's own
// member and the two the rows reach through NATS. The group target
// publishes the backlog in steps of half a queue and waits, after each,
// for every node's members to take it in (hub.Pacer); without that the
// burst overflows the queues and the members skip rows by design.
func TestClusterStreamTakeoverPaced(t *testing.T) {
	heavy(t)
	pacedTakeover(t, false)
}

// TestClusterStreamPacedStuckMember: as TestClusterStreamTakeoverPaced,
// with a fourth member on n3 whose client reads nothing (and is neither
// closed as a slow consumer nor timed out during the test). Its node
// waits for it once, hub.PaceWait, then excuses it (hub.PaceExcuse); the
// burst goes on for the others, who get every row, and the stuck member
// skips rows as before. Its queue is filled before the rows come
// (messages of 128 KB sent to it until its queue refuses one), so every
// step of the burst finds it backlogged: waited for at every step (the
// excuse turned off), the 125 steps would take 125 s, past the test's
// 60 s wait.
func TestClusterStreamPacedStuckMember(t *testing.T) {
	heavy(t)
	pacedTakeover(t, true)
}

func pacedTakeover(t *testing.T, stuck bool) {
	const (
		backlog = 1000
		queue   = 16
	)
	value := strings.Repeat("x", 1000)
	db, conn := itemsDB(t)
	stream := streams.Config{
		Name:   "items",
		Source: streams.SourceConfig{Type: "sqlite", Path: db, Tables: []string{"items"}},
		Target: streams.TargetConfig{Group: "g"},
	}
	// n1 runs the stream first; n2 and n3 do not have it.
	srvs := startServersWith(t, embeddedConfigs(t, 3), func(c *server.Config) {
		if c.Cluster.Node.Name == "n1" {
			c.Streams = []streams.Config{stream}
		}
		c.OutboundQueueFrames = queue
		// A stuck client stays a member for the whole test.
		c.SlowConsumerSeconds, c.WriteTimeoutSeconds = 3600, 3600
	})
	members := joinMembers(t, srvs, "g")
	began := time.Now()
	if stuck {
		// A client that reads nothing, with a small receive buffer.
		d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4096)
			}
			return c, err
		}}
		_, id := dialWith(t, srvs[2], &d)
		if err := srvs[2].Hub().Join(context.Background(), "g", id); err != nil {
			t.Fatal(err)
		}
		// Fill its socket buffers (the server's send buffer grows to a
		// few MB) and then its queue.
		big := hub.NewMessage([]byte(strings.Repeat("y", 128<<10)))
		testenv.Eventually(t, 60*time.Second, func() error {
			switch err := srvs[2].Hub().Send(context.Background(), id, big); {
			case errors.Is(err, hub.ErrQueueFull):
				return nil
			case err != nil:
				t.Fatalf("filling the stuck client: %v", err)
			}
			return errors.New("the stuck client's queue has room still")
		})
	}
	insert := func(from, to int) {
		t.Helper()
		tx, err := conn.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for k := from; k <= to; k++ {
			if _, err := tx.Exec(`INSERT INTO items VALUES (?, ?)`, k, value); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// allReach waits until every member has rows 1..upTo, for within; or,
	// when progress is set, for as long as the members keep getting rows,
	// failing once none came for within. It says what each node did when
	// it fails.
	allReach := func(upTo int, within time.Duration, progress bool) {
		t.Helper()
		cond := func() error {
			for i, m := range members {
				if k := m.missing(upTo, nil); k != 0 {
					return fmt.Errorf("the member on n%d has not received row %d (of %d)", i+1, k, upTo)
				}
			}
			return nil
		}
		received := func() (n int) {
			for _, m := range members {
				m.mu.Lock()
				n += len(m.keys)
				m.mu.Unlock()
			}
			return n
		}
		last, deadline := received(), time.Now().Add(within)
		err := cond()
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			if n := received(); progress && n > last {
				last, deadline = n, time.Now().Add(within) // a row came: within more
			}
			err = cond()
		}
		if err != nil {
			for i, s := range srvs {
				_, body := httpGet(t, "http://"+s.AdminAddr()+"/metrics")
				t.Logf("n%d: member %s; pace %+v; %s", i+1, members[i].report(upTo, nil),
					s.Cluster().PaceStats(), metricLines(body, "wsgate_group_deliveries_skipped"))
			}
			if progress {
				t.Fatalf("no row for %v: %v", within, err)
			}
			t.Fatalf("after %v: %v", within, err)
		}
	}
	running := func(i int) bool { return srvs[i].StreamStatus()["items"].State == streams.StateRunning }

	// n1 delivers the first row to everyone.
	insert(1, 1)
	allReach(1, 20*time.Second, false)
	// n1 lets the stream go; nobody else has it, so the rows pile up.
	cfg := srvs[0].Config()
	cfg.Streams = nil
	if _, err := srvs[0].Reload(cfg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if running(0) {
			return errors.New("n1 still runs the stream")
		}
		return nil
	})
	insert(2, backlog+1)
	// n2 takes the stream with its backlog.
	cfg = srvs[1].Config()
	cfg.Streams = []streams.Config{stream}
	if _, err := srvs[1].Reload(cfg); err != nil {
		t.Fatal(err)
	}
	// The backlog's 125 paced steps (a publish of 8 rows to 3 members,
	// then a round trip to each other node) take 2 s alone on 2 cores
	// under -race, 10 s in the package's full -race run at load 11-15,
	// without a wait for a member, an excuse or a skip; at load 20-30 the
	// healthy members were still getting rows when a fixed 60 s ran out.
	// So the healthy run waits while rows come: a member that skipped
	// rows (70-80 % of them unpaced) never gets them, and the wait fails
	// 30 s after the last. The stuck member's run keeps the fixed 60 s:
	// waited for at every step (its excuse off), the burst takes 125 s.
	if stuck {
		allReach(backlog+1, 60*time.Second, false)
	} else {
		allReach(backlog+1, 30*time.Second, true)
	}

	var excused []int64
	for i, s := range srvs {
		ps := s.Cluster().PaceStats()
		excused = append(excused, ps.Excused)
		_, body := httpGet(t, "http://"+s.AdminAddr()+"/metrics")
		t.Logf("n%d: pace waits %d, members excused %d; %s", i+1, ps.Waits, ps.Excused, metricLines(body, "wsgate_group_deliveries_skipped"))
	}
	if stuck {
		// Each excuse cost the stream one PaceWait; the stuck member is
		// excused again only after PaceExcuse, and a healthy member
		// (which drains half a queue in microseconds) not at all.
		bound := 1 + int64(time.Since(began)/hub.PaceExcuse)
		if excused[2] == 0 || excused[2] > bound {
			t.Fatalf("n3 excused %d members in %v, want 1 to %d", excused[2], time.Since(began).Round(time.Second), bound)
		}
	}
	if st := srvs[1].StreamStatus()["items"]; st.Source.Delivered < backlog {
		t.Fatalf("n2 delivered %d rows, want the backlog of %d at least", st.Source.Delivered, backlog)
	}
}
