package integration

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the handler if wsgate dies
// without closing the integration, so no handler outlives the gateway.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// killTagged kills every process whose environment holds the variable
// processTagVar=tag: a handler's descendants inherit it, so this reaches
// those that left its process group or session (setsid, a daemon's double
// fork) and were reparented away from it. It scans /proc until a pass
// finds nothing to kill, so a child forked during one pass is killed in
// the next. Processes that cleared their environment are not found.
func killTagged(tag string) {
	want := []byte("\x00" + processTagVar + "=" + tag + "\x00")
	self := os.Getpid()
	for range 16 { // each pass kills what the previous one missed; a fork bomb gets no more
		if killTaggedOnce(want, self) == 0 {
			return
		}
	}
}

func killTaggedOnce(want []byte, self int) (killed int) {
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + name + "/environ")
		if err != nil || len(env) == 0 {
			continue // gone, another user's, or a zombie (already dead)
		}
		if bytes.Contains(append([]byte{0}, env...), want) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	return killed
}
