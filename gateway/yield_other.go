//go:build !linux

package gateway

import "runtime"

// osYield lets other goroutines run (sched_yield(2) is Linux's here).
func osYield() { runtime.Gosched() }

// lowerThread does nothing outside Linux (see yield_linux.go).
func lowerThread() (raise func() bool) { return func() bool { return true } }
