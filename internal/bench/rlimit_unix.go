//go:build unix

package bench

import "syscall"

// raiseNofile sets this process's soft limit on open files to the hard
// limit. Go raises it at start-up too (to the hard limit minus one), but
// restores the old soft limit in the processes it starts; a limit the
// program sets itself is inherited, so every role and a wsgate binary
// started as the server get the full limit.
func raiseNofile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
