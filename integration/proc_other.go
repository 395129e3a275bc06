//go:build !unix

package integration

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the handler process; without process groups its
// own children are not reached.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

// killTagged needs /proc; elsewhere only the handler itself is killed.
func killTagged(string) {}
