package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitFor runs collections until cond holds (the tuning runs in a
// cleanup, after a collection, on a goroutine of the runtime's).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 10_000 {
			t.Fatal("not within 10,000 collections")
		}
		runtime.GC()
		runtime.Gosched()
	}
}

// TestFloor: with a floor the percent rises so the heap goal is about
// the floor, and comes back to 100 without one.
func TestFloor(t *testing.T) {
	t.Cleanup(func() { Set(0) })
	const floor = 256 << 20
	t0 := tuned.Load()
	if !Set(floor) {
		t.Fatal("Set refused with GOGC unset")
	}
	waitFor(t, func() bool {
		if tuned.Load() == t0 {
			return false // not yet tuned to a collection's live heap
		}
		goal := read("/gc/heap/goal:bytes")
		return Percent() > 100 && read("/gc/gogc:percent") == uint64(Percent()) && goal >= floor*9/10 && goal <= floor*11/10
	})
	t.Logf("percent %d, goal %d MiB, live %d KiB", Percent(), read("/gc/heap/goal:bytes")>>20, read("/gc/heap/live:bytes")>>10)
	Set(0)
	waitFor(t, func() bool { return Percent() == 100 && read("/gc/gogc:percent") == 100 })
}

// TestGOGCSet: GOGC in the environment is the operator's: Set leaves the
// percent alone.
func TestGOGCSet(t *testing.T) {
	t.Setenv("GOGC", "100")
	if Set(256 << 20) {
		t.Fatal("Set applied a floor with GOGC set")
	}
	if Percent() != 100 {
		t.Fatalf("percent %d", Percent())
	}
}
