//go:build !unix

package postgres

import "os/exec"

// runAs is never called here: serverUser asks for another account only
// when the tests run as root, which has no meaning outside Unix.
func runAs(*exec.Cmd, *account) {}
