//go:build !linux

package bench

import "time"

// sleepUntil paces a fixed-rate load's sends (runLoad): time.Sleep here
// (Linux's sleeps in nanosleep, see sleep_linux.go).
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }
