package bench

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func (o *orch) size(full, small int) int {
	if o.Small {
		return small
	}
	return full
}

func (o *orch) secs(full, small float64) float64 {
	if o.Small {
		return small
	}
	return full
}

// usage is where the CPU went during a phase.
type usage struct {
	server, clients float64   // CPU seconds of the server and of all workers
	backend         float64   // CPU seconds of the http backend
	busy            float64   // fraction of the machine's CPUs busy
	elapsed         float64   // seconds
	kernelShare     float64   // of the server's CPU, the share in the kernel (10 ms ticks)
	nodes           []float64 // with several servers, each one's CPU seconds
}

// measure runs f and reports CPU use over it.
func (e *env) measure(f func()) usage {
	clients := func() float64 {
		var s float64
		for _, w := range e.workers {
			c, _ := procCPU(w.pid())
			s += c
		}
		return s
	}
	backend := func() float64 {
		if e.backend == nil {
			return 0
		}
		c, _ := procCPU(e.backend.pid())
		return c
	}
	// servers reads each server's user and system CPU once.
	servers := func() (user, sys []float64) {
		for _, srv := range e.servers() {
			u, s, _ := procUserSys(srv.pid())
			user, sys = append(user, u), append(sys, s)
		}
		return user, sys
	}
	u0, y0 := servers()
	w0, k0 := clients(), backend()
	b0, t0 := machineTicks()
	start := time.Now()
	f()
	u := usage{elapsed: time.Since(start).Seconds()}
	u1, y1 := servers()
	var user, sys float64
	for k := range min(len(u0), len(u1)) {
		du, dy := u1[k]-u0[k], y1[k]-y0[k]
		user, sys = user+du, sys+dy
		if len(u1) > 1 {
			u.nodes = append(u.nodes, du+dy)
		}
	}
	if user+sys > 0 {
		u.kernelShare = sys / (user + sys)
	}
	u.server = user + sys
	b1, t1 := machineTicks()
	u.clients, u.backend = clients()-w0, backend()-k0
	if t1 > t0 {
		u.busy = float64(b1-b0) / float64(t1-t0)
	}
	return u
}

// metrics names the usage figures, per operation when ops > 0.
func (u usage) metrics(prefix string, ops int64, what string) []Metric {
	ms := []Metric{
		{prefix + "server CPU (of one core)", "%", u.server / u.elapsed * 100},
		{prefix + "clients CPU (of one core)", "%", u.clients / u.elapsed * 100},
		{prefix + "backend CPU (of one core)", "%", u.backend / u.elapsed * 100},
		{prefix + "machine busy (of all cores)", "%", u.busy * 100},
		{prefix + "other processes' CPU (of one core)", "%", (u.busy*float64(runtime.NumCPU())*u.elapsed - u.server - u.clients - u.backend) / u.elapsed * 100},
	}
	for k, c := range u.nodes {
		ms = append(ms, Metric{fmt.Sprintf("%sserver CPU, node %d (of one core)", prefix, k+1), "%", c / u.elapsed * 100})
	}
	if ops > 0 {
		ms = append(ms, Metric{prefix + "server CPU per " + what, "µs", u.server / float64(ops) * 1e6},
			Metric{prefix + "server CPU in the kernel", "%", u.kernelShare * 100})
	}
	return ms
}

// idle: handshakes/s and memory per idle connection at several N.
func (o *orch) idle(run int) ([]Metric, error) {
	var ms []Metric
	sizes := []int{1000, 10000, 19000}
	if o.Small {
		sizes = []int{40}
	}
	for _, n := range sizes {
		m, err := o.idleAt(run, n)
		ms = append(ms, m...)
		if err != nil {
			return ms, err
		}
	}
	return ms, nil
}

func (o *orch) idleAt(run, n int) ([]Metric, error) {
	e, err := o.newEnv(false, nil)
	if err != nil {
		return nil, err
	}
	defer e.close()
	s0, err := e.stats(true)
	if err != nil && e.debug != "" {
		return nil, err
	}
	rss0, _ := procRSS(e.srv.pid())
	var elapsed time.Duration
	var dialErr error
	u := e.measure(func() {
		e.profile(fmt.Sprintf("idle-%d", n), run, 2, func() {
			elapsed, _, _, dialErr = e.dial(n, command{Conc: 16})
		})
	})
	if dialErr != nil {
		return nil, dialErr
	}
	time.Sleep(time.Second)
	rss1, _ := procRSS(e.srv.pid())
	p := fmt.Sprintf("N=%d ", n)
	fn := float64(n)
	ms := []Metric{{p + "handshakes/s", "/s", fn / elapsed.Seconds()}}
	ms = append(ms, u.metrics(p, int64(n), "handshake")...)
	ms = append(ms, Metric{p + "RSS per conn", "B", float64(rss1-rss0) / fn})
	if e.debug == "" { // the wsgate binary: no runtime statistics
		return ms, nil
	}
	s1, err := e.stats(true)
	if err != nil {
		return ms, err
	}
	return append(ms, []Metric{
		{p + "Go heap+stack per conn", "B", (float64(s1.HeapInuse+s1.StackInuse) - float64(s0.HeapInuse+s0.StackInuse)) / fn},
		{p + "  of which stack", "B", (float64(s1.StackInuse) - float64(s0.StackInuse)) / fn},
		{p + "goroutines per conn", "", float64(s1.Goroutines-s0.Goroutines) / fn},
		{p + "server conns", "", float64(s1.Conns)},
	}...), nil
}

// post: signed @connections POSTs, saturation and latency at fixed rates.
// Every phase gets a fresh server, so none inherits another's sockets.
func (o *orch) post(run int) ([]Metric, error) {
	var ms []Metric
	rates := o.PostRates
	if len(rates) == 0 {
		rates = []float64{0, 1000, 5000}
	}
	for j, rate := range rates {
		if o.Small {
			rate /= 10
		}
		m, err := o.postBesideFloor(run, j, rate)
		ms = append(ms, m...)
		if err != nil {
			return ms, err
		}
	}
	return ms, nil
}

