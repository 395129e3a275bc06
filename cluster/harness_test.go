package cluster_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/ports"
	"github.com/wsgate/wsgate/internal/testenv"
)

// freePorts reserves n loopback ports (listen, note, close) for NATS routes
// and listeners that must be named before their servers start. They are
// drawn at random from below the kernel's ephemeral range
// (ip_local_port_range): a port taken from that range with port 0 and let
// go could be handed out again before the server binds it, to a port-0
// listener or as the source port of any process's outgoing connection (a
// start then failed with "address already in use" and the cluster never
// formed: the registry did not answer within startupTimeoutSeconds, about
// one start in a few hundred with the whole suite beside it). Below that
// range another test process may still draw the same port and bind it
// first: startHubs and startServers start again on other ports when a
// node's start failed for that (rebind), having ended the other nodes'
// starts at once (startTogether). Listeners that can take port 0
// do (an embedded server's client listener; its route listener in
// proxiedConfigs, where the proxies route to the port it took).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	got, release, err := ports.Reserve(n, func(int) string { return "127.0.0.1" })
	if err != nil {
		t.Fatal(err)
	}
	release()
	return got
}

// portTaken reports whether err is a start that failed because a port
// was taken before the server bound it.
func portTaken(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// rebind gives cfgs' embedded servers new route ports (those not on port
// 0), and their routes the new ports, when one of errs is a port taken
// (portTaken); it reports whether it did: the caller closes the nodes
// that started and starts them all again.
func rebind(t testing.TB, cfgs []cluster.Config, errs []error) bool {
	t.Helper()
	if !slices.ContainsFunc(errs, portTaken) {
		return false
	}
	var fixed []*cluster.EmbeddedConfig
	for _, c := range cfgs {
		if e := c.NATS.Embedded; e != nil && !strings.HasSuffix(e.ClusterListen, ":0") {
			fixed = append(fixed, e)
		}
	}
	ports := freePorts(t, len(fixed))
	moved := map[string]string{}
	for k, e := range fixed {
		host, _, _ := net.SplitHostPort(e.ClusterListen)
		next := net.JoinHostPort(host, fmt.Sprint(ports[k]))
		moved["//"+e.ClusterListen], e.ClusterListen = "//"+next, next
	}
	for _, c := range cfgs {
		if e := c.NATS.Embedded; e != nil {
			for i, r := range e.Routes {
				for from, to := range moved {
					if strings.HasSuffix(r, from) {
						e.Routes[i] = strings.TrimSuffix(r, from) + to
					}
				}
			}
		}
	}
	t.Logf("a start found its port taken (%v); starting again on other ports", errs[slices.IndexFunc(errs, portTaken)])
	return true
}

// listening holds the addresses each embedded server of this process took
// (client, route), by cluster and node name, as SetEmbeddedHook reports
// them.
var listening sync.Map

// queryListening holds each node's advertised direct query address, by
// cluster and node name; queryVia, by cluster name, the address a node
// (by node name) dials for another's (proxiedConfigs: a proxy of its
// network). Nodes of other clusters dial the address advertised.
var queryListening, queryVia sync.Map

// deafTo holds, by cluster name, a function telling whether the node named
// node drops the heartbeats, the answers to its pings or the start-up
// pings (kind) of the node named from; registryDown the names
// of the clusters whose nodes' commits of another's gone fail, as with a
// registry electing a leader (SetJudgeHooks).
var deafTo, registryDown sync.Map

// aborts holds, by cluster name, the channel startTogether closes to end
// the starts of a cluster's other nodes once one found its port taken
// (SetStartAbort).
var aborts sync.Map

func init() {
	cluster.SetStartAbort(func(c *cluster.Config) <-chan struct{} {
		if v, ok := aborts.Load(c.Name); ok {
			return v.(chan struct{})
		}
		return nil
	})
	cluster.SetEmbeddedHook(func(c *cluster.Config, client, route string) {
		listening.Store(c.Name+"/"+c.Node.Name, [2]string{client, route})
	})
	cluster.SetJudgeHooks(func(c *cluster.Config, from string, kind cluster.Heard) bool {
		f, ok := deafTo.Load(c.Name)
		return !ok || !f.(func(node, from string, kind cluster.Heard) bool)(c.Node.Name, from, kind)
	}, func(c *cluster.Config) error {
		if _, ok := registryDown.Load(c.Name); ok {
			return errRegistryDown
		}
		return nil
	})
	cluster.SetDirectHooks(func(c *cluster.Config, addr string) {
		queryListening.Store(c.Name+"/"+c.Node.Name, addr)
	}, func(c *cluster.Config, addr string) string {
		if f, ok := queryVia.Load(c.Name); ok {
			return f.(func(node, addr string) string)(c.Node.Name, addr)
		}
		return addr
	})
}

// queryAddr is c's advertised direct query address, "" before it listened.
func queryAddr(c *cluster.Config) string {
	if v, ok := queryListening.Load(c.Name + "/" + c.Node.Name); ok {
		return v.(string)
	}
	return ""
}

// routeAddr is the address c's embedded server takes routes on, ""
// before it started.
func routeAddr(c *cluster.Config) string {
	if v, ok := listening.Load(c.Name + "/" + c.Node.Name); ok {
		return v.([2]string)[1]
	}
	return ""
}

// embeddedConfigs are n node configs of one cluster with embedded NATS on
// loopback, JetStream on all (one alone, with no routes, when n is 1).
func embeddedConfigs(t testing.TB, n int) []cluster.Config {
	// The client listeners take port 0; the route ports must be named in
	// every node's routes before the servers start (freePorts). They are
	// drawn from below the ephemeral range, so a port-0 listener (a
	// client listener among them) is never given one: once, with the
	// route ports drawn from that range and let go, a client listener
	// was given its own server's route port ("Error listening on router
	// port: bind: address already in use"), the other nodes' routes
	// reached its client port, and the cluster never formed
	// (TestClusterHostLoss, TestClusterLeaveAfterRenewal,
	// TestClusterShutdownDrainsGroups, about 1 start in 40 under -race).
	ports := freePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	name := clusterName()
	out := make([]cluster.Config, n)
	for i := range n {
		c := cluster.Config{
			Name: name,
			Node: cluster.NodeConfig{Name: fmt.Sprintf("n%d", i+1)},
			NATS: cluster.NATSConfig{Embedded: &cluster.EmbeddedConfig{
				Listen:        "127.0.0.1:0",
				ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[i]),
				Routes:        routes,
				StoreDir:      t.TempDir(),
			}},
			// Generous on a loaded 2-core machine; attempts and grace
			// (what the 1 s promise rests on) keep their defaults.
			RequestTimeoutMillis: 5000,
		}
		if n == 1 {
			// One server: no routes (a route to itself would wait for a
			// JetStream cluster that never forms).
			c.NATS.Embedded.ClusterListen, c.NATS.Embedded.Routes = "", nil
		}
		c.SetDefaults()
		c.SettleSeconds = 0 // a test's nodes are all up at once
		out[i] = c
	}
	return out
}

// clusterName is a new name for one test's cluster: its NATS cluster
// name, subjects and buckets. Test processes run side by side on one
// machine (other suites, other checkouts) and pick their ports from the
// same range: freePorts lets a port go before the server binds it, so
// another process may bind it first. With one name for every test
// cluster ("test", and nodes n1..n3 everywhere) that process's servers
// then routed into this one's cluster (a route to the port it won), and
// their heartbeats counted as this cluster's nodes of the same names:
// TestClusterHostLoss's cut-off C heard a majority through them, took
// the live A for gone and answered 410 for A's client ("C answered 410
// for a live client of A"), reproduced with three copies of the test at
// once (one copy's n1 failed to bind its route port: "address already in
// use"; C logged "Remote server has a duplicate name" throughout). NATS
// refuses a route from a server of another cluster name, and the subjects
// differ too.
func clusterName() string { return fmt.Sprintf("t%08x", rand.Uint32()) }

// patient makes cfgs' nodes wait out a starved process (all nodes of a
// test share one, on 2 cores shared with other suites under -race): a
// call's budget of 20 s, and 30 s of silence before a node is taken for
// gone. A test that asserts exact listings needs both: at load average
// 30 a process was seen not to run its timers for 3.4 s, so its
// heartbeats stopped for nodeTimeoutMillis (3 s), another node declared
// it gone and left it out of a page (a listing leaves out a node found
// gone, by design), and calls ran out of a 5 s budget.
func patient(cfgs []cluster.Config) []cluster.Config {
	for i := range cfgs {
		cfgs[i].RequestTimeoutMillis = 20_000
		cfgs[i].NodeTimeoutMillis = 30_000
		cfgs[i].IsolationSeconds = 40
		cfgs[i].LeaseSeconds = max(cfgs[i].LeaseSeconds, 60)
	}
	return cfgs
}

