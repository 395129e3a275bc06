//go:build !unix

package gateway_test

import "time"

// processCPU is not measured here (BenchmarkFanout reports 0 CPU).
func processCPU() time.Duration { return 0 }
