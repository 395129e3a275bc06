package cluster_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/streams"
	"github.com/wsgate/wsgate/streams/sqlite"
)

// member is a WebSocket client in the stream's group that records the
// key of every record it receives, and when.
type member struct {
	mu      sync.Mutex
	keys    []int
	at      []time.Time
	readErr error // why read ended, for a failure's report
}

func (m *member) read(ws *websocket.Conn) {
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			m.mu.Lock()
			m.readErr = err
			m.mu.Unlock()
			return
		}
		var r events.DynamoDBEventRecord
		if json.Unmarshal(b, &r) != nil {
			continue
		}
		k, err := strconv.Atoi(r.Change.Keys["k"].Number())
		if err != nil {
			continue
		}
		m.mu.Lock()
		m.keys, m.at = append(m.keys, k), append(m.at, time.Now())
		m.mu.Unlock()
	}
}

// missing reports the first key in 1..upTo the member has not received
// and that is not excused, 0 when it has them all.
func (m *member) missing(upTo int, excused map[int]bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[int]bool, len(m.keys))
	for _, k := range m.keys {
		seen[k] = true
	}
	for k := 1; k <= upTo; k++ {
		if !seen[k] && !excused[k] {
			return k
		}
	}
	return 0
}

// report tells, for a failure, what the member received: the keys missing
// in 1..upTo (not excused; the first and last ten when more), how many it
// has, when it got its last one and why its reader ended, if it did.
func (m *member) report(upTo int, excused map[int]bool) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[int]bool, len(m.keys))
	for _, k := range m.keys {
		seen[k] = true
	}
	var miss []int
	for k := 1; k <= upTo; k++ {
		if !seen[k] && !excused[k] {
			miss = append(miss, k)
		}
	}
	if len(miss) > 20 {
		miss = append(miss[:10], miss[len(miss)-10:]...)
	}
	last := "never"
	if n := len(m.at); n > 0 {
		last = time.Since(m.at[n-1]).Round(time.Millisecond).String() + " ago"
	}
	return fmt.Sprintf("%d received, missing %v, last receipt %s, reader ended: %v",
		len(m.keys), miss, last, m.readErr)
}

func (m *member) has(k int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.keys, k)
}

// between returns the keys received in [from, to].
func (m *member) between(from, to time.Time) map[int]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int]bool{}
	for i, at := range m.at {
		if !at.Before(from) && !at.After(to) {
			out[m.keys[i]] = true
		}
	}
	return out
}

// duplicates counts keys received more than once; ordered reports whether
// the first receipts came in key order (one shard: the log's order).
func (m *member) duplicates() (dups int, ordered bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[int]bool{}
	last := 0
	ordered = true
	for _, k := range m.keys {
		if seen[k] {
			dups++
			continue
		}
		seen[k] = true
		if k < last {
			ordered = false
		}
		last = k
	}
	return dups, ordered
}

// longestGap is the longest time between two receipts in [from, to].
func (m *member) longestGap(from, to time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var gap time.Duration
	var prev time.Time
	for _, at := range m.at {
		if at.Before(from) || at.After(to) {
			continue
		}
		if !prev.IsZero() {
			gap = max(gap, at.Sub(prev))
		}
		prev = at
	}
	return gap
}

