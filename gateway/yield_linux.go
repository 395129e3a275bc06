//go:build linux

package gateway

import "syscall"

// osYield gives the CPU to another runnable thread, of this process or
// another, if one waits (sched_yield(2)); with none it returns at once.
func osYield() { _, _, _ = syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