// startHubs starts the nodes concurrently (a JetStream cluster's first
// server alone does not get ready) and waits until each sees all. A start
// that found its port taken starts them all again on other ports (rebind:
// cfgs' route ports and routes change).
func startHubs(t testing.TB, cfgs []cluster.Config) []*cluster.Hub {
	t.Helper()
	var hubs []*cluster.Hub
	var errs []error
	for attempt := 0; ; attempt++ {
		hubs, errs = make([]*cluster.Hub, len(cfgs)), make([]error, len(cfgs))
		for _, c := range cfgs {
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		}
		startTogether(cfgs, func(i int) error {
			var err error
			hubs[i], err = cluster.Start(cfgs[i], cluster.Options{Memory: hub.NewMemory(hub.Limits{}), Logger: testLogger()})
			return err
		}, errs)
		if attempt == 3 || !rebind(t, cfgs, errs) {
			break
		}
		closeHubs(hubs)
	}
	t.Cleanup(func() { closeHubs(hubs) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	for _, h := range hubs {
		testenv.Eventually(t, 20*time.Second, func() error {
			nodes, _ := h.Nodes(context.Background())
			if len(nodes) != len(hubs) || slices.ContainsFunc(nodes, func(n hub.Node) bool { return n.State != "up" }) {
				return fmt.Errorf("node %02x sees %+v", h.Self(), nodes)
			}
			return nil
		})
	}
	return hubs
}

// startTogether runs start(i) for each of cfgs' nodes concurrently and
// puts its error in errs[i]. When one fails because its port was taken
// (portTaken), the others' starts are ended at once (SetStartAbort): they
// would wait their startup timeout (a minute) for the registry that node
// was to be part of before the caller could start them all again.
func startTogether(cfgs []cluster.Config, start func(i int) error, errs []error) {
	abort := make(chan struct{})
	var once sync.Once
	for _, c := range cfgs {
		aborts.Store(c.Name, abort)
	}
	defer func() {
		for _, c := range cfgs {
			aborts.CompareAndDelete(c.Name, abort)
		}
	}()
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Go(func() {
			errs[i] = start(i)
			if portTaken(errs[i]) {
				once.Do(func() { close(abort) })
			}
		})
	}
	wg.Wait()
}

// closeHubs closes the hubs that started, together: the last node alone
// could not release its registry entry (no quorum) and would wait
// requestTimeoutMillis for it.
func closeHubs(hubs []*cluster.Hub) {
	var wg sync.WaitGroup
	for _, h := range hubs {
		if h != nil {
			wg.Go(func() { _ = h.Close() })
		}
	}
	wg.Wait()
}

// TestConformance: the hubtest suite on 3 embedded nodes. Under a whole
// -race run at load average about 30 some of its calls failed with "did
// not answer within 5000 ms". None of 68 runs at load 9-17 failed (42
// under -race, 14 of them at nice 15 or 19 behind 4 busy loops at nice
// 10; 26 without, 11 of them stopped with SIGSTOP for 3.5 s every 2 s).
// The whole -race run at nice 19 behind those loops failed it: 4 calls
// (a send, an info, two joins) each ran out of 5 s, and a send to an
// id of node 00, which no node holds (410 once the registry's read says
// so within an attempt), too, while this process's timers were never
// more than 0.52 s late (watchStalls); the listings, whose attempts share
// one reply (an answer later than its attempt still ends the call),
// passed. So not a process stopped for the budget: no attempt (250 ms)
// was answered within itself, and an answer later than its attempt is
// dropped. Its budgets stay the package's defaults, and a failure says
// how late this process ran its timers.
func TestConformance(t *testing.T) {
	parallel(t)
	watchStalls(t)
	hubs := startHubs(t, embeddedConfigs(t, 3))
	var nodes []hubtest.Node
	for _, h := range hubs {
		nodes = append(nodes, hubtest.Node{Hub: h, Byte: h.Self()})
	}
	hubtest.Run(t, nodes)
}

// watchStalls notes, until t ends, when a 10 ms ticker of this process
// came 250 ms or more late (the process starved: its nodes' heartbeats,
// attempts and answers were held up as long), and logs those stalls if t
// failed, with the time each ended, to tell a starved process from a call
// that went unanswered while the process ran.
func watchStalls(t *testing.T) {
	t.Helper()
	var (
		mu     sync.Mutex
		stalls []string
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				if late := now.Sub(last) - 10*time.Millisecond; late >= 250*time.Millisecond {
					mu.Lock()
					stalls = append(stalls, fmt.Sprintf("%v late, at %s", late.Round(time.Millisecond), now.Format("15:04:05.000")))
					mu.Unlock()
				}
				last = now
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		if t.Failed() {
			t.Logf("this process's timers ran late %d times (250 ms or more): %v; the test ended at %s",
				len(stalls), stalls, time.Now().Format("15:04:05.000"))
		}
	})
}

