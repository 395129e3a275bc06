package bench

import (
	"cmp"
	"fmt"
	"strconv"
	"time"
)

// soakShape is the soak scenario's load for the whole run (all workers).
type soakShape struct {
	never, stallers, groups int
	post                    float64 // POSTs/s to members (64-byte pad)
	neverPost               float64 // POSTs/s to each never-reader (neverPad bytes)
	neverPad                int
	ping                    float64 // pings/s from each never-reader
	publish, switches       float64 // group publishes/s; members/s moving to another group
	churn                   float64 // share of members closed and reconnected per second
	stall                   float64 // messages/s to the stalled route
	stallTimeoutMillis      int     // 0: the integration default (29 s)

	every  time.Duration // sampling interval under load
	settle time.Duration // bound on waiting for the server to go back after the load
	poll   time.Duration // sampling interval while settling
}

func (o *orch) soakShape() soakShape {
	if o.Small {
		return soakShape{never: 5, stallers: 10, groups: 8, post: 200, neverPost: 5, neverPad: 32000, ping: 10,
			publish: 10, switches: 10, churn: 0.02, stall: 10, stallTimeoutMillis: 1000,
			every: time.Second, settle: 20 * time.Second, poll: 500 * time.Millisecond}
	}
	return soakShape{never: 5, stallers: 100, groups: 64, post: 1000, neverPost: 5, neverPad: 32000, ping: 10,
		// 50 stalled calls/s for 29 s is 1,450 in flight if nothing bounds
		// them: above the gateway's default maxInflight (1000).
		publish: 20, switches: 20, churn: 0.005, stall: 50,
		every: time.Minute, settle: 3 * time.Minute, poll: 2 * time.Second}
}

// Growth the soak tolerates before it reports a FAIL.
const (
	soakSlackFDs        = 32              // open files (and goroutines) above the baseline after the load
	soakReturn          = 0.5             // share of the growth (heap: ramp-up's; RSS: peak's) to be returned after the load
	soakSteady          = 2 * time.Minute // growth under load is judged over at least this span
	soakRSSSlack        = 16 << 20        // RSS above rssLimit's share after the load
	soakRSSGrowth       = 0.25
	soakRSSGrowthMin    = 32 << 20 // RSS growth under steady load: more than 25 % and 32 MiB
	soakGoroutineGrowth = 0.05     // goroutine growth under steady load (plus the slack)
)

// soakColumns are the series table's columns. Counters are per interval.
var soakColumns = []string{
	"at", "server RSS (MiB)", "Go heap (MiB)", "goroutines", "threads", "open fds", "stalled calls open", "client conns open",
	"POST 2xx", "POST 410", "POST 429", "POST other",
	"publish delivered", "publish skipped", "publish errors", "joins acked",
	"stall msgs sent", "route timeouts", "route throttled", "route other",
	"reconnects", "reconnect failures", "healthy drops", "never-reader closes",
	"frames received", "sends dropped (client busy)",
}

// soakSample is the server's state at one moment.
type soakSample struct {
	at         time.Duration // since the load started
	rss        int64
	heap       int64 // Go heap in use; -1 unknown (the wsgate binary)
	goroutines int   // -1 unknown
	threads    int64
	fds        int
	stalled    int // the stalled backend's connections
}

func (e *env) soakSample(stall *child, stallBase int, gc bool) (soakSample, error) {
	pid := e.srv.pid()
	s := soakSample{heap: -1, goroutines: -1}
	if e.debug != "" {
		st, err := e.stats(gc)
		if err != nil {
			return s, err
		}
		s.heap, s.goroutines = int64(st.HeapInuse), st.Goroutines
	}
	var err error
	if s.rss, err = procRSS(pid); err != nil {
		return s, err
	}
	if s.threads, err = procStatus(pid, "Threads"); err != nil {
		return s, err
	}
	if s.fds, err = procFDs(pid); err != nil {
		return s, err
	}
	n, err := procFDs(stall.pid())
	s.stalled = n - stallBase
	return s, err
}

