//go:build !linux

package bench

import "errors"

// postLean is Linux's (epoll_pwait2); elsewhere the post scenario's
// fixed-rate phases run the goroutine client (-post-client goroutines).
func (w *worker) postLean(command) reply {
	return reply{Err: "the lean POST client runs on Linux only (use -post-client goroutines)"}
}

// fifoProcess (-server-fifo) is Linux's.
func fifoProcess(pid, prio int) error {
	return errors.New("-server-fifo runs on Linux only")
}

// stallProbe (-stall-probe) is Linux's.
type stallProbe struct{}

type stall struct {
	at, late int64
	cpu      int
	ordinary bool
}

func startStallProbe() *stallProbe { return nil }

func (*stallProbe) end() []stall { return nil }
