package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// burstPerf repeats the burst (publishes back to back, then the gather)
// for a few seconds while `perf record -g` samples the servers and the
// clients, each set into its own file in dir (name-servers.data,
// name-clients.data; `perf report -i FILE` reads them), and `perf stat`
// counts the servers' context switches, CPU migrations and the wake-ups
// they make. It logs the loop's figures per delivery, which are steadier
// than one burst's. Measurement only (WSGATE_BENCH_BURSTPERF=DIR, first
// run): perf slows what it samples, so nothing here is a rate to read.
func (e *env) burstPerf(dir, name string, burst, pad int, pub *publisher) {
	_ = os.MkdirAll(dir, 0o755)
	pids := func(ps []*child) string {
		var s []string
		for _, c := range ps {
			s = append(s, strconv.Itoa(c.pid()))
		}
		return strings.Join(s, ",")
	}
	sv, cl := pids(e.servers()), pids(e.workers)
	start := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		var out bytes.Buffer
		cmd := exec.Command("perf", args...)
		cmd.Stderr, cmd.Stdout = &out, &out
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(e.o.Log, "burst perf %s: %v\n", name, err)
			return nil, &out
		}
		return cmd, &out
	}
	recS, _ := start("record", "-g", "-F", "997", "-p", sv, "-o", filepath.Join(dir, name+"-servers.data"))
	recC, _ := start("record", "-g", "-F", "997", "-p", cl, "-o", filepath.Join(dir, name+"-clients.data"))
	events := "task-clock,context-switches,cpu-migrations,sched:sched_wakeup,syscalls:sys_enter_nanosleep,syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_read"
	stat, statOut := start("stat", "-x", ",", "-e", events, "-p", sv)
	statC, statCOut := start("stat", "-x", ",", "-e", events, "-p", cl)
	// stopPerf ends every perf process: before the figures are read, or
	// on the way out of a loop that failed.
	stopPerf := sync.OnceFunc(func() {
		for _, c := range []*exec.Cmd{recS, recC, stat, statC} {
			if c != nil {
				_ = c.Process.Signal(os.Interrupt)
				_ = c.Wait()
			}
		}
	})
	defer stopPerf()
	time.Sleep(500 * time.Millisecond) // let perf attach
	sv0, cl0 := tallyProcs(e.servers()), tallyProcs(e.workers)
	var deliveries int64
	var publishing time.Duration
	stop := time.Now().Add(4 * time.Second)
	for time.Now().Before(stop) {
		t0 := time.Now()
		for range burst {
			if _, _, _, err := pub.publish(pad); err != nil {
				fmt.Fprintf(e.o.Log, "burst perf %s: %v\n", name, err)
				return
			}
		}
		publishing += time.Since(t0)
		_, _, total, err := e.gather(int64(burst), false, 30)
		if err != nil {
			fmt.Fprintf(e.o.Log, "burst perf %s: %v\n", name, err)
			return
		}
		deliveries += total
	}
	svT, clT := tallyProcs(e.servers()).sub(sv0), tallyProcs(e.workers).sub(cl0)
	stopPerf()
	for _, m := range burstTallies("", float64(deliveries), float64(publishing)/1e6, svT, clT) {
		fmt.Fprintf(e.o.Log, "burst perf %s: %s = %.4g %s\n", name, m.Name, m.Value, m.Unit)
	}
	fmt.Fprintf(e.o.Log, "burst perf %s: deliveries = %d\n", name, deliveries)
	for who, out := range map[string]*bytes.Buffer{"servers'": statOut, "clients'": statCOut} {
		for line := range strings.Lines(out.String()) {
			f := strings.Split(line, ",")
			if len(f) > 2 {
				v, _ := strconv.ParseFloat(f[0], 64)
				fmt.Fprintf(e.o.Log, "burst perf %s: %s %s per 1,000 deliveries = %.4g\n", name, who, f[2], v/float64(deliveries)*1000)
			}
		}
	}
}