// fields lists the counters in soakColumns order (after the samples).
func (n *soakCounts) fields() []*int64 {
	return []*int64{&n.Post2xx, &n.Post410, &n.Post429, &n.PostOther,
		&n.PubDelivered, &n.PubSkipped, &n.PubErrors, &n.JoinAcks,
		&n.StallSent, &n.RouteTimeout, &n.RouteThrottled, &n.RouteOther,
		&n.Reconnects, &n.ReconnectFailures, &n.HealthyDrops, &n.NeverCloses,
		&n.Frames, &n.Backlog}
}

// add adds sign times m's counters (and open connections) to n, keeping
// n's first errors.
func (n *soakCounts) add(m soakCounts, sign int64) {
	nf, mf := n.fields(), m.fields()
	for i := range nf {
		*nf[i] += sign * *mf[i]
	}
	n.Open += sign * m.Open
	n.FirstDrop = cmp.Or(n.FirstDrop, m.FirstDrop)
	n.FirstNever = cmp.Or(n.FirstNever, m.FirstNever)
	n.FirstOther = cmp.Or(n.FirstOther, m.FirstOther)
}

func mib(b int64) string {
	if b < 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64)
}

func orNA(v int) string {
	if v < 0 {
		return "n/a"
	}
	return strconv.Itoa(v)
}

// row formats a table row; counters are nil for rows without load.
func soakRow(label string, s soakSample, open int64, counters *soakCounts) []string {
	row := []string{label, mib(s.rss), mib(s.heap), orNA(s.goroutines), strconv.FormatInt(s.threads, 10),
		strconv.Itoa(s.fds), strconv.Itoa(s.stalled), strconv.FormatInt(open, 10)}
	if counters == nil {
		for range len(soakColumns) - len(row) {
			row = append(row, "–")
		}
		return row
	}
	for _, f := range counters.fields() {
		row = append(row, strconv.FormatInt(*f, 10))
	}
	return row
}

