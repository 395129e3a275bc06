package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterNodeKill410 runs three wsgate processes from the built binary,
// puts clients on C, has backends on A and B post to each of C's ids in a
// loop, and SIGKILLs C: for every id, A and B answer 410 (the first 410 is
// measured against the kill; the promise is 1 s), and never 200 after an
// id's first 410.
func TestClusterNodeKill410(t *testing.T) {
	heavy(t)
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "wsgate")
	build := exec.Command("go", "build", "-o", bin, "../cmd/wsgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	procs, endpoints, cView := launchNodes(t, bin, dir)
	var cByte string
	for _, n := range cView {
		if n.Name == "n3" {
			cByte = n.ID
		}
	}

	// Ten clients on C; their ids carry C's byte.
	var ids []string
	for range 10 {
		ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(endpoints[2], "http:", "ws:", 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		ids = ids[:0]
		resp, body, err := signedRequest(endpoints[0], "/@connections")
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("listing: %v %s", err, body)
		}
		var page struct {
			Connections []struct {
				ConnectionID string `json:"connectionId"`
			} `json:"connections"`
		}
		_ = json.Unmarshal([]byte(body), &page)
		for _, c := range page.Connections {
			if b, ok := hub.NodeOf(c.ConnectionID); ok && hub.NodeHex(b) == cByte {
				ids = append(ids, c.ConnectionID)
			}
		}
		if len(ids) != 10 {
			return fmt.Errorf("%d of C's connections listed", len(ids))
		}
		return nil
	})

	// Backends on A and B post to every id every 20 ms.
	type result struct {
		first410   time.Time
		okAfter410 bool
		ok         int
	}
	results := make([][]result, 2)
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for n := range 2 {
		results[n] = make([]result, len(ids))
		api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(endpoints[n]),
			Credentials:      credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
			RetryMaxAttempts: 1,
		})
		for k, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
					now := time.Now()
					mu.Lock()
					r := &results[n][k]
					switch {
					case err == nil && r.first410.IsZero():
						r.ok++
					case err == nil:
						r.okAfter410 = true
					case isGone(err) && r.first410.IsZero():
						r.first410 = now
					}
					mu.Unlock()
					time.Sleep(20 * time.Millisecond) // the backend's pace
				}
			}()
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for n := range results {
			for k := range results[n] {
				if results[n][k].ok == 0 {
					return fmt.Errorf("node %d has not delivered to %s yet", n, ids[k])
				}
			}
		}
		return nil
	})
	t0 := time.Now()
	if err := procs[2].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for n := range results {
			for k := range results[n] {
				if results[n][k].first410.IsZero() {
					return fmt.Errorf("node %d: no 410 yet for %s", n, ids[k])
				}
			}
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // let a few more posts run: none may succeed
	cancel()
	wg.Wait()
	var worst time.Duration
	for n := range results {
		for k, r := range results[n] {
			if r.okAfter410 {
				t.Errorf("node %d: a 200 for %s after its first 410", n, ids[k])
			}
			worst = max(worst, r.first410.Sub(t0))
		}
	}
	t.Logf("first 410 after SIGKILL: at most %v over %d ids on 2 nodes", worst, len(ids))
	if worst > time.Second { // past the promise: which path the observers took
		for i := range 2 {
			t.Logf("node n%d log (a first 410 took %v):\n%s", i+1, worst, procs[i].Stderr.(*testenv.Buffer).String())
		}
	}
	// The promise is 1 s; the bound here leaves room for a loaded CI machine
	// (the measured figure is logged above and recorded in docs/cluster.md).
	if worst > 3*time.Second {
		t.Errorf("first 410 took %v after the kill", worst)
	}
	// C's members left the listing on A.
	resp, body, err := signedRequest(endpoints[0], "/@connections")
	if err != nil || resp.StatusCode != 200 || strings.Contains(body, ids[0]) {
		t.Fatalf("listing on A after the kill: %v %d %s", err, resp.StatusCode, body)
	}
}

