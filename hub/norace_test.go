//go:build !race

package hub

// joinsPerWorker makes TestMemoryNoLeak join and close a million
// connections (8 workers) without the race detector, which would make that
// take minutes; under -race it runs 160,000.
const joinsPerWorker = 125000
