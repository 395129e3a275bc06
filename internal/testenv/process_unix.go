//go:build unix

package testenv

import (
	"errors"
	"fmt"
	"syscall"
)

// ProcessGone reports an error if pid is still a process; a zombie counts,
// so a parent must have reaped it.
func ProcessGone(pid int) error {
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("process %d still exists (kill -0: %v)", pid, err)
	}
	return nil
}