// postAt runs one phase on a fresh server with 400 connections: wsgate,
// or with floor the post floor (floor.go), its figures named "floor: …".
func (o *orch) postAt(run int, rate float64, floor bool) ([]Metric, error) {
	var e *env
	var err error
	lean := rate > 0 && o.PostClient == "lean"
	if rate > 0 {
		o.phaseWorkers = o.PostWorkers
		defer func() { o.phaseWorkers = 0 }()
	}
	if floor {
		e, err = o.newFloorEnv("post", false)
	} else {
		e, err = o.newEnv(false, nil)
	}
	if err != nil {
		return nil, err
	}
	defer e.close()
	e.lean = lean
	if _, _, _, err := e.dial(o.size(400, 8), command{Conc: 8, Whoami: true, Read: !lean}); err != nil {
		return nil, err
	}
	p := "saturation: "
	if rate > 0 {
		p = fmt.Sprintf("%.0f/s: ", rate)
	}
	if floor {
		p = sideFloor + ": " + p
	}
	var counter *syscallCounter
	if o.Syscalls {
		if counter, err = countSyscalls(e.srv.pid()); err != nil {
			return nil, err
		}
	}
	var st0, st1 floorStats
	if floor {
		if st0, err = statsOf(e.side); err != nil {
			return nil, err
		}
	}
	v0, i0, _ := procSwitches(e.srv.pid())
	var gc0 Stats
	if e.debug != "" {
		gc0, _ = e.stats(false)
	}
	ms, err := e.postPhase(run, rate, "", p)
	if e.debug != "" {
		if gc1, serr := e.stats(false); serr == nil {
			ms = append(ms, gcMetrics(p, gc0, gc1)...)
		}
	}
	if v1, i1, serr := procSwitches(e.srv.pid()); serr == nil {
		if posts, _ := metricValue(ms, p+"verified POSTs"); posts > 0 {
			ms = append(ms, Metric{p + "server context switches per POST, voluntary", "", float64(v1-v0) / posts},
				Metric{p + "server context switches per POST, involuntary", "", float64(i1-i0) / posts})
		}
	}
	if floor {
		var serr error
		st1, serr = statsOf(e.side)
		err = cmp.Or(err, serr)
		if ops := st1.Ops - st0.Ops; ops > 0 {
			ms = append(ms, Metric{p + "syscalls per POST, its own count", "", float64(st1.Syscalls-st0.Syscalls) / float64(ops)})
		}
	}
	if counter != nil {
		calls := counter.stop()
		if posts, _ := metricValue(ms, p+"verified POSTs"); posts > 0 && calls > 0 {
			ms = append(ms, Metric{p + "syscalls per POST (perf)", "", float64(calls) / posts})
		}
	}
	return ms, err
}

// gcMetrics are the server's collections between two /stats readings:
// how many, and their stop-the-world pauses (total and longest).
func gcMetrics(p string, s0, s1 Stats) []Metric {
	n := s1.NumGC - s0.NumGC
	var total, longest uint64
	for c := s0.NumGC + 1; c <= s1.NumGC && c+256 > s1.NumGC; c++ {
		d := s1.PauseNs[(c+255)%256]
		total, longest = total+d, max(longest, d)
	}
	return []Metric{{p + "server GC cycles", "", float64(n)},
		{p + "server GC stop-the-world, total", "ms", float64(total) / 1e6},
		{p + "server GC stop-the-world, longest", "ms", float64(longest) / 1e6}}
}

