package gateway

import (
	"testing"
	"time"
)

// A stamp keeps the wall time it was taken at across later steps of the
// wall clock; a stamp taken after a step (once a reading saw it) is
// reported on the stepped clock; the epochs kept stay bounded.
func TestWallAtAcrossSteps(t *testing.T) {
	now, before := wallNow()
	if got := wallAt(before); !got.Equal(now.Round(0)) {
		t.Fatalf("wallAt %v, wallNow %v", got, now)
	}
	for i := range maxEpochs + 3 {
		step := time.Duration(i%2*2-1) * time.Hour // back and forth
		undo := StepWall(step)
		stepped, after := wallNow()
		// Two epochs an iteration: the first stamp's is kept this long.
		if d := wallAt(before).Sub(now); i < maxEpochs/2-1 && d != 0 {
			t.Fatalf("step %d: the earlier stamp moved by %v", i, d)
		}
		if got := wallAt(after); !got.Equal(stepped.Round(0)) {
			t.Fatalf("step %d: the later stamp is at %v, want %v", i, got, stepped)
		}
		undo()
		wallNow()
	}
	if n := len(*clocks.epochs.Load()); n > maxEpochs {
		t.Fatalf("%d epochs kept, at most %d", n, maxEpochs)
	}
}

// BenchmarkTouch: a data frame's activity stamp (touch, on every frame).
func BenchmarkTouch(b *testing.B) {
	c := new(conn)
	for b.Loop() {
		c.touch()
	}
}
