//go:build linux

package gateway

import (
	"runtime"
	"syscall"
)

// osYield gives the CPU to another runnable thread, of this process or
// another, if one waits (sched_yield(2)); with none it returns at once.
func osYield() { _, _, _ = syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }

// burstNice is how much lower than the process a flusher goroutine's
// thread runs in a burst of publishes (lowerThread).
const burstNice = 10

// lowerThread locks the calling goroutine to its thread and lowers that
// thread's priority by burstNice (setpriority(2) of the thread), so that
// on a busy machine the intake (this process's and any other's: the
// publisher, the HTTP and NATS readers, a cluster's other nodes) and the
// clients run before the burst's writes. raise puts the thread back and
// unlocks it, and reports true; a process that may not raise a priority
// (no CAP_SYS_NICE, RLIMIT_NICE 0) keeps the thread locked instead, and
// the runtime ends it when the goroutine returns: raise reports false,
// and the thread is still lowered. Either way no other goroutine runs on
// a lowered thread.
func lowerThread() (raise func() bool) {
	runtime.LockOSThread()
	tid := syscall.Gettid()
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid) // 20 - nice
	if err != nil || syscall.Setpriority(syscall.PRIO_PROCESS, tid, 20-p+burstNice) != nil {
		runtime.UnlockOSThread()
		return func() bool { return true }
	}
	return func() bool {
		if syscall.Setpriority(syscall.PRIO_PROCESS, tid, 20-p) != nil {
			return false
		}
		runtime.UnlockOSThread()
		return true
	}
}
