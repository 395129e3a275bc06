package bench

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// syscallCounter counts a process's system calls with
// `perf stat -e raw_syscalls:sys_enter -p PID` (Options.Syscalls). The
// tracepoint slows every system call of the traced process, so CPU figures
// of a run that counts are not comparable with those of one that does not.
type syscallCounter struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// countSyscalls starts counting pid's system calls.
func countSyscalls(pid int) (*syscallCounter, error) {
	c := &syscallCounter{}
	c.cmd = exec.Command("perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-p", strconv.Itoa(pid))
	c.cmd.Stderr = &c.out
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	time.Sleep(300 * time.Millisecond) // let perf attach before the load
	return c, nil
}

// stop ends the count and returns it; 0 when perf gave none (it missed
// the window, or was refused), which a caller reports as no figure.
func (c *syscallCounter) stop() int64 {
	n, err := c.count()
	if err != nil {
		return 0
	}
	return n
}

func (c *syscallCounter) count() (int64, error) {
	_ = c.cmd.Process.Signal(os.Interrupt)
	_ = c.cmd.Wait()
	// CSV: count,unit,event,...
	for line := range bytes.Lines(c.out.Bytes()) {
		f := bytes.Split(line, []byte(","))
		if len(f) > 2 && bytes.HasPrefix(f[2], []byte("raw_syscalls:sys_enter")) {
			return strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return 0, errors.New("perf stat: no count in " + strconv.Quote(c.out.String()))
}
