package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/gopool"
	"github.com/wsgate/wsgate/internal/ports"
)

// ClusterScenarios are the cluster scenarios (cluster.md §6.2), run with
// Options.Cluster: each run measures a single node and a cluster in turn
// (which goes first alternates from run to run) and reports both.
var ClusterScenarios = []string{"c-post", "c-fanout", "c-publish", "c-join", "c-page", "c-memory"}

// nodeIP is cluster node k's loopback address: 127.0.0.11, .12, … (each
// node its own address, so the clients' ephemeral ports do not collide).
func nodeIP(k int) string { return fmt.Sprintf("127.0.0.%d", 11+k) }

// newClusterEnv starts the backend, o.Cluster server processes forming one
// cluster (embedded NATS with JetStream on every node, routes on reserved
// ports) and the workers, once every node sees every other up. The
// cluster's name is this process's and run's own: the servers of two
// bench processes at once never take each other's routes (NATS refuses a
// route from a cluster of another name). A start that fails (a route port
// taken between its reservation and the server's bind, by another
// process) is tried again on other ports.
func (o *orch) newClusterEnv(extra func(cfg map[string]any, backend string)) (*env, error) {
	o.seq++
	e := &env{o: o}
	if err := e.startBackend(); err != nil {
		return nil, err
	}
	const tries = 3
	for try := 1; ; try++ {
		err := o.startCluster(e, try, extra)
		if err == nil {
			break
		}
		for _, s := range e.srvs {
			s.kill()
		}
		e.srvs, e.addrs, e.debugs = nil, nil, nil
		if try == tries {
			e.close()
			return nil, err
		}
		fmt.Fprintf(o.Log, "cluster start %d failed (%v); again on other ports\n", try, err)
	}
	e.srv, e.addr, e.debug = e.srvs[0], e.addrs[0], e.debugs[0]
	return e, o.startWorkers(e)
}

// newSplitEnv starts o.Cluster independent single nodes (no cluster
// configuration) on the cluster's addresses, and the workers: the floor of
// a cluster's node count on this machine's cores without anything of
// cluster mode (c-post's "split: " side).
func (o *orch) newSplitEnv() (*env, error) {
	o.seq++
	e := &env{o: o}
	if err := e.startBackend(); err != nil {
		return nil, err
	}
	for k := range o.Cluster {
		cfg := baseConfig(e.backURI)
		cfg["listen"] = nodeIP(k) + ":0"
		b, _ := json.MarshalIndent(cfg, "", "  ")
		path := filepath.Join(o.dir, fmt.Sprintf("wsgate-%d-split-n%d.yaml", o.seq, k+1))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			e.close()
			return nil, err
		}
		s, err := o.start("server", "-config", path)
		if err != nil {
			e.close()
			return nil, err
		}
		e.srvs = append(e.srvs, s)
	}
	for k, s := range e.srvs {
		var a announce
		if err := s.read(&a); err != nil {
			e.close()
			return nil, fmt.Errorf("split node %d: %w", k+1, err)
		}
		e.addrs = append(e.addrs, a.Addr)
		e.debugs = append(e.debugs, a.Debug)
	}
	e.srv, e.addr, e.debug = e.srvs[0], e.addrs[0], e.debugs[0]
	return e, o.startWorkers(e)
}

