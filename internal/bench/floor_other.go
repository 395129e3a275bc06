//go:build !linux

package bench

import "errors"

// rawFloor needs epoll.
func rawFloor(bool, *connectCall) (string, func() floorStats, error) {
	return "", nil, errors.New("the raw floors need Linux (epoll)")
}
