package testenv

import (
	"syscall"
	"time"
)

// ProcessCPU is the user and kernel CPU time this process has used: in a
// benchmark, the server and its in-process clients together.
func ProcessCPU() time.Duration {
	var creation, exit, kernel, user syscall.Filetime
	p, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0
	}
	if syscall.GetProcessTimes(p, &creation, &exit, &kernel, &user) != nil {
		return 0
	}
	// kernel and user are durations in 100 ns units, not dates.
	ticks := func(f syscall.Filetime) int64 { return int64(f.HighDateTime)<<32 | int64(f.LowDateTime) }
	return time.Duration((ticks(kernel) + ticks(user)) * 100)
}