// soak: connections held for a long time under mixed load (churn, POSTs,
// group joins and publishes, a stalled backend, clients that never read),
// the server's RSS, goroutines and open files sampled at the start, every
// interval and after the load; growth that does not go back is a FAIL.
func (o *orch) soak(run int) ([]Metric, error) {
	sh := o.soakShape()
	n := cmp.Or(o.SoakConns, o.size(19000, 300))
	dur := cmp.Or(o.SoakDuration, time.Duration(o.secs(600, 4)*float64(time.Second)))
	members := n - sh.never - sh.stallers
	if members < sh.groups {
		return nil, fmt.Errorf("soak: %d connections leave too few members (at least %d more needed)", n, sh.groups-members)
	}

	stall, err := o.start("stall")
	if err != nil {
		return nil, err
	}
	defer stall.kill()
	var sa announce
	if err := stall.read(&sa); err != nil {
		return nil, fmt.Errorf("stall backend: %w", err)
	}
	e, err := o.newEnv(false, func(cfg map[string]any, _ string) {
		routes := cfg["routes"].(map[string]any)
		routes["join"] = map[string]any{
			"groups":                           map[string]any{"join": "$request.body.group", "allow": []string{"soak-*"}},
			"routeResponseSelectionExpression": "$default",
		}
		routes["leave"] = map[string]any{"groups": map[string]any{"leave": "$request.body.group"}}
		integ := map[string]any{"type": "http", "uri": "http://" + sa.Addr + "/stall"}
		if sh.stallTimeoutMillis > 0 {
			integ["timeoutMillis"] = sh.stallTimeoutMillis
		}
		// The stalled route gets its own bound, half the gateway-wide
		// one, so it is throttled before it takes every slot and the
		// other routes (whoami on reconnect) keep theirs.
		integ["maxInflight"] = 500
		routes["stall"] = map[string]any{"integration": integ, "routeResponseSelectionExpression": "$default"}
	})
	if err != nil {
		return nil, err
	}
	defer e.close()

	nw := len(e.workers)
	memberSplit, neverSplit, stallSplit := split(members, nw), split(sh.never, nw), split(sh.stallers, nw)
	// Every process must be allowed the files it will hold.
	need := map[*child]int{e.srv: n + 512, stall: 512}
	for i, w := range e.workers {
		need[w] = memberSplit[i] + neverSplit[i] + stallSplit[i] + 512
	}
	for c, want := range need {
		limit, err := procNofile(c.pid())
		if err != nil {
			return nil, err
		}
		if limit < int64(want) {
			return nil, fmt.Errorf("soak: process %d may open %d files, needs %d (raise ulimit -n)", c.pid(), limit, want)
		}
	}
	srvLimit, _ := procNofile(e.srv.pid())
	stallBase, err := procFDs(stall.pid())
	if err != nil {
		return nil, err
	}

	t := &Table{Columns: soakColumns}
	o.res.Table = t
	sample := func(gc bool) soakSample {
		s, serr := e.soakSample(stall, stallBase, gc)
		if serr != nil && err == nil {
			err = fmt.Errorf("sampling the server: %w", serr)
		}
		return s
	}
	base := sample(true)
	t.Rows = append(t.Rows, soakRow("baseline (no connections)", base, 0, nil))

	// Ramp-up.
	rampStart := time.Now()
	rs, rerr := e.each(func(i int, w *child) (reply, error) {
		frac := func(total float64) float64 { return total * float64(memberSplit[i]) / float64(members) }
		plan := soakPlan{
			Members: memberSplit[i], Never: neverSplit[i], Stallers: stallSplit[i], Groups: sh.groups,
			PostRate: frac(sh.post), NeverPostRate: sh.neverPost * float64(neverSplit[i]), NeverPad: sh.neverPad,
			PingRate: sh.ping, PubRate: frac(sh.publish), SwitchRate: frac(sh.switches),
			ChurnRate: sh.churn * float64(memberSplit[i]),
		}
		if sh.stallers > 0 {
			plan.StallRate = sh.stall * float64(stallSplit[i]) / float64(sh.stallers)
		}
		return w.call(command{Op: "soak-start", Addr: e.addr, Path: "/" + stage, Src: e.src(i), Conc: 16,
			Key: benchKey, Secret: benchSecret, Region: benchRegion, Stage: stage, Soak: &plan})
	})
	if rerr != nil {
		return nil, fmt.Errorf("soak ramp-up: %w", rerr)
	}
	ramp := time.Since(rampStart)
	var opened, dialFailed int64
	var firstDialErr string
	for _, r := range rs {
		opened += r.OK
		dialFailed += r.Errors
		firstDialErr = cmp.Or(firstDialErr, r.FirstEr)
	}
	if dialFailed > 0 {
		fmt.Fprintf(o.Log, "soak ramp-up: %d of %d connections failed (%s); they are retried under load\n", dialFailed, n, firstDialErr)
	}
	start := sample(false)
	t.Rows = append(t.Rows, soakRow(fmt.Sprintf("start (ramp-up %.1f s)", ramp.Seconds()), start, opened, nil))

	// Load, sampled every interval.
	tally := func(op string) (soakCounts, error) {
		rs, err := e.each(func(_ int, w *child) (reply, error) { return w.call(command{Op: op}) })
		var sum soakCounts
		for _, r := range rs {
			if r.Soak != nil {
				sum.add(*r.Soak, 1)
			}
		}
		return sum, err
	}
	if _, err := e.each(func(_ int, w *child) (reply, error) { return w.call(command{Op: "soak-run"}) }); err != nil {
		return nil, fmt.Errorf("soak-run: %w", err)
	}
	loadStart := time.Now()
	var prev, total soakCounts
	var loadRows []soakSample
	var loadErr error
	for k := 1; ; k++ {
		at := min(time.Duration(k)*sh.every, dur)
		time.Sleep(time.Until(loadStart.Add(at)))
		cur, terr := tally("soak-tally")
		s := sample(false)
		s.at = at
		if terr != nil {
			loadErr = fmt.Errorf("soak-tally: %w", terr)
			break
		}
		delta := cur
		delta.add(prev, -1)
		prev = cur
		label := at.Round(time.Second).String()
		if at == dur {
			label += " (end)"
		}
		t.Rows = append(t.Rows, soakRow(label, s, cur.Open, &delta))
		loadRows = append(loadRows, s)
		fmt.Fprintf(o.Log, "soak %s: RSS %s MiB, goroutines %s, fds %d, stalled %d, conns %d\n",
			label, mib(s.rss), orNA(s.goroutines), s.fds, s.stalled, cur.Open)
		if at == dur {
			break
		}
	}

	// Stop, close every connection, wait for the server to go back.
	final, serr := tally("soak-stop")
	total = final
	delta := final
	delta.add(prev, -1)
	stopped := time.Now()
	settled := func(s soakSample) bool {
		return s.fds <= base.fds+soakSlackFDs && s.stalled <= 0 &&
			(s.goroutines < 0 || s.goroutines <= base.goroutines+soakSlackFDs) &&
			s.rss <= rssLimit(base, start, loadRows) && s.heap <= heapLimit(base, start)
	}
	after := sample(true)
	for !settled(after) && time.Since(stopped) < sh.settle {
		time.Sleep(sh.poll)
		after = sample(true)
	}
	took := time.Since(stopped)
	t.Rows = append(t.Rows, soakRow(fmt.Sprintf("after (+%.0f s)", took.Seconds()), after, final.Open, &delta))
	t.Notes = append(t.Notes,
		fmt.Sprintf("Counters are per interval (since the row above); \"after\" counts what completed during the stop. "+
			"%d connections (%d members in %d groups, %d never read, %d on the stalled route), %s of load; "+
			"server open-files limit %d. Goroutines and Go heap come from the server role's side port "+
			"(n/a for the wsgate binary); threads, RSS and open fds from /proc.",
			n, members, sh.groups, sh.never, sh.stallers, dur, srvLimit))
	for _, why := range []struct{ what, first string }{
		{"first healthy drop", total.FirstDrop}, {"first never-reader close", total.FirstNever}, {"first other error", total.FirstOther},
	} {
		if why.first != "" {
			t.Notes = append(t.Notes, why.what+": "+why.first)
		}
	}
	o.res.Fails = append(o.res.Fails, soakFails(base, start, after, loadRows, total, n)...)

	secs := dur.Seconds()
	ms := []Metric{
		{"ramp-up: connections opened", "", float64(opened)},
		{"ramp-up: dials failed", "", float64(dialFailed)},
		{"ramp-up: time", "s", ramp.Seconds()},
		{"RSS: baseline", "MiB", float64(base.rss) / (1 << 20)},
		{"RSS: start", "MiB", float64(start.rss) / (1 << 20)},
		{"RSS: end of load", "MiB", float64(last(loadRows, start).rss) / (1 << 20)},
		{"RSS: after", "MiB", float64(after.rss) / (1 << 20)},
		{"open fds: baseline", "", float64(base.fds)},
		{"open fds: end of load", "", float64(last(loadRows, start).fds)},
		{"open fds: after", "", float64(after.fds)},
		{"settle time", "s", took.Seconds()},
		{"POST 2xx", "/s", float64(total.Post2xx) / secs},
		{"publish deliveries", "/s", float64(total.PubDelivered) / secs},
		{"reconnects", "/s", float64(total.Reconnects) / secs},
		{"reconnect failures", "", float64(total.ReconnectFailures)},
		{"route timeouts", "", float64(total.RouteTimeout)},
		{"route throttled", "", float64(total.RouteThrottled)},
	}
	if base.goroutines >= 0 {
		ms = append(ms,
			Metric{"goroutines: baseline", "", float64(base.goroutines)},
			Metric{"goroutines: end of load", "", float64(last(loadRows, start).goroutines)},
			Metric{"goroutines: after", "", float64(after.goroutines)})
	}
	if serr != nil {
		err = cmp.Or(err, fmt.Errorf("soak-stop: %w", serr))
	}
	return ms, cmp.Or(err, loadErr)
}

