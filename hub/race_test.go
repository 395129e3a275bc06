//go:build race

package hub

const joinsPerWorker = 20000
