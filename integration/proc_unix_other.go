//go:build unix && !linux

package integration

import "syscall"

// setParentDeathSignal is Linux-only; elsewhere handlers are killed by Close.
func setParentDeathSignal(*syscall.SysProcAttr) {}

// killTagged needs /proc; elsewhere only the process group is killed.
func killTagged(string) {}