// postPhase posts to the workers' connections: closed loop with 32
// keep-alive clients per worker when rate is 0, else open loop at rate
// with 64 clients per worker. The lean client first posts at rate for
// Options.PostWarmup (the ramp, its figures named "warm-up (… s): …");
// the latencies and the client's figures that follow are the window's,
// while the throughput, CPU and switch counts cover warm-up and window. entry "other" sends each POST to a cluster
// node that does not own the connection.
func (e *env) postPhase(run int, rate float64, entry, p string) ([]Metric, error) {
	o := e.o
	dur := o.secs(5, 0.5)
	var warm float64 // the lean client's warm-up, seconds
	if rate > 0 && e.lean {
		warm = o.PostWarmup.Seconds()
		if o.PostWarmup == 0 {
			warm = o.secs(1, 0.2)
		}
		warm = max(warm, 0)
	}
	var rs []reply
	var postErr error
	cmd := func(i int, op string) command {
		c := command{Op: op, Addr: e.addr, Addrs: e.addrs, Entry: entry, Key: benchKey, Secret: benchSecret, Region: benchRegion, Stage: stage,
			Src: e.src(i), Conc: 32, Duration: dur, Max: 10_000_000, InvocationID: o.PostInvocationID}
		if rate > 0 {
			c.Conc, c.Rate, c.Samples, c.Lean = 64, rate/float64(len(e.workers)), true, e.lean
			if e.lean {
				c.Warm = warm
			}
		}
		return c
	}
	if rate > 0 {
		if err := e.postSign(cmd); err != nil {
			return nil, err
		}
		if o.ServerFIFO {
			if err := fifoProcess(e.srv.pid(), 1); err != nil {
				return nil, fmt.Errorf("-server-fifo: %w", err)
			}
			defer func() { _ = fifoProcess(e.srv.pid(), 0) }()
		}
	}
	var probe *stallProbe
	if rate > 0 && e.lean && o.StallProbe {
		if probe = startStallProbe(); probe == nil {
			return nil, errors.New("-stall-probe: no real-time thread (CAP_SYS_NICE?)")
		}
	}
	u := e.measure(func() {
		load := func() {
			rs, postErr = e.each(func(i int, w *child) (reply, error) { return w.call(cmd(i, "post")) })
		}
		if rate > 0 && os.Getenv("WSGATE_BENCH_TRACE") != "" {
			e.trace(fmt.Sprintf("post-%g-%d", rate, run), int(math.Ceil(warm+dur)), load)
		} else if rate == 0 && entry != "owner" {
			e.profile("post"+map[bool]string{true: "-cluster"}[len(e.addrs) > 1], run, int(dur), load)
		} else {
			load()
		}
	})
	stalls := probe.end()
	if postErr != nil {
		return nil, postErr
	}
	okN, errN, el := sumReplies(rs)
	for _, r := range rs {
		if r.FirstEr != "" {
			fmt.Fprintf(o.Log, "post %s%d errors, the first: %s\n", p, r.Errors, r.FirstEr)
			break
		}
	}
	var lat, fromSend, atSocket, readDelay, wakeLate []int64
	var client []Metric // the lean client's own figures
	var err error
	if e.lean {
		lat, fromSend, err = leanFrames(rs)
		var dials, inFlight, realtime int64
		for _, r := range rs {
			atSocket, readDelay = append(atSocket, r.AtSocket...), append(readDelay, r.ReadDelay...)
			wakeLate = append(wakeLate, r.WakeLate...)
			dials, inFlight = dials+r.Dials, max(inFlight, r.InFlight)
			if r.Realtime {
				realtime++
			}
		}
		client = []Metric{{p + "client: HTTP connections dialed", "", float64(dials)}, {p + "client: POSTs in flight at most", "", float64(inFlight)},
			{p + "client: real-time threads", "", float64(realtime)}}
		var slow [][3]int64
		for _, r := range rs {
			slow = append(slow, r.Slow...)
		}
		eps := slowEpisodes(slow)
		client = append(client, episodeMetrics(p, len(slow), eps)...)
		var dialAt []int64
		var start int64 // the first client's window start: the others' differ by the signing's microseconds
		for _, r := range rs {
			dialAt = append(dialAt, r.DialAt...)
			if start == 0 {
				start = r.WindowStart
			}
		}
		if start != 0 && len(eps) > 0 {
			// Where a server trace (WSGATE_BENCH_TRACE) or a perf record
			// of the same seconds puts the episodes.
			fmt.Fprintf(o.Log, "run %d: %sthe window began at %s (unix ns %d)\n", run+1, p, time.Unix(0, start).UTC().Format(time.RFC3339Nano), start)
		}
		var marks []episodeMark
		if o.StallProbe {
			marks = markEpisodes(eps, dialAt, stalls, start)
			client = append(client, stallMetrics(p, eps, marks, stalls, start, int64(dur*1e9))...)
		}
		for _, i := range worstEpisodeIndexes(eps, 5) {
			ep := eps[i]
			var why string
			if marks != nil {
				m := marks[i]
				why = fmt.Sprintf("; %d connections dialed in it; the machine's longest stall in it %.2f ms (%d of the CPUs), an ordinary thread's latest wake-up %.2f ms", m.dials, float64(m.stall)/1e6, m.cpus, float64(m.busy)/1e6)
			}
			fmt.Fprintf(o.Log, "run %d: %sframes over %v: an episode of %d POSTs scheduled %.3f–%.3f s into the window, the worst %.2f ms (from a write to the frame at the client's socket at most %.2f ms)%s\n",
				run+1, p, slowFrame, ep.n, float64(ep.from)/1e9, float64(ep.to)/1e9, float64(ep.worst)/1e6, float64(ep.afterWrite)/1e6, why)
		}
		if warm > 0 {
			client = append(client, warmMetrics(p+fmt.Sprintf("warm-up (%g s): ", warm), rs)...)
		}
	} else {
		lat, err = e.collectAll(rs, rate > 0)
	}
	ms := []Metric{{p + "verified POST/s", "/s", float64(okN) / el.Seconds()}, {p + "verified POSTs", "", float64(okN)}, {p + "errors", "", float64(errN)}}
	ms = append(ms, u.metrics(p, okN, "POST")...)
	ms = append(ms, latencyMetrics(p, lat)...)
	var queued, answered []int64
	for _, r := range rs {
		queued, answered = append(queued, r.Queued...), append(answered, r.Lat...)
	}
	ms = append(ms, latencyMetrics(p+"sent after schedule: ", queued)...)
	ms = append(ms, latencyMetrics(p+"answered: ", answered)...)
	ms = append(ms, latencyMetrics(p+"frame after the write: ", fromSend)...)
	ms = append(ms, latencyMetrics(p+"frame at the client's socket: ", atSocket)...)
	ms = append(ms, latencyMetrics(p+"client's read after its socket: ", readDelay)...)
	ms = append(ms, latencyMetrics(p+"client's timer wake-up after its deadline: ", wakeLate)...)
	return append(ms, client...), err
}

// warmMetrics are the lean clients' warm-up figures (the phase's ramp),
// named with prefix: POST→frame from the scheduled time and from the
// write, sent after schedule, the connections dialed (those dialed
// before it included) and the POSTs in flight at most.
func warmMetrics(prefix string, rs []reply) []Metric {
	var all warmSamples
	for _, r := range rs {
		if w := r.Warm; w != nil {
			all.Frames, all.FromSend = append(all.Frames, w.Frames...), append(all.FromSend, w.FromSend...)
			all.Queued = append(all.Queued, w.Queued...)
			all.Dials, all.InFlight = all.Dials+w.Dials, max(all.InFlight, w.InFlight)
		}
	}
	ms := latencyMetrics(prefix, all.Frames)
	ms = append(ms, latencyMetrics(prefix+"frame after the write: ", all.FromSend)...)
	ms = append(ms, latencyMetrics(prefix+"sent after schedule: ", all.Queued)...)
	return append(ms, Metric{prefix + "client: HTTP connections dialed", "", float64(all.Dials)},
		Metric{prefix + "client: POSTs in flight at most", "", float64(all.InFlight)})
}

// leanFrames merges the lean clients' POST→frame samples (from the
// scheduled time, and from the write) and checks that every answered POST
// brought its frame.
func leanFrames(rs []reply) (lat, fromSend []int64, err error) {
	var frames, ok int64
	for _, r := range rs {
		lat, fromSend = append(lat, r.Frames...), append(fromSend, r.FromSend...)
		frames += r.Count
		ok += r.OK
	}
	if frames < ok {
		err = fmt.Errorf("received %d frames of %d posted", frames, ok)
	}
	return lat, fromSend, err
}

// postSign has every worker sign its fixed-rate POSTs before the measured
// window, each stamped with its scheduled time from a start half a second
// ahead; when the signing outlasts that lead (a loaded machine), it signs
// again with the lead doubled, up to 8 s.
func (e *env) postSign(cmd func(i int, op string) command) error {
	for lead := 0.5; ; lead *= 2 {
		rs, err := e.each(func(i int, w *child) (reply, error) {
			c := cmd(i, "post-sign")
			c.Lead = lead
			return w.call(c)
		})
		if err != nil {
			return err
		}
		first := rs[0].Start
		for _, r := range rs {
			first = min(first, r.Start)
		}
		if time.Now().UnixNano() < first || lead >= 8 {
			return nil
		}
	}
}

