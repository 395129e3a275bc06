package bench

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// The handshake and POST scenarios measure wsgate beside the machine's
// floors (floor.go) in the same run, so that the ratio, not the absolute
// figure, is what carries over between machines and loads.

// Handshake floor sides.
const (
	sideFloorGo  = "floor (go)"
	sideFloorRaw = "floor (raw)"
)

// handshake: wsgate beside the handshake floors, without $connect and
// with an http $connect.
func (o *orch) handshake(run int) ([]Metric, error) {
	var ms []Metric
	for _, withConnect := range []bool{false, true} {
		m, err := o.handshakeRotation(run, withConnect)
		ms = append(ms, m...)
		if err != nil {
			return ms, err
		}
	}
	return ms, nil
}

// hsSide is one server of the handshake comparison and what its chunks
// of handshakes cost.
type hsSide struct {
	name    string
	e       *env
	n       int
	elapsed time.Duration
	server  float64 // CPU seconds of the server over its chunks
	backend float64
	clients float64
	ops     int64 // floors: handshakes they counted
	sys     int64 // the raw floor: system calls over its chunks, by its own count
	// user and kernel CPU seconds of the server (/proc/PID/stat, 10 ms
	// ticks), for the split only
	user, kernel float64
	perf         int64 // with Options.Syscalls: the server's system calls (perf)
	perfOps      int   // handshakes in the chunks perf counted
}

// chunk dials n more connections (held open) and adds what they cost.
func (s *hsSide) chunk(n int, profile func(load func())) error {
	var st0 floorStats
	if s.e.side != "" {
		var err error
		if st0, err = statsOf(s.e.side); err != nil {
			return err
		}
	}
	cpu := func() (srv, back, cl float64) {
		srv = procCPUExact(s.e.srv.pid())
		if s.e.backend != nil {
			back = procCPUExact(s.e.backend.pid())
		}
		for _, w := range s.e.workers {
			cl += procCPUExact(w.pid())
		}
		return srv, back, cl
	}
	var counter *syscallCounter
	if s.e.o.Syscalls {
		var err error
		if counter, err = countSyscalls(s.e.srv.pid()); err != nil {
			return err
		}
	}
	u0, k0, _ := procUserSys(s.e.srv.pid())
	srv0, back0, cl0 := cpu()
	var elapsed time.Duration
	var err error
	profile(func() { elapsed, _, _, err = s.e.dial(n, command{Conc: 16}) })
	srv1, back1, cl1 := cpu()
	u1, k1, _ := procUserSys(s.e.srv.pid())
	if counter != nil {
		s.perf += counter.stop() // a chunk perf missed counts as none: see perfOps
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if counter != nil && s.perf > 0 {
		s.perfOps += n
	}
	s.user += u1 - u0
	s.kernel += k1 - k0
	s.n += n
	s.elapsed += elapsed
	s.server += srv1 - srv0
	s.backend += back1 - back0
	s.clients += cl1 - cl0
	if s.e.side != "" {
		// A floor counts a handshake just after its 101 is written: the
		// client may have read it first.
		var st1 floorStats
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if st1, err = statsOf(s.e.side); err != nil {
				return err
			}
			if st1.Ops-st0.Ops >= int64(n) || time.Now().After(deadline) {
				break
			}
		}
		s.ops += st1.Ops - st0.Ops
		s.sys += st1.Syscalls - st0.Syscalls
	}
	return nil
}

