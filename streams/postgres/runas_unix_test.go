//go:build unix

package postgres

import (
	"os/exec"
	"syscall"
)

// runAs makes cmd run as a.
func runAs(cmd *exec.Cmd, a *account) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}}
}
