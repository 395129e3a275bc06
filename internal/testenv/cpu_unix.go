//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// ProcessCPU is the user and system CPU time this process has used: in a
// benchmark, the server and its in-process clients together.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
