//go:build linux

package bench

import (
	"syscall"
	"time"
)

// sleepUntil sleeps until at in nanosleep(2), with the thread's timer
// slack at 1 ns for the sleep (PR_SET_TIMERSLACK, the default 50 µs
// after), and paces a fixed-rate load's sends (runLoad). Go's
// time.Sleep sleeps in epoll_wait, whose timeout is in milliseconds: a
// sleep of 7.4 ms lasts 7 ms and then a whole 1 ms more, so a pacer
// woken early by its process's network events sent up to a millisecond
// late, and that lateness counted in the latency measured from the
// scheduled time (the lean POST client's epoll_pwait2 avoids it too).
func sleepUntil(at time.Time) {
	d := time.Until(at)
	if d <= 0 {
		return
	}
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_TIMERSLACK, 1, 0)
	for d > 0 {
		ts := syscall.NsecToTimespec(int64(d))
		if err := syscall.Nanosleep(&ts, nil); err != nil && err != syscall.EINTR {
			time.Sleep(time.Until(at))
			break
		}
		d = time.Until(at)
	}
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_TIMERSLACK, 0, 0)
}
