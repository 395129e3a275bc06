//go:build linux

package gateway

import (
	"syscall"
	"testing"
)

// TestLowerThread: a burst's flusher thread runs burstNice below the
// process while lowered, and raise puts it back (when the process may
// raise a priority; otherwise the thread stays lowered and locked, and
// ends with its goroutine).
func TestLowerThread(t *testing.T) {
	nice := func() int { // this thread's nice value
		p, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
		if err != nil {
			t.Error(err)
		}
		return 20 - p
	}
	type seen struct {
		before, lowered, after int
		raised                 bool
	}
	got := make(chan seen)
	go func() {
		var s seen
		s.before = nice()
		raise := lowerThread()
		s.lowered = nice() // locked: the same thread
		s.raised = raise()
		s.after = nice() // still the same thread: raise unlocks only at its end
		got <- s
	}()
	s := <-got
	if want := s.after == s.before; s.raised != want {
		t.Fatalf("raise reported %v with nice %d after, %d before", s.raised, s.after, s.before)
	}
	if s.lowered != min(s.before+burstNice, 19) {
		t.Fatalf("lowered to nice %d from %d, want +%d", s.lowered, s.before, burstNice)
	}
	// Raising needs CAP_SYS_NICE or RLIMIT_NICE; without them the thread
	// stays lowered (and locked, so it ends with the goroutine).
	if s.after != s.before && s.after != s.lowered {
		t.Fatalf("after raise nice %d, want %d (or %d unprivileged)", s.after, s.before, s.lowered)
	}
}