func sumReplies(rs []reply) (ok, errs int64, elapsed time.Duration) {
	for _, r := range rs {
		ok += r.OK
		errs += r.Errors
		elapsed = max(elapsed, time.Duration(r.Elapsed))
	}
	return ok, errs, elapsed
}

// collectAll waits until each worker's readers got the frames its POSTs
// (sent[i].OK) carried and returns the latency samples merged.
func (e *env) collectAll(sent []reply, samples bool) ([]int64, error) {
	var total, expect int64
	rs, err := e.each(func(i int, w *child) (reply, error) {
		return w.call(command{Op: "collect", Expect: sent[i].OK, Timeout: 10, Samples: samples})
	})
	var lat []int64
	var ended int64
	var why string
	for i, r := range rs {
		total += r.Count
		expect += sent[i].OK
		lat = append(lat, r.Lat...)
		ended += r.Ended
		why = cmp.Or(why, r.EndErr)
	}
	if err == nil && total < expect {
		err = fmt.Errorf("received %d frames of %d posted (%d readers stopped: %s)", total, expect, ended, why)
	}
	return lat, err
}

// slowFrame is the POST→frame delay over which the lean client notes a
// POST's scheduled time (Slow): the p99 target of issue 16. maxSlow bounds
// how many one client notes (a whole window of a stalled machine fits).
const (
	slowFrame = 2 * time.Millisecond
	maxSlow   = 100_000
)

// episode is a run of slow POSTs: scheduled from..to (ns since the
// window's start), each within episodeGap of the one before; worst is
// the longest delay among them, ns.
type episode struct {
	from, to, worst int64
	n               int
	// afterWrite is the longest time from a POST's write to its frame at
	// the client's socket (the server's and the kernel's part, the
	// client's lateness in sending and reading left out), ns.
	afterWrite int64
}

// episodeGap: slow POSTs scheduled further apart than this are two
// episodes (two stalls, not one).
const episodeGap = 10 * time.Millisecond

// slowEpisodes groups the slow POSTs (scheduled time, delay, write to
// frame at the socket) into episodes, in order of time.
func slowEpisodes(slow [][3]int64) []episode {
	slices.SortFunc(slow, func(a, b [3]int64) int { return cmp.Compare(a[0], b[0]) })
	var eps []episode
	for _, s := range slow {
		t, d, a := s[0], s[1], s[2]
		if n := len(eps); n > 0 && t-eps[n-1].to <= int64(episodeGap) {
			ep := &eps[n-1]
			ep.to, ep.n, ep.worst, ep.afterWrite = t, ep.n+1, max(ep.worst, d), max(ep.afterWrite, a)
			continue
		}
		eps = append(eps, episode{from: t, to: t, worst: d, n: 1, afterWrite: a})
	}
	return eps
}

// episodeMetrics: how many POSTs' frames came over slowFrame (the p99 is
// under it while they are under 1 % of the window's), in how many
// episodes, and the largest episode's POSTs.
func episodeMetrics(p string, slow int, eps []episode) []Metric {
	largest := 0
	for _, ep := range eps {
		largest = max(largest, ep.n)
	}
	name := p + fmt.Sprintf("frames over %v", slowFrame)
	return []Metric{{name, "", float64(slow)}, {name + ": episodes", "", float64(len(eps))},
		{name + ": the largest episode's POSTs", "", float64(largest)}}
}

// worstEpisodes are the k episodes with the most POSTs, in order of time.
func worstEpisodes(eps []episode, k int) []episode {
	var w []episode
	for _, i := range worstEpisodeIndexes(eps, k) {
		w = append(w, eps[i])
	}
	return w
}

// worstEpisodeIndexes are the indexes of the k episodes with the most
// POSTs, in order of time.
func worstEpisodeIndexes(eps []episode, k int) []int {
	w := make([]int, len(eps))
	for i := range w {
		w[i] = i
	}
	slices.SortStableFunc(w, func(a, b int) int { return eps[b].n - eps[a].n })
	w = w[:min(k, len(w))]
	slices.Sort(w) // episodes are in order of time
	return w
}

// episodeMark is what happened during an episode: the connections the
// client dialed for the window's POSTs; the machine's longest stall (the
// probe's real-time threads' latest wake-up, ns) and on how many CPUs
// one was late; and the probe's ordinary threads' latest wake-up (the
// CPU's contention, machine stalls included), ns.
type episodeMark struct {
	dials             int
	stall, cpus, busy int64
}

// markEpisodes marks each episode (times since the window's start, as
// dialAt) with the dials and the probe's late wake-ups (unix ns) that
// fell in it: from slowFrame before its first POST's scheduled time (a
// stall that began then delays it by slowFrame) to its last POST's time
// plus the episode's worst delay (when the last frame came at the
// latest).
func markEpisodes(eps []episode, dialAt []int64, stalls []stall, start int64) []episodeMark {
	marks := make([]episodeMark, len(eps))
	for i, ep := range eps {
		lo, hi := ep.from-int64(slowFrame), ep.to+ep.worst
		m := &marks[i]
		for _, t := range dialAt {
			if t >= lo && t <= hi {
				m.dials++
			}
		}
		var cpus uint64
		for _, s := range stalls {
			if at := s.at - start; at > hi || at+s.late < lo {
				continue
			}
			if s.ordinary {
				m.busy = max(m.busy, s.late)
				continue
			}
			m.stall = max(m.stall, s.late)
			cpus |= 1 << (s.cpu % 64)
		}
		m.cpus = int64(bits.OnesCount64(cpus))
	}
	return marks
}

