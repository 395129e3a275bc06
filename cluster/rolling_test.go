package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// rollingCluster is the nodes of TestClusterRollingRestart as they come
// and go.
type rollingCluster struct {
	mu       sync.Mutex
	srvs     []*server.Server
	apis     []*client.Client
	down     []time.Time   // when the node's shutdown began; zero while up
	stops    [][]time.Time // every shutdown's beginning, per node
	sessions []*session
}

// end is when s stopped being a member: its node's first shutdown after
// its joins, or zero. rc.mu must be held.
func (rc *rollingCluster) end(s *session) time.Time {
	for _, d := range rc.stops[s.node] {
		if d.After(s.joined) {
			return d
		}
	}
	return time.Time{}
}

// session is one client connection: from its joins to its close.
type session struct {
	client, node int
	id           string
	joined       time.Time // both joins answered
	mu           sync.Mutex
	got          []int
}

func (s *session) numbers() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (rc *rollingCluster) node(i int) (*server.Server, *client.Client, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.srvs[i], rc.apis[i], rc.down[i].IsZero()
}

// connect opens a client on node i, learns its id (the whoami route
// answers $context.connectionId) and joins it to all and u:<c>.
func (rc *rollingCluster) connect(t *testing.T, c, i int) (*websocket.Conn, *session, error) {
	s, api, up := rc.node(i)
	if !up {
		return nil, nil, fmt.Errorf("node %d is down", i)
	}
	ws, _, err := websocket.DefaultDialer.Dial(s.WebSocketURLs()[0], nil)
	if err != nil {
		return nil, nil, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"whoami"}`)); err != nil {
		ws.Close()
		return nil, nil, err
	}
	_, id, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, nil, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	ctx := context.Background()
	for _, g := range []string{"all", fmt.Sprintf("u:%d", c)} {
		if err := api.Join(ctx, g, string(id)); err != nil {
			ws.Close()
			return nil, nil, fmt.Errorf("join %s on node %d: %w", g, i, err)
		}
	}
	return ws, &session{client: c, node: i, id: string(id), joined: time.Now()}, nil
}

// run keeps client c connected: to its home node first, after a close to
// the next node that is up, until ctx ends.
func (rc *rollingCluster) run(ctx context.Context, t *testing.T, c int, ready *sync.WaitGroup) {
	node := c % len(rc.srvs)
	first := true
	for ctx.Err() == nil {
		ws, sess, err := rc.connect(t, c, node)
		if err != nil {
			node = (node + 1) % len(rc.srvs)
			time.Sleep(20 * time.Millisecond) // the client's reconnect pace
			continue
		}
		rc.mu.Lock()
		rc.sessions = append(rc.sessions, sess)
		rc.mu.Unlock()
		if first {
			ready.Done()
			first = false
		}
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				break
			}
			n, err := strconv.Atoi(string(b))
			if err != nil {
				t.Errorf("client %d got %q", c, b)
				continue
			}
			sess.mu.Lock()
			sess.got = append(sess.got, n)
			sess.mu.Unlock()
		}
		stop()
		ws.Close()
		node = (node + 1) % len(rc.srvs)
	}
}

// published is one numbered publish: when it began and ended, and its answer.
type published struct {
	n          int
	start, end time.Time
	ok         bool
}

// TestClusterRollingRestart: 30 clients over 3 nodes, each in "all" and
// "u:<i>"; a numbered message to "all" every 50 ms through a node that is
// up; A, B and C restarted one after the other (graceful Shutdown, New
// with the same config, Start). A restarted node's clients reconnect to
// another node and join again. Every client connection, while its node is
// up, is listed in GET @groups/all at every poll and receives every
// message published while it was a member, with no gap and no duplicate;
// each restarted node gets its byte back.
func TestClusterRollingRestart(t *testing.T) {
	parallel(t)
	const clients = 30
	cfgs := embeddedConfigs(t, 3)
	srvs := startServers(t, cfgs)
	rc := &rollingCluster{srvs: srvs, down: make([]time.Time, len(srvs)), stops: make([][]time.Time, len(srvs))}
	for _, s := range srvs {
		rc.apis = append(rc.apis, groupClient(t, s))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var ready sync.WaitGroup
	ready.Add(clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc.run(ctx, t, c, &ready)
		}()
	}
	ready.Wait()

	// The publisher: through the node in pub, every 50 ms.
	var pubMu sync.Mutex
	pubNode := 2
	var log []published
	pubCtx, cancelPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	stopPub := func() { cancelPub(); <-pubDone } // log is the test's alone after
	defer stopPub()
	go func() {
		defer close(pubDone)
		for n := 1; pubCtx.Err() == nil; n++ {
			pubMu.Lock()
			i := pubNode
			pubMu.Unlock()
			_, api, _ := rc.node(i)
			p := published{n: n, start: time.Now()}
			_, err := api.Publish(pubCtx, "all", []byte(strconv.Itoa(n)))
			p.end, p.ok = time.Now(), err == nil
			if err != nil && pubCtx.Err() == nil {
				t.Logf("publish %d via node %d: %v", n, i, err)
			}
			pubMu.Lock()
			log = append(log, p)
			pubMu.Unlock()
			time.Sleep(50 * time.Millisecond) // the publisher's pace
		}
	}()

	// The lister: GET @groups/all through the publisher's node; every
	// session joined before the poll whose node stayed up through it is
	// in the answer.
	var pollErrs []string
	polls := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pubCtx.Err() == nil {
			pubMu.Lock()
			i := pubNode
			pubMu.Unlock()
			_, api, _ := rc.node(i)
			began := time.Now()
			rc.mu.Lock()
			expect := slices.Clone(rc.sessions)
			rc.mu.Unlock()
			members, err := api.AllMembers(pubCtx, "all")
			if pubCtx.Err() != nil {
				return
			}
			polls++
			if err != nil {
				// The publisher may have moved off node i just before it
				// went down for its restart: then the refusal is expected.
				if _, now, up := rc.node(i); !up || now != api {
					continue
				}
				pollErrs = append(pollErrs, fmt.Sprintf("listing via node %d: %v", i, err))
				continue
			}
			rc.mu.Lock()
			for _, s := range expect {
				end := rc.end(s)
				if s.joined.Before(began) && end.IsZero() && !slices.Contains(members, s.id) {
					pollErrs = append(pollErrs, fmt.Sprintf("client %d (%s on node %d) missing from a listing via node %d", s.client, s.id, s.node, i))
				}
			}
			rc.mu.Unlock()
			time.Sleep(200 * time.Millisecond) // the lister's pace
		}
	}()

	waitPublished := func(k int) {
		pubMu.Lock()
		from := len(log)
		pubMu.Unlock()
		testenv.Eventually(t, 30*time.Second, func() error {
			pubMu.Lock()
			defer pubMu.Unlock()
			if len(log) < from+k {
				return fmt.Errorf("%d publishes so far", len(log))
			}
			return nil
		})
	}
	waitPublished(10)
	for k := range srvs {
		pubMu.Lock()
		pubNode = (k + 1) % len(srvs)
		pubMu.Unlock()
		old, _, _ := rc.node(k)
		b := old.Cluster().Self()
		rc.mu.Lock()
		rc.down[k] = time.Now()
		rc.stops[k] = append(rc.stops[k], rc.down[k])
		rc.mu.Unlock()
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := old.Shutdown(sctx); err != nil {
			t.Fatalf("node %d shutdown: %v", k, err)
		}
		scancel()
		s, err := server.New(serverConfig(t, cfgs[k]), testLogger())
		if err != nil {
			t.Fatalf("node %d restart: %v", k, err)
		}
		s.Start() // startServers's cleanup shuts it down: srvs is rc.srvs
		if s.Cluster().Self() != b {
			t.Fatalf("node %d restarted with byte %d, had %d", k, s.Cluster().Self(), b)
		}
		rc.mu.Lock()
		rc.srvs[k], rc.apis[k], rc.down[k] = s, groupClient(t, s), time.Time{}
		rc.mu.Unlock()
		testenv.Eventually(t, 30*time.Second, func() error {
			for i := range srvs {
				srv, _, _ := rc.node(i)
				if n := srv.Cluster().LiveNodes(); n != len(srvs) {
					return fmt.Errorf("node %d sees %d nodes up", i, n)
				}
			}
			return nil
		})
		waitPublished(10)
	}
	waitPublished(5)
	stopPub()
	pubMu.Lock()
	last := log[len(log)-1]
	pubMu.Unlock()

	// Every session has every number published while it was a member:
	// from the first publish begun after its joins were answered, up to
	// the last one answered before its node's shutdown began (or the end).
	// A publish racing a join across nodes may miss the new member (NATS
	// carries the interest over the route meanwhile): the window starts
	// 200 ms after the join.
	testenv.Eventually(t, 10*time.Second, func() error {
		got := rc.sessionsGot()
		return rc.check(log, last, got, false)
	})
	if err := rc.check(log, last, rc.sessionsGot(), true); err != nil {
		t.Error(err)
	}
	rc.mu.Lock()
	t.Logf("%d publishes, %d sessions (%d clients), %d listings", len(log), len(rc.sessions), clients, polls)
	rc.mu.Unlock()
	for _, e := range pollErrs {
		t.Error(e)
	}
}

func (rc *rollingCluster) sessionsGot() map[*session][]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[*session][]int{}
	for _, s := range rc.sessions {
		out[s] = s.numbers()
	}
	return out
}

// check compares what each session got with what it must have got; final
// also reports duplicates (and is the last word).
func (rc *rollingCluster) check(log []published, last published, got map[*session][]int, final bool) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var errs []error
	for s, nums := range got {
		end := last.end
		if d := rc.end(s); !d.IsZero() {
			end = d
		}
		have := map[int]int{}
		for _, n := range nums {
			have[n]++
		}
		for _, p := range log {
			if p.ok && p.start.After(s.joined.Add(200*time.Millisecond)) && p.end.Before(end) && have[p.n] == 0 {
				errs = append(errs, fmt.Errorf("client %d (%s on node %d) missed message %d", s.client, s.id, s.node, p.n))
			}
		}
		for n, k := range have {
			if k > 1 && final {
				errs = append(errs, fmt.Errorf("client %d (%s on node %d) got message %d %d times", s.client, s.id, s.node, n, k))
			}
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}
