//go:build !unix

package testenv

import (
	"fmt"
	"os"
)

// ProcessGone reports an error if pid is still a process: one that can be
// opened (on Windows, a process whose handle someone still holds counts).
func ProcessGone(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	_ = p.Release()
	return fmt.Errorf("process %d still exists", pid)
}