// stallMetrics: the probe's late wake-ups over slowFrame in the phase's
// window (dur ns from start; the warm-up's excluded), real-time and
// ordinary, and the longest of each; the episodes the machine stalled in
// (a real-time wake-up over slowFrame); and the worst delay, and worst
// time from a write to the frame at the client's socket (the client's own
// lateness left out), of the episodes it did not stall in and of those
// the ordinary threads were not held up in either (the tail that neither
// the machine nor the CPU's contention explains: the server's own).
func stallMetrics(p string, eps []episode, marks []episodeMark, stalls []stall, start, dur int64) []Metric {
	var n, nBusy int
	var longest, longestBusy int64
	for _, s := range stalls {
		if at := s.at - start; at+s.late < 0 || at > dur || s.late <= int64(slowFrame) {
			continue
		}
		if s.ordinary {
			nBusy++
			longestBusy = max(longestBusy, s.late)
		} else {
			n++
			longest = max(longest, s.late)
		}
	}
	var with int
	var worstWithout, afterWithout, worstQuiet, afterQuiet int64
	for i, m := range marks {
		if m.stall > int64(slowFrame) {
			with++
			continue
		}
		worstWithout, afterWithout = max(worstWithout, eps[i].worst), max(afterWithout, eps[i].afterWrite)
		if m.busy <= int64(slowFrame) {
			worstQuiet, afterQuiet = max(worstQuiet, eps[i].worst), max(afterQuiet, eps[i].afterWrite)
		}
	}
	name := p + fmt.Sprintf("frames over %v", slowFrame)
	return []Metric{{p + fmt.Sprintf("machine stalls over %v (probe, real-time, per CPU)", slowFrame), "", float64(n)},
		{p + "machine stall, longest (probe, real-time)", "ms", float64(longest) / 1e6},
		{p + fmt.Sprintf("ordinary thread's wake-ups over %v late (probe, per CPU)", slowFrame), "", float64(nBusy)},
		{p + "ordinary thread's wake-up, latest (probe)", "ms", float64(longestBusy) / 1e6},
		{name + ": episodes the machine stalled over 2 ms in", "", float64(with)},
		{name + ": the worst delay of the episodes it did not", "ms", float64(worstWithout) / 1e6},
		{name + ": ... from a write to the frame at the client's socket", "ms", float64(afterWithout) / 1e6},
		{name + ": the worst delay of the episodes with no probe thread over 2 ms late", "ms", float64(worstQuiet) / 1e6},
		{name + ": ... from a write to the frame at the client's socket, those", "ms", float64(afterQuiet) / 1e6}}
}

func latencyMetrics(prefix string, lat []int64) []Metric {
	if len(lat) == 0 {
		return nil
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		i := int(p * float64(len(lat)-1))
		return float64(lat[i]) / 1e6
	}
	return []Metric{
		{prefix + "p50", "ms", q(0.5)},
		{prefix + "p99", "ms", q(0.99)},
		{prefix + "p99.9", "ms", q(0.999)},
		{prefix + "max", "ms", float64(lat[len(lat)-1]) / 1e6},
	}
}

// route: client message → http integration → two-way answer, closed loop
// (saturation) and at a fixed rate, each phase on a fresh server.
func (o *orch) route(run int) ([]Metric, error) {
	var ms []Metric
	for _, rate := range []float64{0, 1000} {
		if o.Small && rate > 0 {
			rate = 100
		}
		m, err := o.routeAt(run, rate)
		ms = append(ms, m...)
		if err != nil {
			return ms, err
		}
	}
	return ms, nil
}

func (o *orch) routeAt(run int, rate float64) ([]Metric, error) {
	e, err := o.newEnv(false, nil)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if _, _, _, err := e.dial(o.size(128, 8), command{Conc: 8}); err != nil {
		return nil, err
	}
	dur := o.secs(5, 0.5)
	var rs []reply
	var echoErr error
	u := e.measure(func() {
		load := func() {
			rs, echoErr = e.each(func(i int, w *child) (reply, error) {
				return w.call(command{Op: "echo", Duration: dur, Rate: rate / float64(len(e.workers)), Max: 10_000_000})
			})
		}
		if rate == 0 {
			e.profile("route", run, int(dur), load)
		} else {
			load()
		}
	})
	if echoErr != nil {
		return nil, echoErr
	}
	okN, errN, el := sumReplies(rs)
	var lat []int64
	var first string
	for _, r := range rs {
		lat = append(lat, r.Lat...)
		first = cmp.Or(first, r.FirstEr)
	}
	p := "saturation: "
	if rate > 0 {
		p = fmt.Sprintf("%.0f/s: ", rate)
	}
	ms := []Metric{{p + "messages/s", "/s", float64(okN) / el.Seconds()}, {p + "errors", "", float64(errN)}}
	ms = append(ms, u.metrics(p, okN, "message")...)
	ms = append(ms, latencyMetrics(p, lat)...)
	if errN > 0 {
		err = fmt.Errorf("%d messages failed (%s)", errN, first)
	}
	return ms, err
}

// publisher sends publishes to wsgate's group API or to the raw floor.
type publisher struct {
	client *http.Client
	url    string
	signed bool
}

func (e *env) publisher(raw bool) *publisher {
	if raw {
		return &publisher{client: http.DefaultClient, url: "http://" + e.debug + "/publish"}
	}
	return &publisher{client: http.DefaultClient, url: "http://" + e.addr + "/" + stage + "/@groups/all", signed: true}
}

