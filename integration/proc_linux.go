package integration

import "syscall"

// setParentDeathSignal makes the kernel kill the handler if wsgate dies
// without closing the integration, so no handler outlives the gateway.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