// handshakeRotation holds wsgate and both floors at once, each with its
// own client processes, and has them accept the same number of
// connections in chunks, in rotating order, so that whatever else loads
// the machine lands on all alike. Server CPU is the threads' run time
// (schedstat), exact per chunk.
func (o *orch) handshakeRotation(run int, withConnect bool) ([]Metric, error) {
	n, rounds := o.size(6000, 40), o.size(6, 2)
	label := "no $connect: "
	var extra func(map[string]any, string)
	if withConnect {
		label = "http $connect: "
		extra = func(cfg map[string]any, backend string) {
			cfg["routes"].(map[string]any)["$connect"] = map[string]any{
				"integration": map[string]any{"type": "http", "uri": backend + "/connect"},
			}
		}
	}
	var sides []*hsSide
	defer func() {
		for _, s := range sides {
			s.e.close()
		}
	}()
	for _, name := range []string{sideWsgate, sideFloorGo, sideFloorRaw} {
		var e *env
		var err error
		switch name {
		case sideWsgate:
			e, err = o.newEnv(false, extra)
		case sideFloorGo:
			e, err = o.newFloorEnv("hs-go", withConnect)
		default:
			e, err = o.newFloorEnv("hs-raw", withConnect)
		}
		if err != nil {
			return nil, err
		}
		sides = append(sides, &hsSide{name: name, e: e})
	}
	own := func() float64 {
		var sum float64
		for _, s := range sides {
			for _, c := range append([]*child{s.e.srv, s.e.backend}, s.e.workers...) {
				if c != nil {
					sum += procCPUExact(c.pid())
				}
			}
		}
		return sum
	}
	b0, t0 := machineTicks()
	own0, start := own(), time.Now()
	for i := range rounds {
		for k := range sides {
			s := sides[(i+k)%len(sides)]
			profile := func(load func()) { load() }
			if s.name == sideWsgate && i == 0 {
				name := "handshake-" + strings.ReplaceAll(strings.TrimSuffix(label, ": "), " ", "-")
				profile = func(load func()) { s.e.profile(name, run, 1, load) }
			}
			if err := s.chunk(n/rounds, profile); err != nil {
				return nil, err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	elapsed := time.Since(start).Seconds()
	b1, t1 := machineTicks()
	ownCPU := own() - own0

	var ms []Metric
	for _, s := range sides {
		fn := float64(s.n)
		q := label + s.name + ": "
		ms = append(ms,
			Metric{q + "handshakes/s", "/s", fn / s.elapsed.Seconds()},
			Metric{q + "server CPU per handshake", "µs", s.server / fn * 1e6},
			Metric{q + "clients CPU per handshake", "µs", s.clients / fn * 1e6},
		)
		if withConnect {
			ms = append(ms, Metric{q + "backend CPU per handshake", "µs", s.backend / fn * 1e6})
		}
		if s.e.side != "" && s.ops != int64(s.n) {
			return ms, fmt.Errorf("%s%s wrote %d answers for %d handshakes", label, s.name, s.ops, s.n)
		}
		if s.user+s.kernel > 0 {
			ms = append(ms, Metric{q + "server CPU in the kernel", "%", s.kernel / (s.user + s.kernel) * 100})
		}
		if s.sys > 0 {
			ms = append(ms, Metric{q + "syscalls per handshake, its own count", "", float64(s.sys) / fn})
		}
		if s.perfOps > 0 {
			ms = append(ms, Metric{q + "syscalls per handshake (perf)", "", float64(s.perf) / float64(s.perfOps)})
		}
	}
	gate := sides[0]
	for _, f := range sides[1:] {
		ms = append(ms, Metric{label + "wsgate/" + f.name + ": server CPU per handshake", "×", gate.server / f.server})
	}
	if t1 > t0 {
		busy := float64(b1-b0) / float64(t1-t0) * float64(runtime.NumCPU()) * elapsed
		ms = append(ms, Metric{label + "other processes' CPU (of one core)", "%", (busy - ownCPU) / elapsed * 100})
	}
	return ms, nil
}

// postBesideFloor runs phase j of the post scenario (rate 0: saturation)
// on wsgate and on the post floor, each on fresh processes, the order
// alternating with j and run, and adds the ratios.
func (o *orch) postBesideFloor(run, j int, rate float64) ([]Metric, error) {
	var gate, floor []Metric
	for k := range 2 {
		isFloor := (run+j+k)%2 == 1
		m, err := o.postAt(run, rate, isFloor)
		if isFloor {
			floor = m
		} else {
			gate = m
		}
		if err != nil {
			return append(gate, floor...), err
		}
	}
	ms := append(gate, floor...)
	p := "saturation: "
	if rate > 0 {
		p = fmt.Sprintf("%.0f/s: ", rate)
	}
	for _, what := range []string{"server CPU per POST", "p99"} {
		g, okG := metricValue(gate, p+what)
		f, okF := metricValue(floor, sideFloor+": "+p+what)
		if okG && okF && f > 0 {
			ms = append(ms, Metric{"wsgate/" + sideFloor + ": " + p + what, "×", g / f})
		}
	}
	return ms, nil
}

// metricValue finds the metric named name.
func metricValue(ms []Metric, name string) (float64, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}