// testLogger discards logs unless WSGATE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("WSGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// clusterParallel is how many of this package's tests that mostly wait
// run at once (parallel), unless go test's -parallel names another number;
// beside them runs one test that keeps the CPU busy (heavy). Every test here
// runs in parallel with the others (it calls parallel or heavy first): most
// of a test's time is spent waiting on timers (leases, grace periods,
// heartbeats, a NATS server's restart), not on CPU (under -race, one test
// after another, the package used about 60 s of CPU in 560 s), so more
// tests than go test's default of GOMAXPROCS (2 here) fit beside each other.
// docs/cluster.md, "How it is tested", says what a test must do to run
// beside the others.
const clusterParallel = 4

// slots bounds the tests that mostly wait running at once; heavyLane lets
// one heavy test run at a time, beside them.
var (
	slots     chan struct{}
	heavyLane = make(chan struct{}, 1)
)

// parallel runs t beside the package's other tests (t.Parallel) once one
// of slots is free, and frees it when t and its cleanups are done.
func parallel(t *testing.T) {
	t.Helper()
	t.Parallel()
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
}

// heavy is parallel for a test that keeps the CPU busy for much of its
// run (churn or floods of calls, thousands of members, a browser, a build
// and three processes): such tests run one at a time, in a lane of their
// own beside the slots, so two of them do not starve the timers
// (heartbeats, nodeTimeoutMillis) of the tests beside them, and the chain
// of them, a good part of the package's time, starts at once instead of
// waiting for slots.
func heavy(t *testing.T) {
	t.Helper()
	t.Parallel()
	heavyLane <- struct{}{}
	t.Cleanup(func() { <-heavyLane })
}

// TestMain sizes slots: clusterParallel, or -parallel when given. go
// test's own bound, which -parallel sets too, is lifted, so that a test
// waiting for a slot or its lane does not hold one of its places
// meanwhile. (The few package cluster tests, which take neither, are
// quick.)
func TestMain(m *testing.M) {
	flag.Parse()
	n := clusterParallel
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			n, _ = strconv.Atoi(f.Value.String())
		}
	})
	slots = make(chan struct{}, max(n, 1))
	if err := flag.Set("test.parallel", strconv.Itoa(max(n, 1000))); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