// startCluster starts e's servers (try: the attempt, for the files'
// names) and waits until they formed the cluster.
func (o *orch) startCluster(e *env, try int, extra func(cfg map[string]any, backend string)) error {
	n := o.Cluster
	routePorts, release, err := ports.Reserve(n, nodeIP)
	if err != nil {
		return err
	}
	var routes []string
	for k, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats://%s:%d", nodeIP(k), p))
	}
	var paths []string
	for k := range n {
		cfg := baseConfig(e.backURI)
		cfg["listen"] = nodeIP(k) + ":0"
		cfg["cluster"] = map[string]any{
			"name": fmt.Sprintf("bench-%d-%d-%d", os.Getpid(), o.seq, try),
			"node": map[string]any{"name": fmt.Sprintf("n%d", k+1)},
			// A forwarded call's budget: on this shared 2-core machine a
			// process can stall past the default second (a 500, counted
			// as a failed call); the bench measures cost, not timeouts.
			"requestTimeoutMillis": 5000,
			"nats": map[string]any{"embedded": map[string]any{
				"listen":        nodeIP(k) + ":0",
				"clusterListen": fmt.Sprintf("%s:%d", nodeIP(k), routePorts[k]),
				"routes":        routes,
				"storeDir":      filepath.Join(o.dir, fmt.Sprintf("nats-%d-%d-%d", o.seq, try, k)),
			}},
		}
		if n == 1 {
			// One node in cluster mode (C3 without three processes on
			// two cores): its embedded server alone, no routes.
			emb := cfg["cluster"].(map[string]any)["nats"].(map[string]any)["embedded"].(map[string]any)
			delete(emb, "clusterListen")
			delete(emb, "routes")
		}
		if extra != nil {
			extra(cfg, e.backURI)
		}
		b, _ := json.MarshalIndent(cfg, "", "  ")
		path := filepath.Join(o.dir, fmt.Sprintf("wsgate-%d-%d-n%d.yaml", o.seq, try, k+1))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			release()
			return err
		}
		paths = append(paths, path)
	}
	// The ports are held until now, the servers' start.
	release()
	for _, path := range paths {
		// Started together: a JetStream cluster's first server alone
		// does not get ready.
		s, err := o.start("server", "-config", path)
		if err != nil {
			return err
		}
		e.srvs = append(e.srvs, s)
	}
	for k, s := range e.srvs {
		var a announce
		if err := s.read(&a); err != nil {
			return fmt.Errorf("node %d: %w", k+1, err)
		}
		e.addrs = append(e.addrs, a.Addr)
		e.debugs = append(e.debugs, a.Debug)
	}
	return e.waitCluster(60 * time.Second)
}

