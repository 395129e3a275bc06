//go:build linux

package bench

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// stallProbe (-stall-probe) tells the machine's stalls from a server's:
// one thread per CPU, pinned to it and SCHED_FIFO at priority 99 (above
// the lean client's 2 and the servers' 1 under -server-fifo, so no
// process of the guest's ordinary or real-time classes holds it off),
// sleeps to an absolute deadline every probeEvery and notes each wake-up
// later than probeLate. A thread so placed is late only when its CPU ran
// nothing of the guest's: the hypervisor had the virtual CPU off its
// host CPU, or the kernel ran with preemption off (interrupts, softirqs,
// a non-preemptible section). A slow POST episode that such a stall
// covers was the machine's; one that none covers was the server's, the
// client's or the scheduler's.
type stallProbe struct {
	stop atomic.Bool
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []stall
}

// stall is one late wake-up of the probe: its deadline (unix ns), its CPU
// and how late it woke (ns): the CPU ran nothing of the guest's over
// about [at, at+late].
type stall struct {
	at, late int64
	cpu      int
}

const (
	probeEvery = time.Millisecond
	probeLate  = time.Millisecond
)

// startStallProbe starts the probe's threads; nil when the first could
// not be made real-time (no CAP_SYS_NICE).
func startStallProbe() *stallProbe {
	p := &stallProbe{}
	ok := make(chan bool, runtime.NumCPU())
	for cpu := range runtime.NumCPU() {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			// Locked for good: the thread, real-time and pinned, ends
			// with its goroutine instead of serving others.
			runtime.LockOSThread()
			if pinThread(cpu) != nil || fifoThread(0, 99) != nil {
				ok <- false
				return
			}
			ok <- true
			p.run(cpu)
		}()
	}
	for range runtime.NumCPU() {
		if !<-ok {
			p.stop.Store(true)
			p.wg.Wait()
			return nil
		}
	}
	return p
}

func (p *stallProbe) run(cpu int) {
	every := int64(probeEvery)
	next := time.Now().UnixNano() + every
	for !p.stop.Load() {
		ts := syscall.NsecToTimespec(next)
		for {
			// clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME): the deadline is
			// the clients' clock, so stalls and episodes line up.
			_, _, e := syscall.Syscall6(syscall.SYS_CLOCK_NANOSLEEP, 0, 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
			if e != syscall.EINTR {
				break
			}
		}
		now := time.Now().UnixNano()
		if late := now - next; late > int64(probeLate) {
			p.mu.Lock()
			p.got = append(p.got, stall{at: next, late: late, cpu: cpu})
			p.mu.Unlock()
		}
		next += every
		if now > next {
			next += (now - next + every - 1) / every * every
		}
	}
}

// end stops the probe and returns its stalls.
func (p *stallProbe) end() []stall {
	if p == nil {
		return nil
	}
	p.stop.Store(true)
	p.wg.Wait()
	return p.got
}

// pinThread pins the calling thread to cpu (sched_setaffinity).
func pinThread(cpu int) error {
	var set [16]uint64
	if cpu >= len(set)*64 {
		return syscall.EINVAL
	}
	set[cpu/64] |= 1 << (cpu % 64)
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(set), uintptr(unsafe.Pointer(&set)))
	if e != 0 {
		return e
	}
	return nil
}
