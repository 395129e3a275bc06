// Package mono is the process's one origin for monotonic stamps: times
// kept as nanoseconds since Start (8 bytes, where a time.Time is 24),
// read on the monotonic clock, so a step of the wall clock moves none of
// the deadlines, timeouts and ages computed from them.
package mono

import "time"

// Start is the origin of every stamp: the process's start (this
// package's initialisation), with a monotonic reading.
var Start = time.Now()

// Since is the monotonic time since Start.
func Since() time.Duration { return time.Since(Start) }