// waitCluster polls every node's @cluster until it lists every node up.
func (e *env) waitCluster(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, addr := range e.addrs {
		for {
			b, err := signedDo(http.DefaultClient, http.MethodGet, "http://"+addr+"/"+stage+"/@cluster", nil)
			if err == nil && strings.Count(string(b), `"state":"up"`) == len(e.addrs) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cluster not formed within %v: %s at %s: %v %s", timeout, "@cluster", addr, err, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// loadAverage is the machine's 1-minute load average.
func loadAverage() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// phase is one side of a cluster scenario: it starts its env, measures
// and returns metrics named without a prefix.
type phase func(e *env) ([]Metric, error)

// versus runs the scenario on a single node and on a cluster (which goes
// first alternates with run), prefixing the metrics "single: " and
// "cluster: ", then adds the ratios: for each name in ratios,
// "cluster/single: name".
func (o *orch) versus(run int, extra func(map[string]any, string), single, clustered phase, ratios ...string) ([]Metric, error) {
	return o.versusSplit(run, extra, single, clustered, nil, ratios...)
}

// versusSplit is versus with a third side when split is not nil and the
// cluster has more than one node: as many independent single nodes
// (newSplitEnv), prefixed "split: ". The three sides rotate with run.
func (o *orch) versusSplit(run int, extra func(map[string]any, string), single, clustered, split phase, ratios ...string) ([]Metric, error) {
	ms := []Metric{{"load average (1 min) at start", "", loadAverage()}}
	type side struct {
		prefix string
		start  func() (*env, error)
		f      phase
	}
	sides := []side{
		{"single: ", func() (*env, error) { return o.newEnv(false, extra) }, single},
		{"cluster: ", func() (*env, error) { return o.newClusterEnv(extra) }, clustered},
	}
	if split != nil && o.Cluster > 1 {
		sides = append(sides, side{"split: ", o.newSplitEnv, split})
		k := run % len(sides)
		sides = append(sides[k:], sides[:k]...)
	} else if run%2 == 1 {
		slices.Reverse(sides)
	}
	got := map[string]map[string]float64{}
	for _, s := range sides {
		e, err := s.start()
		if err != nil {
			return ms, fmt.Errorf("%s%w", s.prefix, err)
		}
		m, err := s.f(e)
		e.close()
		got[s.prefix] = map[string]float64{}
		for _, x := range m {
			got[s.prefix][x.Name] = x.Value
			ms = append(ms, Metric{s.prefix + x.Name, x.Unit, x.Value})
		}
		if err != nil {
			return ms, fmt.Errorf("%s%w", s.prefix, err)
		}
	}
	for _, r := range ratios {
		c, ok1 := got["cluster: "][r]
		s, ok2 := got["single: "][r]
		if ok1 && ok2 && s != 0 {
			ms = append(ms, Metric{"cluster/single: " + r, "×", c / s})
		}
	}
	return ms, nil
}

// clusterPost: C1 (POST at 1,000/s, entry ≠ owner), C2 (saturation, entry
// ≠ owner) and C3 (saturation, entry = owner) against a single node's
// saturation and 1,000/s.
func (o *orch) clusterPost(run int) ([]Metric, error) {
	rate := 1000.0
	if o.Small {
		rate = 100
	}
	conns := o.size(400, 12)
	dial := command{Conc: 8, Whoami: true, Read: true}
	single := func(e *env) ([]Metric, error) {
		if _, _, _, err := e.dial(conns, dial); err != nil {
			return nil, err
		}
		ms := e.idleCPU()
		m, err := e.postPhase(run, 0, "", "saturation: ")
		ms = append(ms, m...)
		if err != nil {
			return ms, err
		}
		ms = withClientYardstick(ms, "saturation: ")
		m, err = e.postPhase(run, rate, "", "1000/s: ")
		return append(ms, m...), err
	}
	clustered := func(e *env) ([]Metric, error) {
		if _, _, _, err := e.dial(conns, dial); err != nil {
			return nil, err
		}
		ms := e.idleCPU()
		for _, p := range []struct {
			rate   float64
			entry  string
			prefix string
		}{
			{0, "other", "saturation: "},        // C2
			{0, "owner", "saturation, owner: "}, // C3
			{rate, "other", "1000/s: "},         // C1
		} {
			m, err := e.postPhase(run, p.rate, p.entry, p.prefix)
			ms = append(ms, m...)
			if err != nil {
				return ms, err
			}
			if p.rate == 0 {
				ms = withClientYardstick(ms, p.prefix)
			}
		}
		return ms, nil
	}
	// The split side: the cluster's node count as independent single
	// nodes, each POST entering at its connection's node. What C3's
	// cluster loses to it is cluster mode's; what it loses to the single
	// node is the machine's, several processes on the same cores.
	split := func(e *env) ([]Metric, error) {
		if _, _, _, err := e.dial(conns, dial); err != nil {
			return nil, err
		}
		ms := e.idleCPU()
		m, err := e.postPhase(run, 0, "owner", "saturation, owner: ")
		ms = append(ms, m...)
		if err == nil {
			ms = withClientYardstick(ms, "saturation, owner: ")
		}
		return ms, err
	}
	ms, err := o.versusSplit(run, nil, single, clustered, split,
		"saturation: verified POST/s", "saturation: server CPU per POST", "saturation: server CPU per client CPU",
		"1000/s: p50", "1000/s: p99", "idle: server CPU (of one core)")
	if err == nil {
		// C3 compares the cluster's owner-entry saturation with the single
		// node's: the rate, and the servers' CPU per POST (all three
		// nodes summed, against the one), the figure that carries over
		// (the rate on two cores shared with the clients spreads 0.67–1.24×
		// in one build), and the servers' CPU per client CPU.
		for _, r := range []string{"verified POST/s", "server CPU per POST", "server CPU per client CPU"} {
			c, ok1 := metricValue(ms, "cluster: saturation, owner: "+r)
			s, ok2 := metricValue(ms, "single: saturation: "+r)
			if ok1 && ok2 && s > 0 {
				ms = append(ms, Metric{"cluster owner-entry/single: " + r, "×", c / s})
			}
		}
		for _, r := range []string{"verified POST/s", "server CPU per POST"} {
			c, ok1 := metricValue(ms, "cluster: saturation, owner: "+r)
			p, ok2 := metricValue(ms, "split: saturation, owner: "+r)
			s, ok3 := metricValue(ms, "single: saturation: "+r)
			if ok1 && ok2 && p > 0 {
				ms = append(ms, Metric{"cluster owner-entry/split: " + r, "×", c / p})
			}
			if ok2 && ok3 && s > 0 {
				ms = append(ms, Metric{"split/single: " + r, "×", p / s})
			}
		}
		// And above the servers' idle CPU (heartbeats, NATS, registry
		// renewals: three nodes idle at several times one node's), which
		// is no POST's.
		c, ok1 := cpuPerOpAboveIdle(ms, "cluster: ", "saturation, owner: ", "POST")
		s, ok2 := cpuPerOpAboveIdle(ms, "single: ", "saturation: ", "POST")
		if ok1 && ok2 && s > 0 {
			ms = append(ms, Metric{"cluster owner-entry/single: server CPU per POST above idle", "×", c / s})
		}
		// C1's floor: what a second process on the way costs this
		// machine at the same rate, with no server left running
		// (hopfloor.go), beside cluster − single p50.
		floor, ferr := o.hopFloorMetrics(rate)
		ms = append(ms, floor...)
		c, ok1 = metricValue(ms, "cluster: 1000/s: p50")
		s, ok2 = metricValue(ms, "single: 1000/s: p50")
		if ok1 && ok2 && rate == 1000 {
			ms = append(ms, Metric{"cluster − single: 1000/s: p50", "ms", c - s})
		}
		err = ferr
	}
	return ms, err
}

// cpuPerOpAboveIdle is a side's server CPU per op in a phase less its
// share of the servers' idle CPU (measured by idleCPU before the phases).
func cpuPerOpAboveIdle(ms []Metric, side, phase, what string) (float64, bool) {
	per, ok1 := metricValue(ms, side+phase+"server CPU per "+what)
	busy, ok2 := metricValue(ms, side+phase+"server CPU (of one core)")
	idle, ok3 := metricValue(ms, side+"idle: server CPU (of one core)")
	if !ok1 || !ok2 || !ok3 || busy <= 0 {
		return 0, false
	}
	return per * max(0, 1-idle/busy), true
}

// withClientYardstick adds the servers' CPU over the clients' CPU in a
// closed-loop POST phase (prefix): the clients run the same code against
// any server build, so their CPU per POST gauges how fast the machine ran
// that phase. On 2 shared cores both sides' CPU per POST moves with the
// rate a run reaches (in session 9's quiet C2 runs the clients' went
// 80–109 µs and the servers' with it, 85–112 µs), so two builds compare
// by this ratio better than by the server's CPU per POST alone.
func withClientYardstick(ms []Metric, prefix string) []Metric {
	s, ok1 := metricValue(ms, prefix+"server CPU (of one core)")
	c, ok2 := metricValue(ms, prefix+"clients CPU (of one core)")
	if !ok1 || !ok2 || c == 0 {
		return ms
	}
	return append(ms, Metric{prefix + "server CPU per client CPU", "×", s / c})
}

// idleCPU is the servers' CPU use over 2 s without load (0.2 s when
// small): heartbeats, registry renewals, NATS pings, the runtimes.
func (e *env) idleCPU() []Metric {
	u := e.measure(func() { time.Sleep(time.Duration(e.o.secs(2, 0.2) * float64(time.Second))) })
	return []Metric{{"idle: server CPU (of one core)", "%", u.server / u.elapsed * 100}}
}

// clusterFanout: C4, one publish to 9,000 members (3,000 per node).
func (o *orch) clusterFanout(run int) ([]Metric, error) {
	n := o.size(9000, 30)
	f := func(e *env) ([]Metric, error) {
		if _, _, _, err := e.dial(n, command{Conc: 16, Join: "all", Read: true}); err != nil {
			return nil, err
		}
		ms, _, _, err := e.fanoutRun(run, n, "", false)
		return ms, err
	}
	return o.versus(run, nil, f, f, "time to last delivery", "burst deliveries/s", "burst: server CPU per delivery",
		"burst: server CPU per delivery (schedstat)", "burst: clients CPU per delivery (schedstat)",
		"burst: server writes per delivery", "burst: clients reads per delivery")
}

// clusterPublish: C5, 256-byte publishes to 100 groups with one member on
// each node (on a single node: the same 300 members), closed loop, entry
// nodes in turn; every frame must arrive (a slow-consumer cut would lose
// some). Measured twice: one publish per signed HTTP call (POST
// @groups/{g}: what the HTTP API allows), then 100 publishes per call
// (POST @groups, one message to each group: the HTTP cost shared, so the
// figure is what the nodes and the cluster hop allow), with the prefix
// "batched: ".
func (o *orch) clusterPublish(run int) ([]Metric, error) {
	groups := o.size(100, 10)
	f := func(e *env) ([]Metric, error) {
		members := o.Cluster
		if _, _, _, err := e.dial(groups*members, command{Conc: 16, Join: "g", JoinEvery: members, Read: true}); err != nil {
			return nil, err
		}
		var ms []Metric
		for _, p := range []struct {
			prefix      string
			batch, conc int
		}{{"", 0, 16}, {"batched: ", groups, 2}} {
			m, err := e.publishPhase(run, p.prefix, groups, members, p.batch, p.conc)
			ms = append(ms, m...)
			if err != nil {
				return ms, err
			}
		}
		return ms, nil
	}
	return o.versus(run, nil, f, f, "publishes/s", "server CPU per publish", "batched: publishes/s", "batched: server CPU per publish")
}

// publishPhase publishes closed loop for 5 s, batch messages per call
// (0: one, through POST @groups/{g}) from conc goroutines per worker,
// and waits until every member got every frame.
func (e *env) publishPhase(run int, prefix string, groups, members, batch, conc int) ([]Metric, error) {
	dur := e.o.secs(5, 0.5)
	var rs []reply
	var pubErr error
	u := e.measure(func() {
		e.profile("c-publish"+map[bool]string{true: "-batched"}[batch > 0], run, int(dur), func() {
			rs, pubErr = e.each(func(i int, w *child) (reply, error) {
				return w.call(command{Op: "publish", Addrs: e.addrs, Key: benchKey, Secret: benchSecret, Region: benchRegion, Stage: stage,
					Src: e.src(i), Conc: conc, Duration: dur, Max: 10_000_000, Join: "g", Groups: groups, Pad: 222, Batch: batch})
			})
		})
	})
	if pubErr != nil {
		return nil, pubErr
	}
	okN, errN, el := sumReplies(rs)
	if batch > 0 {
		okN, errN = okN*int64(batch), errN*int64(batch)
	}
	got, err := e.drain(okN*int64(members), 15*time.Second)
	ms := []Metric{
		{prefix + "publishes/s", "/s", float64(okN) / el.Seconds()},
		{prefix + "errors", "", float64(errN)},
		{prefix + "deliveries/s", "/s", float64(got) / el.Seconds()},
		{prefix + "frames lost", "", float64(okN*int64(members) - got)},
	}
	return append(ms, u.metrics(prefix, okN, "publish")...), err
}

// drain sums what the workers' readers received until expect frames
// arrived or timeout passed.
func (e *env) drain(expect int64, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	var got int64
	for got < expect && time.Now().Before(deadline) {
		rs, err := e.each(func(_ int, w *child) (reply, error) { return w.call(command{Op: "collect"}) })
		if err != nil {
			return got, err
		}
		for _, r := range rs {
			got += r.Count
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got < expect {
		return got, fmt.Errorf("received %d frames of %d", got, expect)
	}
	return got, nil
}

// clusterJoin: C6, PUT + DELETE @groups/jl/@connections/{id} entering at
// a node other than the owner: saturation and latency at 1,000 calls/s.
func (o *orch) clusterJoin(run int) ([]Metric, error) {
	rate := 1000.0
	if o.Small {
		rate = 100
	}
	f := func(e *env) ([]Metric, error) {
		if _, _, _, err := e.dial(o.size(400, 12), command{Conc: 8, Whoami: true}); err != nil {
			return nil, err
		}
		var ms []Metric
		for _, r := range []float64{0, rate} {
			dur := o.secs(5, 0.5)
			var rs []reply
			var jlErr error
			sv0, cv0 := switches(e.servers()), switches(e.workers)
			u := e.measure(func() {
				load := func() {
					rs, jlErr = e.each(func(i int, w *child) (reply, error) {
						c := command{Op: "joinleave", Addrs: e.addrs, Entry: "other", Key: benchKey, Secret: benchSecret, Region: benchRegion, Stage: stage,
							Src: e.src(i), Conc: 32, Duration: dur, Max: 10_000_000, Join: "jl"}
						if r > 0 { // a pair is two calls
							c.Conc, c.Rate, c.Samples = 64, r/2/float64(len(e.workers)), true
						}
						return w.call(c)
					})
				}
				if r == 0 { // -profile: join-cluster-n1.pprof …, join.pprof (single)
					e.profile("join"+map[bool]string{true: "-cluster"}[len(e.addrs) > 1], run, int(dur), load)
				} else {
					load()
				}
			})
			if jlErr != nil {
				return ms, jlErr
			}
			okN, errN, el := sumReplies(rs)
			p := "saturation: "
			if r > 0 {
				p = fmt.Sprintf("%.0f/s: ", r)
			}
			ms = append(ms, Metric{p + "join+leave calls/s", "/s", float64(2*okN) / el.Seconds()}, Metric{p + "errors", "", float64(errN)})
			ms = append(ms, u.metrics(p, 2*okN, "call")...)
			if okN > 0 { // each a thread's wake-up: a count the load moves little
				ms = append(ms, Metric{p + "server context switches per call, voluntary", "", float64(switches(e.servers())-sv0) / float64(2*okN)},
					Metric{p + "clients context switches per call, voluntary", "", float64(switches(e.workers)-cv0) / float64(2*okN)})
			}
			var lat, queued, fromSend []int64
			var first string
			for _, x := range rs {
				lat, queued, fromSend = append(lat, x.Lat...), append(queued, x.Queued...), append(fromSend, x.FromSend...)
				first = cmp.Or(first, x.FirstEr)
			}
			ms = append(ms, latencyMetrics(p, lat)...)
			// The client's own lateness, in the first call of each pair's
			// latency (a figure of the client and the machine, not of the
			// server), and each call's time from its own send.
			ms = append(ms, latencyMetrics(p+"sent after schedule: ", queued)...)
			ms = append(ms, latencyMetrics(p+"from send: ", fromSend)...)
			if errN > 0 {
				return ms, fmt.Errorf("%d join/leave pairs failed (%s)", errN, first)
			}
		}
		return ms, nil
	}
	return o.versus(run, nil, f, f, "saturation: join+leave calls/s", "saturation: server CPU per call", "1000/s: p50", "1000/s: p99")
}

// clusterPage: C7, pages of 1,000 members of one big group. The cluster
// holds 30,000 members (10,000 per node); a single server process here
// cannot hold more than the open-files limit (20,000), so the single node
// holds 18,000: a page costs O(log n + page) either way.
func (o *orch) clusterPage(run int) ([]Metric, error) {
	page := 1000
	if o.Small {
		page = 10
	}
	f := func(n int) phase {
		return func(e *env) ([]Metric, error) {
			if _, _, _, err := e.dial(n, command{Conc: 16, Join: "all"}); err != nil {
				return nil, err
			}
			var times []float64
			var pages int64
			// walk pages through the first 10 pages of the group, again
			// and again: n pages, or until stop.
			walk := func(n int, stop time.Time) error {
				token := ""
				for i := 0; (n == 0 || i < n) && (stop.IsZero() || time.Now().Before(stop)); i++ {
					if i%10 == 0 {
						token = ""
					}
					u := fmt.Sprintf("http://%s/%s/@groups/all?maxResults=%d", e.addr, stage, page)
					if token != "" {
						u += "&nextToken=" + url.QueryEscape(token)
					}
					start := time.Now()
					b, err := signedDo(http.DefaultClient, http.MethodGet, u, nil)
					times = append(times, time.Since(start).Seconds()*1e3)
					var out struct {
						Connections []string `json:"connectionIds"`
						NextToken   string   `json:"nextToken"`
					}
					if err == nil {
						err = json.Unmarshal(b, &out)
					}
					if err == nil && len(out.Connections) != page {
						err = fmt.Errorf("page of %d members, want %d: %.200s", len(out.Connections), page, b)
					}
					if err != nil {
						return err
					}
					pages++
					token = out.NextToken
				}
				return nil
			}
			// Before the window: 10 pages unmeasured, then every server
			// collects its garbage, so that each side's window starts at
			// the same point of its servers' GC cycles and not wherever
			// dialing and joining n connections left them (a collection
			// of the heap they left, inside one side's window and not
			// the other's, moved the ratio).
			if err := walk(10, time.Time{}); err != nil {
				return nil, err
			}
			times, pages = times[:0], 0
			gc0, err := e.gcCycles(true)
			if err != nil {
				return nil, err
			}
			// 200 pages: the server CPU per page is then read to 50 µs
			// (clock ticks of 10 ms).
			var pageErr error
			sv0 := switches(e.servers())
			u := e.measure(func() { pageErr = walk(o.size(200, 20), time.Time{}) })
			if pageErr != nil {
				return nil, pageErr
			}
			sv1 := switches(e.servers())
			gc1, err := e.gcCycles(false)
			if err != nil {
				return nil, err
			}
			// Profile (-profile): keep paging for 3 s, not measured.
			if o.ProfileDir != "" && run == 0 {
				measured, measuredPages := times, pages
				e.profile("page"+map[bool]string{true: "-cluster"}[len(e.addrs) > 1], run, 3, func() {
					pageErr = walk(0, time.Now().Add(3*time.Second))
				})
				if pageErr != nil {
					return nil, pageErr
				}
				times, pages = measured, measuredPages
			}
			slices.Sort(times)
			ms := []Metric{
				{"members", "", float64(n)},
				{"page time p50", "ms", times[len(times)/2]},
				{"page time max", "ms", times[len(times)-1]},
				{"server GC cycles", "", float64(gc1 - gc0)},
				{"server context switches per page, voluntary", "", float64(sv1-sv0) / float64(pages)},
			}
			return append(ms, u.metrics("", pages, "page")...), nil
		}
	}
	return o.versus(run, nil, f(o.size(18000, 60)), f(o.size(30000, 90)), "page time p50", "server CPU per page")
}

// switches is the voluntary context switches of every thread of ps,
// summed.
func switches(ps []*child) int64 {
	var n int64
	for _, c := range ps {
		v, _, _ := procSwitches(c.pid())
		n += v
	}
	return n
}

// gcCycles is the servers' GC cycles so far, summed, after each has
// collected its garbage (runtime.GC, twice) when collect is set.
func (e *env) gcCycles(collect bool) (uint32, error) {
	var n uint32
	for _, d := range e.debugs {
		if d == "" { // a wsgate binary (-wsgate) has no side port
			continue
		}
		s, err := statsAt(d, collect)
		if err != nil {
			return 0, err
		}
		n += s.NumGC
	}
	return n, nil
}

// clusterMemory: C11, memory per idle connection and per distinct group
// (every connection alone in its own group), summed over the nodes. The
// per-group figure is taken a second after the joins, as it always was,
// and again once the goroutines the joins' read turns left idle in the
// gateway's pool have exited ("settled"): only that one is the groups'
// (and their connections' first message's) lasting cost.
func (o *orch) clusterMemory(run int) ([]Metric, error) {
	n := o.size(9000, 30)
	f := func(e *env) ([]Metric, error) {
		rss := func() (sum float64) {
			for _, s := range e.servers() {
				v, _ := procRSS(s.pid())
				sum += float64(v)
			}
			return sum
		}
		// heap is every node's heap and stacks in use after a collection,
		// and their goroutines.
		heap := func() (sum float64, gs int, err error) {
			for _, d := range e.debugs {
				s, err := statsAt(d, true)
				if err != nil {
					return 0, 0, err
				}
				sum += float64(s.HeapInuse + s.StackInuse)
				gs += s.Goroutines
			}
			return sum, gs, nil
		}
		r0 := rss()
		h0, _, err := heap()
		if err != nil {
			return nil, err
		}
		if _, _, _, err := e.dial(n, command{Conc: 16}); err != nil {
			return nil, err
		}
		time.Sleep(time.Second)
		r1 := rss()
		h1, g1, err := heap()
		if err != nil {
			return nil, err
		}
		rs, err := e.each(func(i int, w *child) (reply, error) {
			return w.call(command{Op: "join", Conc: 16, Join: "u", JoinEvery: 1, Base: e.base(i)})
		})
		if err == nil {
			for _, r := range rs {
				if r.Errors > 0 {
					err = fmt.Errorf("%d joins failed (%s)", r.Errors, r.FirstEr)
				}
			}
		}
		if err != nil {
			return nil, err
		}
		time.Sleep(time.Second)
		r2 := rss()
		h2, g2, err := heap()
		if err != nil {
			return nil, err
		}
		// The read turns that took the joins linger (the gateway's
		// readLinger) on pooled goroutines, at most 128 a core at once
		// (before that bound, thousands in a burst of joins), and the
		// pool keeps some idle, with their grown stacks, for gopool.Idle
		// to twice that: the figure above counts those stacks, not only
		// the groups. Settled is once the goroutines are back to their
		// number before the joins (a few more allowed), at most 2*Idle
		// and a margin later.
		h3, g3 := h2, g2
		for end := time.Now().Add(2*gopool.Idle + 5*time.Second); g3 > g1+8 && time.Now().Before(end); {
			time.Sleep(250 * time.Millisecond)
			if h3, g3, err = heap(); err != nil {
				return nil, err
			}
		}
		fn := float64(n)
		// Every node's increase together, over the distinct groups (each
		// has one member, on one node; every embedded NATS server holds
		// the interest in all of them).
		return []Metric{
			{"RSS per idle conn (all nodes)", "B", (r1 - r0) / fn},
			{"Go heap+stack per idle conn (all nodes)", "B", (h1 - h0) / fn},
			{"RSS per distinct group (all nodes)", "B", (r2 - r1) / fn},
			{"Go heap+stack per distinct group (all nodes)", "B", (h2 - h1) / fn},
			{"goroutines more a second after the joins (all nodes)", "", float64(g2 - g1)},
			{"Go heap+stack per distinct group, settled (all nodes)", "B", (h3 - h1) / fn},
		}, nil
	}
	return o.versus(run, nil, f, f)
}

// base is worker i's first connection's index among all of the env's.
func (e *env) base(i int) int {
	b := 0
	for _, s := range e.sizes[:i] {
		b += s
	}
	return b
}
