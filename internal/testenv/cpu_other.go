//go:build !unix && !windows

package testenv

import "time"

// ProcessCPU is not measured here: benchmarks report 0 CPU.
func ProcessCPU() time.Duration { return 0 }