// TestClusterStreamFailoverSQLite: three nodes in one process have one
// sqlite stream on one file, published to a group with a member on every
// node, while rows are inserted every 5 ms. Exactly one node runs the
// stream; @streams on any node names it. A graceful shutdown of the
// leader hands the stream over with no duplicate; a leader cut off (its
// NATS gone, as after a crash) is replaced after its lease expired; every
// row reaches the members of the live nodes at least once, in order. A
// runner started behind the leader's back (a stale leader) has its trim
// refused by the epoch check and stops.
//
// The members' outbound queues are the default 256 frames: a takeover
// publishes the rows inserted since the crash, a lease and more of them
// (hundreds), at once, and the group target paces that burst (hub.Pacer),
// so no member skips a row. Before pacing, a member on a node the burst
// reached through NATS missed 20 rows in a row under load and its node had
// skipped 20 deliveries (wsgate_group_deliveries_skipped_total; "has not
// received row 606"), and the test ran with queues of 65536 frames.
//
// A lease lost under load (an unplanned handover) is allowed for: a
// watcher records every term, and the checks that hold for planned
// handovers only (one node delivered; no duplicate in the graceful
// handover) then check what holds for any (the nodes that ran delivered;
// every row, in order).
func TestClusterStreamFailoverSQLite(t *testing.T) {
	// Not parallel: it runs alone, before the others. Its takeover's burst
	// is paced, and a member that does not take rows in within PaceWait is
	// excused and skips them by design; beside 8 other tests
	// (-test.parallel=8) n2's member skipped 22 ("has not received row
	// 775"), as the test did under load before pacing. Run alone it costs
	// about 26 s of the package's wall time.
	began := time.Now()
	phase := func(name string) { t.Logf("%v: %s", time.Since(began).Round(10*time.Millisecond), name) }
	// A lease of 6 s: the leader stops when it could not renew for 4.2 s
	// (selfFenceMargin). With 3 s (2.1 s) a loaded machine under -race
	// lost the lease now and then; the watcher below tells such an
	// unplanned handover, which the checks then allow for.
	// WSGATE_TEST_STREAM_LEASE measures another lease.
	lease := 6
	if v, err := strconv.Atoi(os.Getenv("WSGATE_TEST_STREAM_LEASE")); err == nil {
		lease = v
	}
	db, conn := itemsDB(t)
	cfgs := embeddedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].StreamLeaseSeconds = lease
	}
	srvs := startServersWith(t, cfgs, func(c *server.Config) {
		c.Streams = []streams.Config{{
			Name:   "items",
			Source: streams.SourceConfig{Type: "sqlite", Path: db, Tables: []string{"items"}},
			Target: streams.TargetConfig{Group: "g"},
		}}
	})
	phase("3 nodes up")
	members := joinMembers(t, srvs, "g")

	// Rows go in every 5 ms until the end.
	var inserted atomic.Int64
	stopWriting := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for k := 1; ; k++ {
			select {
			case <-stopWriting:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := conn.Exec(`INSERT INTO items VALUES (?, 'x')`, k); err != nil {
				t.Errorf("insert %d: %v", k, err)
				return
			}
			inserted.Store(int64(k))
		}
	}()
	defer func() {
		select {
		case <-stopWriting:
		default:
			close(stopWriting)
		}
		<-writerDone
	}()
	delivered := func(s *server.Server) int64 { return s.StreamStatus()["items"].Source.Delivered }
	// allReach waits until every row inserted so far reached the members of
	// the nodes in live, but the excused ones.
	var excused map[int]bool
	allReach := func(live []int) {
		t.Helper()
		upTo := int(inserted.Load())
		cond := func() error {
			for _, i := range live {
				if k := members[i].missing(upTo, excused); k != 0 {
					return fmt.Errorf("the member on n%d has not received row %d (of %d)", i+1, k, upTo)
				}
			}
			return nil
		}
		deadline := time.Now().Add(20 * time.Second)
		for cond() != nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if err := cond(); err != nil {
			// Say what each node saw: a row its member's queue skipped
			// shows in wsgate_group_deliveries_skipped_total.
			for i, s := range srvs {
				st := s.StreamStatus()["items"]
				_, body := httpGet(t, "http://"+s.AdminAddr()+"/metrics")
				t.Logf("n%d: member %s; stream %s delivered %d restarts %d err %q; %s", i+1,
					members[i].report(upTo, excused), st.State, st.Source.Delivered, st.Restarts, st.Error,
					metricLines(body, "wsgate_queue_full", "wsgate_group_deliveries_skipped"))
			}
			t.Fatalf("after 20s: %v", err)
		}
	}
	leaderOf := func(live []int) int {
		t.Helper()
		leader := -1
		testenv.Eventually(t, 20*time.Second, func() error {
			var running []int
			for _, i := range live {
				if st := srvs[i].StreamStatus()["items"]; st.State == streams.StateRunning {
					running = append(running, i)
				}
			}
			if len(running) != 1 {
				return fmt.Errorf("nodes running the stream: %v", running)
			}
			leader = running[0]
			return nil
		})
		return leader
	}

	terms := watchTerms(t, srvs)

	// One runner: its Delivered grows, the others' stay 0.
	live := []int{0, 1, 2}
	l1 := leaderOf(live)
	allReach(live)
	// allReach passes with no row inserted yet (a starved writer: seen as
	// "n2 delivered 0; the leader is n2"), and a member may have a row
	// before its runner counts it delivered: wait for the leader's count.
	testenv.Eventually(t, 20*time.Second, func() error {
		if d := delivered(srvs[l1]); d == 0 {
			return fmt.Errorf("the leader n%d delivered nothing yet (%d rows inserted)", l1+1, inserted.Load())
		}
		return nil
	})
	if ran := terms.nodes(); len(ran) > 1 {
		// A term ended unplanned (the lease lost under load) and another
		// began: the runners so far may have delivered, no other node.
		t.Logf("unplanned handover before the checks: terms %s", terms)
		l1 = leaderOf(live)
		for i, s := range srvs {
			if d := delivered(s); d > 0 && !ran[i] {
				t.Fatalf("n%d delivered %d and never ran the stream (terms %s)", i+1, d, terms)
			}
		}
	} else {
		for i, s := range srvs {
			if d := delivered(s); (i == l1) != (d > 0) {
				t.Fatalf("n%d delivered %d; the leader is n%d", i+1, d, l1+1)
			}
		}
	}
	// Followers are ready (their stream is stopped on purpose), and the
	// metric names the leader.
	for i, s := range srvs {
		base := "http://" + s.AdminAddr()
		if code, body := httpGet(t, base+"/readyz"); code != 200 {
			t.Fatalf("n%d /readyz: %d %s", i+1, code, body)
		}
		want := `wsgate_stream_leader{stream="items"} 0`
		if i == l1 {
			want = `wsgate_stream_leader{stream="items"} 1`
		}
		if _, body := httpGet(t, base+"/metrics"); !strings.Contains(body, want) {
			t.Fatalf("n%d /metrics: want %s in\n%s", i+1, want, grepLines(body, "wsgate_stream_"))
		}
	}
	// @streams asks every node; under load the leader's answer can miss
	// the request's time (then the stream shows without a leader), so
	// the follower is asked until it names the leader.
	follower := srvs[(l1+1)%3]
	testenv.Eventually(t, 20*time.Second, func() error {
		resp, body := signedGet(t, follower, "/@streams")
		var sj server.StreamsJSON
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &sj) != nil || len(sj.Streams) != 1 {
			return fmt.Errorf("@streams from a follower: %d %s", resp.StatusCode, body)
		}
		if got := sj.Streams[0]; got.Leader == nil || got.Leader.Name != cfgs[l1].Node.Name || got.Delivered == 0 || got.SourceID == "" {
			return fmt.Errorf("@streams from a follower: %s, want the leader n%d with its figures", body, l1+1)
		}
		return nil
	})

	phase("one runner")
	// Graceful handover (rebalancing): the leader's config drops the
	// stream; it stops, trims what it delivered and deletes its lease.
	dupsBefore := map[int]int{}
	for _, i := range live {
		dupsBefore[i], _ = members[i].duplicates()
	}
	handover := time.Now()
	termsBefore := terms.count()
	cfg := srvs[l1].Config()
	cfg.Streams = nil
	if _, err := srvs[l1].Reload(cfg); err != nil {
		t.Fatal(err)
	}
	candidates := slices.DeleteFunc(slices.Clone(live), func(i int) bool { return i == l1 })
	l2 := leaderOf(candidates)
	tookOver := time.Now()
	allReach(live)
	// A graceful handover delivers no row twice; a term that ended
	// unplanned meanwhile may (at least once), and then only the order
	// and allReach's no loss are checked.
	testenv.Eventually(t, 10*time.Second, func() error {
		if terms.count() == termsBefore {
			return fmt.Errorf("the watcher has not seen n%d's term yet: %s", l2+1, terms)
		}
		return nil
	})
	strict := terms.count() == termsBefore+1
	if !strict {
		t.Logf("unplanned handover during the graceful one: terms %s; duplicates allowed", terms)
	}
	for _, i := range live {
		if d, ordered := members[i].duplicates(); (strict && d != dupsBefore[i]) || !ordered {
			t.Fatalf("member on n%d after the graceful handover: %d duplicates (%d before), in order %v; terms %s", i+1, d, dupsBefore[i], ordered, terms)
		}
	}

	phase("graceful handover")
	// Crash: the new leader loses NATS at once, nothing released.
	// Two of the three JetStream servers stay: the lease bucket keeps
	// its quorum.
	live = slices.DeleteFunc(live, func(i int) bool { return i == l2 })
	l3 := slices.DeleteFunc(slices.Clone(candidates), func(i int) bool { return i == l2 })[0]
	before := delivered(srvs[l3])
	crashed := time.Now()
	cluster.Crash(srvs[l2].Cluster())
	var failover time.Duration
	testenv.Eventually(t, 20*time.Second, func() error {
		if delivered(srvs[l3]) == before {
			return errors.New("the last node has not taken over yet")
		}
		failover = time.Since(crashed)
		return nil
	})
	// The one window where at least once ends (docs/cluster.md): a batch
	// the leader handed to its own embedded NATS server (the flush
	// returned) just before that server died with it may not have been
	// routed on. Such rows reached the leader's own member (it delivers
	// locally after NATS took the message) and may miss the others'.
	excused = members[l2].between(crashed.Add(-time.Second), crashed.Add(time.Second))
	allReach(live)
	lost := 0
	for k := range excused {
		if !members[l3].has(k) {
			lost++
		}
	}
	dups, ordered := members[l3].duplicates()
	if dups > 1000 || !ordered {
		t.Fatalf("member on n%d after the crash: %d duplicates, in order %v", l3+1, dups, ordered)
	}
	t.Logf("crash of n%d: n%d delivers %v later (streamLeaseSeconds %d); %d rows delivered twice; %d of the %d rows the crashed leader published in the second before the crash missed n%d's member",
		l2+1, l3+1, failover.Round(time.Millisecond), lease, dups, lost, len(excused), l3+1)
	if st := srvs[l2].StreamStatus()["items"]; st.State == streams.StateRunning {
		t.Fatalf("the cut-off leader n%d still runs the stream: %+v", l2+1, st)
	}

	// By now (a lease later) the rows around the handover are all in.
	gap := members[l1].longestGap(handover.Add(-time.Second), tookOver.Add(time.Second))
	t.Logf("graceful handover n%d → n%d: longest gap between rows at a member %v (rows every ~13 ms)", l1+1, l2+1, gap.Round(time.Millisecond))
	phase("crash")
	// A stale runner: started behind the leader's back (publishing through
	// a live node as a leader would), it takes the epoch; the leader's
	// next trim is refused and it starts again, taking the epoch back (or
	// the leader started a new term meanwhile); then the stale runner's
	// trim is refused and it stops. Rows are delivered twice meanwhile,
	// none is lost.
	stale, err := sqlite.New(streams.SourceConfig{Path: db, Tables: []string{"items"}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	staleDone := make(chan error, 1)
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	target := streams.NewGroupTarget(streams.TargetConfig{Group: "g"}, hubPublisher{srvs[l1].Hub()})
	go func() { staleDone <- stale.Run(sctx, target) }()
	select {
	case err := <-staleDone:
		if !errors.Is(err, sqlite.ErrFenced) {
			t.Fatalf("the stale runner ended with %v, want ErrFenced", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stale runner was not fenced")
	}
	phase("stale runner fenced")
	close(stopWriting)
	<-writerDone
	allReach(live)
	phase(fmt.Sprintf("all %d rows reached", inserted.Load()))
}

// terms records the terms of a stream's runners as a test sees them:
// each time a node's stream leaves StateStopped (Running or Retrying: a
// restart within a term stays in it), polled every 10 ms. A term ends
// with the lease (Lease's run returns), so an unplanned handover (a
// lease lost) shows as a term the test did not cause.
type terms struct {
	mu  sync.Mutex
	log []string // "n2@1.23s"
	ran map[int]bool
}

// watchTerms watches the stream "items" of srvs until the test ends.
func watchTerms(t *testing.T, srvs []*server.Server) *terms {
	w := &terms{ran: map[int]bool{}}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	began := time.Now()
	go func() {
		defer close(done)
		in := make([]bool, len(srvs))
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, s := range srvs {
				st, ok := s.StreamStatus()["items"]
				now := ok && st.State != streams.StateStopped
				if now && !in[i] {
					w.mu.Lock()
					w.log = append(w.log, fmt.Sprintf("n%d@%v", i+1, time.Since(began).Round(10*time.Millisecond)))
					w.ran[i] = true
					w.mu.Unlock()
				}
				in[i] = now
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// count is the number of terms so far.
func (w *terms) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

// nodes are the nodes that ran a term so far.
func (w *terms) nodes() map[int]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.ran)
}

func (w *terms) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprint(w.log)
}

// joinMembers connects a member to each of srvs, joins it to group and
// starts its reader.
func joinMembers(t *testing.T, srvs []*server.Server, group string) []*member {
	t.Helper()
	members := make([]*member, len(srvs))
	for i, s := range srvs {
		ws, id := dial(t, s)
		if err := s.Hub().Join(context.Background(), group, id); err != nil {
			t.Fatal(err)
		}
		members[i] = &member{}
		go members[i].read(ws)
	}
	return members
}

// itemsDB makes a sqlite file with the table items(k, v) and returns its
// path and a connection for the test's writes (closed at the end), which
// commit without an fsync each (synchronous NORMAL).
func itemsDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "app.db")
	conn, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Exec(`CREATE TABLE items(k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	return db, conn
}

// metricLines is the lines of a /metrics body that contain one of words,
// on one line.
func metricLines(body string, words ...string) string {
	var out []string
	for l := range strings.SplitSeq(body, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) && !strings.HasPrefix(l, "#") {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "; ")
}

// hubPublisher publishes a stream's records through a node's hub, paced as
// a node's own runner's are (server's publisher: half the default outbound
// queue per step, hub.Pacer). Unpaced, the stale runner's backlog went out
// as one burst that filled the members' queues (256 frames), and the live
// runner's rows in it were skipped: n2 skipped 45 deliveries and its
// member never got rows 887-891.
type hubPublisher struct{ h hub.Hub }

var _ streams.PacingPublisher = hubPublisher{}

func (p hubPublisher) PaceEvery() (records, bytes int) { return 128, 1<<19 - 10*128 }

func (p hubPublisher) Pace(ctx context.Context, group string) {
	if pc, ok := p.h.(hub.Pacer); ok {
		pc.Pace(ctx, group)
	}
}

func (p hubPublisher) Publish(ctx context.Context, group string, data []byte) error {
	_, err := p.h.Publish(ctx, group, hub.NewMessage(data))
	return err
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
