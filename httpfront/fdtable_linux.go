//go:build linux

package httpfront

import (
	"sync"
	"syscall"
)

// maxFDTable bounds growFDTable: a table of 1<<16 descriptors is 512 KiB
// of kernel memory (a pointer each, and bitmaps).
const maxFDTable = 1 << 16

// growFDTable makes the process's descriptor table, once, as large as
// the descriptor limit (at most maxFDTable): it duplicates a descriptor
// to the highest number allowed and closes the copy. The kernel grows the
// table when a new descriptor first passes a power of two (256, 512,
// 1,024, …), and in a process with more than one thread every growth waits
// for an RCU grace period: 5-15 ms here, inside an accept4, a read of a
// new connection's first head or the keep-alive wait's dup, with its
// thread holding one of the scheduler's Ps until sysmon takes it back.
// During a connection ramp, two such calls held both Ps of a 2-core
// machine for 12-15 ms (BENCHMARKS.md, "the POST p99's stall found",
// session 11). The table never shrinks, so growing it before the first
// accept moves that wait to the start.
func growFDTable() {
	fdTableOnce.Do(func() {
		var rl syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil || rl.Cur < 2 {
			return
		}
		top := min(rl.Cur, maxFDTable) - 1
		src, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return // no /dev/null (a bare chroot): the table grows as it goes
		}
		fd, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(src), syscall.F_DUPFD_CLOEXEC, uintptr(top))
		if e == 0 {
			_ = syscall.Close(int(fd))
		}
		_ = syscall.Close(src)
	})
}

var fdTableOnce sync.Once
