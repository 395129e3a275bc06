//go:build linux && !race

package rawsys

const raceEnabled = false
