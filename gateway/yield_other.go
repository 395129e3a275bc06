//go:build !linux

package gateway

import "runtime"

// osYield lets other goroutines run (sched_yield(2) is Linux's here).
func osYield() { runtime.Gosched() }
