package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user+system CPU seconds pid has used.
func procCPU(pid int) (float64, error) {
	user, sys, err := procUserSys(pid)
	return user + sys, err
}

// procUserSys returns the user and the system CPU seconds pid has used.
func procUserSys(pid int) (user, sys float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return float64(ut) / clockTicks, float64(st) / clockTicks, nil
}

// procRSS returns pid's resident set size in bytes (VmRSS).
func procRSS(pid int) (int64, error) {
	kb, err := procStatus(pid, "VmRSS")
	return kb << 10, err
}

// procStatus returns the number of a /proc/PID/status line ("VmRSS" in
// kB, "Threads").
func procStatus(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// procFDs returns the number of files pid has open.
func procFDs(pid int) (int, error) {
	des, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(des), err
}

// procNofile returns pid's soft limit on open files (/proc/PID/limits).
func procNofile(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if f[0] == "unlimited" {
					return 1 << 62, nil
				}
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no open files limit in /proc/%d/limits", pid)
}

// machineTicks returns the busy and total jiffies of all CPUs together
// (the first line of /proc/stat).
func machineTicks() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	for i, s := range f[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// procCPUExact returns the CPU seconds pid's threads have run, summed from
// /proc/PID/task/*/schedstat (nanoseconds; procCPU counts 10 ms ticks,
// too coarse for one publish). Threads that have exited are not counted;
// a Go process rarely ends one. 0 when it cannot be read.
func procCPUExact(pid int) float64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var ns uint64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		f, _, _ := bytes.Cut(b, []byte{' '})
		v, _ := strconv.ParseUint(string(f), 10, 64)
		ns += v
	}
	return float64(ns) / 1e9
}

// procSwitches returns the context switches of all of pid's threads:
// voluntary (the thread blocked: a wake-up follows each) and involuntary
// (it was preempted), from /proc/PID/task/*/status.
func procSwitches(pid int) (voluntary, involuntary int64, err error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/status")
		if err != nil {
			continue // the thread ended
		}
		for line := range strings.Lines(string(b)) {
			name, value, _ := strings.Cut(line, ":")
			n, _ := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			switch name {
			case "voluntary_ctxt_switches":
				voluntary += n
			case "nonvoluntary_ctxt_switches":
				involuntary += n
			}
		}
	}
	return voluntary, involuntary, nil
}

// procTally is what a set of processes did over a window, from
// /proc/PID/task/*/schedstat (CPU, nanoseconds), /proc/PID/io (syscr,
// syscw: read and write system calls: read, readv, pread, write,
// writev, pwrite; not recvmsg, sendmsg or epoll) and
// /proc/PID/task/*/status (context switches), summed over the processes.
// /proc/PID/io counts the threads that ended too; the per-thread files do
// not, and a Go process seldom ends a thread.
type procTally struct {
	cpu                    float64 // seconds
	reads, writes          int64   // system calls
	voluntary, involuntary int64   // context switches
}

// tallyProcs reads the tally of ps so far.
func tallyProcs(ps []*child) procTally {
	var t procTally
	for _, c := range ps {
		pid := c.pid()
		t.cpu += procCPUExact(pid)
		t.reads += procIO(pid, "syscr")
		t.writes += procIO(pid, "syscw")
		v, i, _ := procSwitches(pid)
		t.voluntary += v
		t.involuntary += i
	}
	return t
}

// sub is t minus an earlier tally t0.
func (t procTally) sub(t0 procTally) procTally {
	return procTally{t.cpu - t0.cpu, t.reads - t0.reads, t.writes - t0.writes,
		t.voluntary - t0.voluntary, t.involuntary - t0.involuntary}
}

// procIO returns one counter of /proc/PID/io (0 when unreadable).
func procIO(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