func last(rows []soakSample, or soakSample) soakSample {
	if len(rows) == 0 {
		return or
	}
	return rows[len(rows)-1]
}

// heapLimit is the Go heap the server role must be back under after the
// load: the baseline plus half of what the ramp-up added.
func heapLimit(base, start soakSample) int64 {
	return base.heap + int64(soakReturn*float64(max(start.heap-base.heap, 0)))
}

// rssLimit is the RSS the server must be back under after the load: the
// start (every connection open, no load yet) or, when the load's peak was
// higher, the baseline plus half of the peak's growth, plus 16 MiB. Not
// the baseline itself: a Go process keeps freed memory for minutes.
func rssLimit(base, start soakSample, load []soakSample) int64 {
	peak := start.rss
	for _, s := range load {
		peak = max(peak, s.rss)
	}
	return max(start.rss, base.rss+int64(soakReturn*float64(peak-base.rss))) + soakRSSSlack
}

// soakFails returns the growth checks that failed: after the load, open
// files, goroutines, stalled calls and the Go heap must be back near the
// baseline and RSS under rssLimit; under steady load (first interval to
// the last, when they are soakSteady apart) RSS, goroutines and open
// files must not keep growing; no reading connection may be dropped.
func soakFails(base, start, after soakSample, load []soakSample, total soakCounts, n int) []string {
	var f []string
	if after.fds > base.fds+soakSlackFDs {
		f = append(f, fmt.Sprintf("open files not back to baseline: %d after the load, %d at baseline (slack %d)", after.fds, base.fds, soakSlackFDs))
	}
	if after.goroutines >= 0 && after.goroutines > base.goroutines+soakSlackFDs {
		f = append(f, fmt.Sprintf("goroutines not back to baseline: %d after the load, %d at baseline (slack %d)", after.goroutines, base.goroutines, soakSlackFDs))
	}
	if after.stalled > 0 {
		f = append(f, fmt.Sprintf("%d calls to the stalled backend still open after the load", after.stalled))
	}
	if lim := rssLimit(base, start, load); after.rss > lim {
		f = append(f, fmt.Sprintf("RSS not back: %s MiB after the load, baseline %s MiB, start %s MiB (limit %s MiB: the start, or half the peak's growth returned, + 16 MiB)",
			mib(after.rss), mib(base.rss), mib(start.rss), mib(lim)))
	}
	if lim := heapLimit(base, start); after.heap > lim {
		f = append(f, fmt.Sprintf("Go heap not back to baseline: %s MiB after the load, baseline %s MiB, start %s MiB (limit %s MiB: half the ramp-up's growth returned)",
			mib(after.heap), mib(base.heap), mib(start.heap), mib(lim)))
	}
	if len(load) >= 2 && load[len(load)-1].at-load[0].at >= soakSteady {
		first, end := load[0], load[len(load)-1]
		if grow := end.rss - first.rss; grow > max(int64(soakRSSGrowth*float64(first.rss)), soakRSSGrowthMin) {
			f = append(f, fmt.Sprintf("RSS grew under steady load: %s MiB at the first sample, %s MiB at the end", mib(first.rss), mib(end.rss)))
		}
		if end.fds > first.fds+n/100+soakSlackFDs {
			f = append(f, fmt.Sprintf("open files grew under steady load: %d at the first sample, %d at the end", first.fds, end.fds))
		}
		if first.goroutines >= 0 && end.goroutines > first.goroutines+int(soakGoroutineGrowth*float64(first.goroutines))+soakSlackFDs {
			f = append(f, fmt.Sprintf("goroutines grew under steady load: %d at the first sample, %d at the end", first.goroutines, end.goroutines))
		}
	}
	if total.HealthyDrops > 0 {
		f = append(f, fmt.Sprintf("%d reading connections were closed by the server (first: %s)", total.HealthyDrops, total.FirstDrop))
	}
	return f
}
