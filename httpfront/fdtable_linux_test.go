//go:build linux

package httpfront

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fdTableSize is the kernel's descriptor table size of this process
// (FDSize in /proc/self/status).
func fdTableSize(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

// A serving front has grown the process's descriptor table to the
// descriptor limit (at most maxFDTable) before its first accept, so no
// accept4, read or dup waits for the table to grow while it serves.
func TestServeGrowsFDTable(t *testing.T) {
	tf := startFront(t, nil)
	nc, br := dial(t, tf.addr)
	postThrice(t, nc, br, "/grown")
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if got, want := fdTableSize(t), min(rl.Cur, maxFDTable); got < want {
		t.Fatalf("descriptor table %d entries, want at least %d", got, want)
	}
}
