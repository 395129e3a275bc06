//go:build unix

package gateway_test

import (
	"syscall"
	"time"
)

// processCPU is the user and system CPU time this process has used: the
// gateway and its in-process clients together.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