// publish sends one stamped message and returns the stamp and counts.
func (p *publisher) publish(pad int) (t int64, delivered, skipped int, err error) {
	t = time.Now().UnixNano()
	body := stampedBody(t, pad)
	var b []byte
	if p.signed {
		b, err = signedPost(p.client, p.url, body)
	} else {
		var resp *http.Response
		resp, err = p.client.Post(p.url, "application/json", strings.NewReader(string(body)))
		if err == nil {
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}
	if err != nil {
		return t, 0, 0, err
	}
	var out struct{ Delivered, Skipped int }
	err = json.Unmarshal(b, &out)
	return t, out.Delivered, out.Skipped, err
}

// arm has the workers signal when their readers have seen perConn frames
// per reading connection, so that the gather after a publish waits without
// running anything in the client processes meanwhile. Call it before the
// measured window opens.
func (e *env) arm(perConn int64) error {
	_, err := e.each(func(i int, w *child) (reply, error) {
		return w.call(command{Op: "arm", Expect: perConn * int64(e.sizes[i]-e.slow[i])})
	})
	return err
}

// gather waits until the workers' readers saw expect frames in all, and
// merges what each recorded per stamp.
// perConn is the number of frames each of a worker's reading connections
// should get.
func (e *env) gather(perConn int64, samples bool, timeout float64) (map[int64]pubStat, []int64, int64, error) {
	rs, err := e.each(func(i int, w *child) (reply, error) {
		share := perConn * int64(e.sizes[i]-e.slow[i])
		return w.call(command{Op: "collect", Expect: share, Timeout: timeout, Samples: samples})
	})
	e.gathered = rs
	pubs := map[int64]pubStat{}
	var lat []int64
	var total int64
	for _, r := range rs {
		total += r.Count
		lat = append(lat, r.Lat...)
		for t, s := range r.Pubs {
			ps := pubs[t]
			ps.Count += s.Count
			ps.Last = max(ps.Last, s.Last)
			pubs[t] = ps
		}
	}
	return pubs, lat, total, err
}

// fanout: one publish to N members, wsgate beside the raw-write floor.
// Three servers hold their N connections at once, each with its own client
// processes: the floor writing in the order it accepted the connections,
// the floor writing in a random order (wsgate writes a group in the order
// of its random connection ids, and with the clients on this machine the
// order alone moves the floor's cost), and wsgate. The publishes rotate
// between them, so whatever else loads the machine lands on all alike:
// the ratios are measured within seconds, not across runs. With -against,
// a fourth side is another build's wsgate ("wsgate (against)"), for
// before/after ratios measured the same way. The client processes are
// armed before each publish (env.arm), so between the publish and its
// last delivery they only read frames.
func (o *orch) fanout(run int) ([]Metric, error) {
	sizes := []int{1000, 10000}
	if o.Small {
		sizes = []int{40}
	}
	var ms []Metric
	for _, n := range sizes {
		m, err := o.fanoutPair(run, n)
		ms = append(ms, m...)
		if err != nil {
			return ms, err
		}
	}
	return ms, nil
}

// fanSide is one server of the fan-out comparison and what its publishes
// measured.
type fanSide struct {
	name string
	e    *env
	pub  *publisher
	raw  bool

	lasts              []float64 // ms from publish to last delivery, single publishes
	firsts, halves     []float64 // ms to the first delivery and to half of them
	server, clients    float64   // CPU seconds over the single publishes
	rates, burstServer []float64 // per burst: deliveries/s, server CPU µs per delivery
}

// cpu returns the CPU seconds of s's server and of its clients so far.
func (s *fanSide) cpu() (server, clients float64) {
	for _, srv := range s.e.servers() {
		server += procCPUExact(srv.pid())
	}
	for _, w := range s.e.workers {
		clients += procCPUExact(w.pid())
	}
	return server, clients
}

// The fan-out sides: wsgate is this build; against is Options.Against's.
const (
	sideWsgate  = "wsgate"
	sideAgainst = "wsgate (against)"
	sideFloor   = "floor"
	sideRandom  = "floor (random order)"
)

// fanoutEnv starts a server with n reading members for side name.
func (o *orch) fanoutEnv(n int, name string) (*fanSide, error) {
	raw := name == sideFloor || name == sideRandom
	var args []string
	if name == sideRandom {
		args = []string{"-random"}
	}
	exe := o.Exe
	if name == sideAgainst {
		exe = o.Against
	}
	e, err := o.newEnvFrom(exe, raw, nil, args...)
	if err != nil {
		return nil, err
	}
	s := &fanSide{name: name, e: e, pub: e.publisher(raw), raw: raw}
	join := "all"
	if raw {
		join = ""
	}
	if _, _, _, err := e.dial(n, command{Conc: 16, Join: join, Read: true}); err != nil {
		e.close()
		return nil, err
	}
	if raw {
		// Wait for the raw server to hold every connection.
		for range 500 {
			resp, err := http.Get("http://" + e.debug + "/count")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) == fmt.Sprint(n) {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return s, nil
}

const fanoutPad = 64

// single publishes once and records the time to the last delivery and
// the CPU it took.
func (s *fanSide) single(n int) error {
	k0 := readNetCounters()
	if err := s.e.arm(1); err != nil {
		return err
	}
	s0, c0 := s.cpu()
	t, delivered, _, err := s.pub.publish(fanoutPad)
	if err != nil {
		return err
	}
	pubs, lat, total, err := s.e.gather(1, true, 10)
	if err != nil {
		return err
	}
	s1, c1 := s.cpu()
	if delivered != n || total != int64(n) {
		return fmt.Errorf("fanout N=%d %s: publish delivered %d, clients got %d in 10 s, want %d%s",
			n, s.name, delivered, total, n, s.e.shortfall(k0, t, 1, 60*time.Second))
	}
	s.lasts = append(s.lasts, float64(pubs[t].Last-t)/1e6)
	slices.Sort(lat)
	s.firsts = append(s.firsts, float64(lat[0])/1e6)
	s.halves = append(s.halves, float64(lat[len(lat)/2])/1e6)
	s.server += s1 - s0
	s.clients += c1 - c0
	return nil
}

// burst publishes count times back to back and records the deliveries/s
// until the last frame arrives and the server CPU per delivery.
func (s *fanSide) burst(n, count int) error {
	k0 := readNetCounters()
	if err := s.e.arm(int64(count)); err != nil {
		return err
	}
	s0, _ := s.cpu()
	var first int64
	for i := range count {
		t, _, _, err := s.pub.publish(fanoutPad)
		if err != nil {
			return err
		}
		if i == 0 {
			first = t
		}
	}
	pubs, _, total, err := s.e.gather(int64(count), false, 30)
	if err != nil {
		return err
	}
	s1, _ := s.cpu()
	if total != int64(n*count) {
		return fmt.Errorf("fanout N=%d %s: burst: clients got %d in 30 s, want %d%s",
			n, s.name, total, n*count, s.e.shortfall(k0, first, int64(count), 60*time.Second))
	}
	var end int64
	for _, p := range pubs {
		end = max(end, p.Last)
	}
	s.rates = append(s.rates, float64(total)/(float64(end-first)/1e9))
	s.burstServer = append(s.burstServer, (s1-s0)/float64(total)*1e6)
	return nil
}

// fanoutPair measures wsgate and the floors for n members, in turn.
func (o *orch) fanoutPair(run, n int) ([]Metric, error) {
	var sides []*fanSide
	defer func() {
		for _, s := range sides {
			s.e.close()
		}
	}()
	names := []string{sideFloor, sideRandom, sideWsgate}
	if o.Against != "" {
		names = append(names, sideAgainst)
	}
	for _, name := range names {
		s, err := o.fanoutEnv(n, name)
		if err != nil {
			return nil, err
		}
		sides = append(sides, s)
	}
	floor, random, gate := sides[0], sides[1], sides[2]
	ours := func() float64 {
		var sum float64
		for _, s := range sides {
			srv, cl := s.cpu()
			sum += srv + cl
		}
		return sum
	}
	b0, t0 := machineTicks()
	own0, start := ours(), time.Now()
	// Rounds in rotating order, so no side always goes first.
	for i := range o.size(12, 2) {
		for k := range sides {
			s := sides[(i+k)%len(sides)]
			if err := s.single(n); err != nil {
				return nil, err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	burst := o.size(20, 3)
	for i := range o.size(4, 1) {
		for k := range sides {
			if err := sides[(i+k)%len(sides)].burst(n, burst); err != nil {
				return nil, err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	elapsed := time.Since(start).Seconds()
	b1, t1 := machineTicks()
	own := ours() - own0

	var ms []Metric
	p := fmt.Sprintf("N=%d ", n)
	for _, s := range sides {
		singles := float64(n * len(s.lasts))
		ms = append(ms,
			Metric{p + s.name + ": time to last delivery", "ms", Median(s.lasts)},
			Metric{p + s.name + ": time to last delivery, min", "ms", slices.Min(s.lasts)},
			Metric{p + s.name + ": time to last delivery, max", "ms", slices.Max(s.lasts)},
			Metric{p + s.name + ": time to first delivery", "ms", Median(s.firsts)},
			Metric{p + s.name + ": time to half delivered", "ms", Median(s.halves)},
			Metric{p + s.name + ": single: server CPU per delivery", "µs", s.server / singles * 1e6},
			Metric{p + s.name + ": single: clients CPU per delivery", "µs", s.clients / singles * 1e6},
			Metric{p + s.name + ": burst deliveries/s", "/s", Median(s.rates)},
			Metric{p + s.name + ": burst: server CPU per delivery", "µs", Median(s.burstServer)},
		)
	}
	for _, f := range []*fanSide{floor, random} {
		q := p + "wsgate/" + f.name + ": "
		ms = append(ms,
			Metric{q + "time to last delivery", "×", Median(gate.lasts) / Median(f.lasts)},
			Metric{q + "single: server CPU per delivery", "×", gate.server / f.server},
			Metric{q + "burst deliveries/s", "×", Median(gate.rates) / Median(f.rates)},
			Metric{q + "burst: server CPU per delivery", "×", Median(gate.burstServer) / Median(f.burstServer)},
		)
	}
	if len(sides) == 4 {
		a := sides[3]
		q := p + "wsgate/" + a.name + ": "
		ms = append(ms,
			Metric{q + "time to last delivery", "×", Median(gate.lasts) / Median(a.lasts)},
			Metric{q + "single: server CPU per delivery", "×", gate.server / a.server},
			Metric{q + "single: clients CPU per delivery", "×", gate.clients / a.clients},
			Metric{q + "burst deliveries/s", "×", Median(gate.rates) / Median(a.rates)},
			Metric{q + "burst: server CPU per delivery", "×", Median(gate.burstServer) / Median(a.burstServer)},
		)
		for _, f := range []*fanSide{floor, random} {
			ms = append(ms, Metric{p + a.name + "/" + f.name + ": time to last delivery", "×", Median(a.lasts) / Median(f.lasts)})
		}
	}
	if t1 > t0 {
		busy := float64(b1-b0) / float64(t1-t0) * float64(runtime.NumCPU()) * elapsed
		ms = append(ms, Metric{p + "other processes' CPU (of one core)", "%", (busy - own) / elapsed * 100})
	}

	// Profile: keep publishing for 3 s (not measured).
	gate.e.profile(fmt.Sprintf("fanout-%d-1", n), run, 3, func() {
		stop := time.Now().Add(3 * time.Second)
		for time.Now().Before(stop) {
			if _, _, _, err := gate.pub.publish(fanoutPad); err != nil {
				return
			}
			_, _, _, _ = gate.e.gather(1, false, 5)
		}
	})
	return ms, nil
}

// fanoutRun publishes to the n members of group all (or the raw floor's
// connections): single publishes, then a burst. It returns the median
// single-publish time to last delivery (ms) and the burst deliveries/s
// beside its metrics, named with prefix p. In a cluster the publish
// enters at the first node and its answer counts that node's members only.
func (e *env) fanoutRun(run, n int, p string, raw bool) ([]Metric, float64, float64, error) {
	o := e.o
	pub := e.publisher(raw)
	const pad = 64
	// Single publishes: time from publish start to the last delivery.
	var lasts []float64
	for range o.size(5, 2) {
		k0 := readNetCounters()
		t, delivered, _, err := pub.publish(pad)
		if err != nil {
			return nil, 0, 0, err
		}
		pubs, _, total, err := e.gather(1, false, 10)
		if err != nil {
			return nil, 0, 0, err
		}
		if (len(e.addrs) <= 1 && delivered != n) || total != int64(n) {
			return nil, 0, 0, fmt.Errorf("%spublish delivered %d, clients got %d in 10 s, want %d%s",
				p, delivered, total, n, e.shortfall(k0, t, 1, 60*time.Second))
		}
		lasts = append(lasts, float64(pubs[t].Last-t)/1e6)
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lasts)
	last := lasts[len(lasts)/2]

	// Burst: publishes back to back; deliveries/s until the last arrives.
	burst := o.size(20, 3)
	var first, published int64
	var (
		pubs  map[int64]pubStat
		total int64
		err   error
	)
	stopTrace := e.traceBurst(fmt.Sprintf("burst-%d-%d", n, len(e.addrs)), run)
	sv0, cl0 := tallyProcs(e.servers()), tallyProcs(e.workers)
	u := e.measure(func() {
		for i := range burst {
			t, _, _, perr := pub.publish(pad)
			if perr != nil {
				err = perr
				return
			}
			if i == 0 {
				first = t
			}
		}
		published = time.Now().UnixNano()
		pubs, _, total, err = e.gather(int64(burst), false, 30)
	})
	sv, cl := tallyProcs(e.servers()).sub(sv0), tallyProcs(e.workers).sub(cl0)
	stopTrace()
	if err != nil {
		return nil, 0, 0, err
	}
	var end int64
	for _, s := range pubs {
		end = max(end, s.Last)
	}
	rate := float64(total) / (float64(end-first) / 1e9)

	// Profile: keep publishing for 3 s (not measured).
	if !raw {
		e.profile(fmt.Sprintf("fanout-%d-%d", n, len(e.addrs)), run, 3, func() {
			stop := time.Now().Add(3 * time.Second)
			for time.Now().Before(stop) {
				if _, _, _, err := pub.publish(pad); err != nil {
					return
				}
				_, _, _, _ = e.gather(1, false, 5)
			}
		})
	}
	if dir := os.Getenv("WSGATE_BENCH_BURSTPERF"); dir != "" && run == 0 && !raw {
		e.burstPerf(dir, fmt.Sprintf("burst-%d-%d", n, len(e.addrs)), burst, pad, pub)
	}
	ms := []Metric{
		{p + "time to last delivery", "ms", last},
		{p + "single-publish deliveries/s", "/s", float64(n) / (last / 1e3)},
		{p + "burst deliveries/s", "/s", rate},
	}
	ms = append(ms, u.metrics(p+"burst: ", int64(n*burst), "delivery")...)
	return append(ms, burstTallies(p+"burst: ", float64(total), float64(published-first)/1e6, sv, cl)...), last, rate, nil
}

// burstTallies are a burst's figures per delivery from the processes'
// counters (procTally): the servers' write and the clients' read system
// calls, everyone's context switches and CPU from schedstat (exact; the
// 10 ms ticks of the figures above are coarse for a window of 0.2 s).
// Measurement only: why a burst's rate is what it is, not the rate.
func burstTallies(p string, deliveries, publishing float64, sv, cl procTally) []Metric {
	if deliveries <= 0 {
		return nil
	}
	per := func(v float64) float64 { return v / deliveries }
	return []Metric{
		{p + "publishing time (first publish to last answer)", "ms", publishing},
		{p + "server writes per delivery", "", per(float64(sv.writes))},
		{p + "server reads per delivery", "", per(float64(sv.reads))},
		{p + "clients reads per delivery", "", per(float64(cl.reads))},
		{p + "server voluntary switches per 1,000 deliveries", "", per(float64(sv.voluntary)) * 1000},
		{p + "server involuntary switches per 1,000 deliveries", "", per(float64(sv.involuntary)) * 1000},
		{p + "clients voluntary switches per 1,000 deliveries", "", per(float64(cl.voluntary)) * 1000},
		{p + "clients involuntary switches per 1,000 deliveries", "", per(float64(cl.involuntary)) * 1000},
		{p + "server CPU per delivery (schedstat)", "µs", per(sv.cpu) * 1e6},
		{p + "clients CPU per delivery (schedstat)", "µs", per(cl.cpu) * 1e6},
	}
}

// slow: fan-out latency for healthy members while 1% never read.
func (o *orch) slow(run int) ([]Metric, error) {
	n := o.size(1000, 100)
	var ms []Metric
	for _, slowN := range []int{0, n / 100} {
		e, err := o.newEnv(false, func(cfg map[string]any, _ string) {
			cfg["outboundQueueFrames"] = 64
			cfg["slowConsumerSeconds"] = 2
			cfg["sendBufferBytes"] = 16384
		})
		if err != nil {
			return ms, err
		}
		m, err := o.slowAt(e, n, slowN)
		e.close()
		ms = append(ms, m...)
		if err != nil {
			return ms, err
		}
	}
	return ms, nil
}

func (o *orch) slowAt(e *env, n, slowN int) ([]Metric, error) {
	if _, _, _, err := e.dial(n, command{Conc: 16, Join: "all", Read: true, Slow: slowN}); err != nil {
		return nil, err
	}
	pub := e.publisher(false)
	rate, dur := 40.0, o.secs(6, 0.5)
	count := int(rate * dur)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var stamps []int64
	var skipped, delivered int
	for i := range count {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		t, d, s, err := pub.publish(2048)
		if err != nil {
			return nil, err
		}
		stamps = append(stamps, t)
		delivered += d
		skipped += s
	}
	pubs, lat, _, err := e.gather(int64(count), true, 10)
	if err != nil {
		return nil, err
	}
	var perPub []int64
	for _, t := range stamps {
		perPub = append(perPub, pubs[t].Last-t)
	}
	p := fmt.Sprintf("%d slow of %d: ", slowN, n)
	ms := []Metric{{p + "skipped deliveries", "", float64(skipped)}}
	ms = append(ms, latencyMetrics(p+"delivery ", lat)...)
	ms = append(ms, latencyMetrics(p+"publish→last healthy ", perPub)...)
	return ms, nil
}

// aged: a publish to connections older than the write timeout. Every
// connection's first write (the 101 answer) sets a write deadline; a later
// write must not inherit it. Reported as a share, not an error, so the
// figure shows the regression and its fix.
func (o *orch) aged(run int) ([]Metric, error) {
	n := o.size(1000, 20)
	e, err := o.newEnv(false, func(cfg map[string]any, _ string) { cfg["writeTimeoutSeconds"] = 1 })
	if err != nil {
		return nil, err
	}
	defer e.close()
	if _, _, _, err := e.dial(n, command{Conc: 16, Join: "all", Read: true}); err != nil {
		return nil, err
	}
	time.Sleep(1500 * time.Millisecond) // past writeTimeoutSeconds
	pub := e.publisher(false)
	t, delivered, _, err := pub.publish(64)
	if err != nil {
		return nil, err
	}
	pubs, _, total, _ := e.gather(1, false, 3)
	ms := []Metric{
		{"publish answered delivered", "%", float64(delivered) / float64(n) * 100},
		{"frames received", "%", float64(total) / float64(n) * 100},
	}
	if e.debug != "" {
		time.Sleep(200 * time.Millisecond)
		st, _ := e.stats(false)
		ms = append(ms, Metric{"connections still open", "%", float64(st.Conns) / float64(n) * 100})
	}
	if total > 0 {
		ms = append(ms, Metric{"time to last delivery", "ms", float64(pubs[t].Last-t) / 1e6})
	}
	return ms, nil
}