// launchNodes runs three wsgate processes of one cluster from bin and
// waits until each lists all three up; it returns them, their management
// endpoints and a listing of the nodes. The route and HTTP ports are
// drawn by freePorts, so another process may take one before its node
// binds it: that node exits ("address already in use") and all three are
// started again on other ports.
func launchNodes(t *testing.T, bin, dir string) ([]*exec.Cmd, []string, []hub.Node) {
	t.Helper()
	name := clusterName() // not another test process's cluster
	for attempt := 0; ; attempt++ {
		routes := freePorts(t, 3)
		https := freePorts(t, 3)
		var routeURLs []string
		for _, p := range routes {
			routeURLs = append(routeURLs, fmt.Sprintf("nats://127.0.0.1:%d", p))
		}
		procs := make([]*exec.Cmd, 3)
		exited := make([]chan struct{}, 3)
		endpoints := make([]string, 3)
		for i := range 3 {
			cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
credentials: [{ accessKeyId: AKID, secretAccessKey: secret }]
routes:
  "$default": { integration: { type: mock } }
tls: { mode: "off" }
log: { level: info }
cluster:
  name: %s
  node: { name: n%d }
  settleSeconds: 0
  requestTimeoutMillis: 5000
  nats:
    embedded:
      listen: "127.0.0.1:0"
      clusterListen: "127.0.0.1:%d"
      routes: [%s]
      storeDir: %q
`, https[i], name, i+1, routes[i], strings.Join(routeURLs, ", "), filepath.Join(dir, fmt.Sprint(attempt), fmt.Sprint(i), "nats"))
			path := filepath.Join(dir, fmt.Sprintf("n%d-%d.yaml", i+1, attempt))
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "serve", "--config", path)
			cmd.Stderr = &testenv.Buffer{}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			procs[i], exited[i] = cmd, make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited[i]) }()
			endpoints[i] = fmt.Sprintf("http://127.0.0.1:%d/dev", https[i])
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited[i]
				if t.Failed() {
					t.Logf("node n%d (start %d) log:\n%s", i+1, attempt+1, cmd.Stderr.(*testenv.Buffer).String())
				}
			})
		}
		// A node whose port was taken exits; the others wait for it until
		// their startup timeout, their HTTP listeners holding requests
		// unanswered meanwhile: each poll is given 2 s.
		var nodes []hub.Node
		taken := ""
		deadline := time.Now().Add(60 * time.Second)
	wait:
		for _, ep := range endpoints {
			for {
				for i, cmd := range procs {
					if strings.Contains(cmd.Stderr.(*testenv.Buffer).String(), "address already in use") {
						taken = fmt.Sprintf("node n%d", i+1)
						break wait
					}
				}
				type listing struct {
					nodes []hub.Node
					err   error
				}
				res := make(chan listing, 1)
				go func() {
					resp, body, err := signedRequest(ep, "/@cluster")
					switch {
					case err != nil || resp.StatusCode != 200:
						res <- listing{err: fmt.Errorf("@cluster: %v %s", err, body)}
					case strings.Count(body, `"state":"up"`) != 3:
						res <- listing{err: fmt.Errorf("@cluster: %s", body)}
					default:
						var v struct {
							Nodes []hub.Node `json:"nodes"`
						}
						err := json.Unmarshal([]byte(body), &v)
						res <- listing{v.Nodes, err}
					}
				}()
				var l listing
				select {
				case l = <-res:
				case <-time.After(2 * time.Second):
					l.err = fmt.Errorf("@cluster at %s did not answer within 2 s", ep)
				}
				if l.err == nil {
					nodes = l.nodes
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the cluster did not form within 60 s: %v", l.err)
				}
				time.Sleep(100 * time.Millisecond) // the poll's pace
			}
		}
		if taken == "" {
			return procs, endpoints, nodes
		}
		if attempt == 3 {
			t.Fatalf("%s found its port taken at each of %d starts", taken, attempt+1)
		}
		t.Logf("%s found its port taken; starting the nodes again on other ports", taken)
		for i, cmd := range procs {
			_ = cmd.Process.Kill()
			<-exited[i]
		}
	}
}
