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

// stallProbe (-stall-probe) tells the machine's stalls from a server's.
// Per CPU it runs two threads pinned to it that sleep to an absolute
// deadline every probeEvery and note each wake-up later than probeLate:
//
//   - one SCHED_FIFO at priority 99 (above the lean client's 2 and the
//     servers' 1 under -server-fifo, so no thread of the guest's ordinary
//     or real-time classes holds it off): it is late only when its CPU
//     ran nothing of the guest's: the hypervisor had the virtual CPU off
//     its host CPU, or the kernel ran with preemption off (interrupts,
//     softirqs, a non-preemptible section);
//   - one ordinary (SCHED_OTHER, nice 0) like a server's threads: it is
//     late also when other processes had its CPU, as a server's thread
//     would be.
//
// A slow POST episode that a real-time stall covers was the machine's;
// one that only the ordinary thread's delay covers was the CPU's
// contention (other processes, the client); one that neither covers was
// the server's own or its kernel's.
type stallProbe struct {
	stop atomic.Bool
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []stall
}

// stall is one late wake-up of the probe: its deadline (unix ns), its CPU
// and how late it woke (ns); a real-time thread's (ordinary false) says
// the CPU ran nothing of the guest's over about [at, at+late].
type stall struct {
	at, late int64
	cpu      int
	ordinary bool
}

const (
	probeEvery = time.Millisecond
	probeLate  = time.Millisecond
)

// startStallProbe starts the probe's threads; nil when one could not be
// made real-time (no CAP_SYS_NICE) or pinned.
func startStallProbe() *stallProbe {
	p := &stallProbe{}
	n := 2 * runtime.NumCPU()
	ok := make(chan bool, n)
	for i := range n {
		cpu, ordinary := i/2, i%2 == 1
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			// Locked for good: the thread, pinned (and real-time), ends
			// with its goroutine instead of serving others.
			runtime.LockOSThread()
			if pinThread(cpu) != nil || !ordinary && fifoThread(0, 99) != nil {
				ok <- false
				return
			}
			ok <- true
			p.run(cpu, ordinary)
		}()
	}
	for range n {
		if !<-ok {
			p.stop.Store(true)
			p.wg.Wait()
			return nil
		}
	}
	return p
}

func (p *stallProbe) run(cpu int, ordinary bool) {
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
			p.got = append(p.got, stall{at: next, late: late, cpu: cpu, ordinary: ordinary})
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
