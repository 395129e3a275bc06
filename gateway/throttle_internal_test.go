package gateway

import (
	"sync/atomic"
	"testing"
)

// TestKeepThrottleAcrossReload: a reload keeps a bucket whose setting did
// not change (its tokens go on: a client cannot refill it by provoking a
// reload), starts a changed one full, and never loses a refusal count.
func TestKeepThrottleAcrossReload(t *testing.T) {
	set := &Throttling{RateLimit: 0.001, BurstLimit: 1}
	var count atomic.Int64
	old := keepThrottle(nil, nil, set, &count)
	if !old.allow() || old.allow() {
		t.Fatal("a bucket of 1 must allow one request, then refuse")
	}
	same := keepThrottle(old, set, &Throttling{RateLimit: 0.001, BurstLimit: 1}, nil)
	if same != old {
		t.Fatal("an unchanged setting must keep the bucket")
	}
	if same.allow() {
		t.Fatal("the kept bucket refilled across the reload")
	}
	changed := keepThrottle(same, set, &Throttling{RateLimit: 0.001, BurstLimit: 2}, nil)
	if changed == same || !changed.allow() || !changed.allow() || changed.allow() {
		t.Fatal("a changed setting must start a new, full bucket")
	}
	if got := count.Load(); got != 3 {
		t.Fatalf("refusals counted over reloads = %d, want 3", got)
	}
	if keepThrottle(changed, set, nil, nil) != nil {
		t.Fatal("throttling removed: want no bucket")
	}
	var none *throttle
	if !none.allow() {
		t.Fatal("no bucket must allow")
	}
}
