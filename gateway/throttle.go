package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/confcheck"
)

// Throttling is a token bucket, as API Gateway's stage and route
// throttling: requests take a token each; the bucket holds BurstLimit
// tokens and refills at RateLimit tokens a second. A request that finds it
// empty is refused at once (429 for a handshake, the Too Many Requests
// frame for a message), never queued.
type Throttling struct {
	// RateLimit is the steady-state rate, in requests per second (AWS's
	// ThrottlingRateLimit, a double). Range above 0 to 1000000.
	RateLimit float64 `json:"rateLimit"`
	// BurstLimit is the bucket's size: requests accepted at once after a
	// quiet spell (AWS's ThrottlingBurstLimit). Range 1 to 1000000.
	BurstLimit int `json:"burstLimit"`
}

// Throttling ranges.
const (
	MaxThrottleRate  = 1_000_000
	MaxThrottleBurst = 1_000_000
)

func (t *Throttling) validate() error {
	var e confcheck.Errors
	if t.RateLimit <= 0 {
		e.Addf("rateLimit", "must be above 0 (requests per second), got %g", t.RateLimit)
	} else {
		e.RangeFloat("rateLimit", t.RateLimit, 0, MaxThrottleRate)
	}
	e.Range("burstLimit", t.BurstLimit, 1, MaxThrottleBurst)
	return e.Err()
}

// bucket is one token bucket. It starts full.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time // when tokens was computed (monotonic)
}

// newBucket is the bucket for t, nil (no limit) when t is nil.
func newBucket(t *Throttling) *bucket {
	if t == nil {
		return nil
	}
	return &bucket{rate: t.RateLimit, burst: float64(t.BurstLimit), tokens: float64(t.BurstLimit), last: time.Now()}
}

// take takes a token if one is there. A nil bucket always has one.
func (b *bucket) take() bool {
	if b == nil {
		return true
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// throttle is a bucket and the count of requests it refused.
type throttle struct {
	bucket  *bucket
	refused *atomic.Int64
}

// allow takes a token, counting a refusal. A nil throttle always allows.
func (t *throttle) allow() bool {
	if t == nil || t.bucket.take() {
		return true
	}
	t.refused.Add(1)
	return false
}

// keepThrottle is the throttle for setting next across a reload: old
// itself when the setting did not change (its tokens go on), else a new
// bucket that keeps old's refusal count (or counts into count), so the
// counts only grow. nil when next is nil.
func keepThrottle(old *throttle, prev, next *Throttling, count *atomic.Int64) *throttle {
	if next == nil {
		return nil
	}
	if old != nil && prev != nil && *prev == *next {
		return old
	}
	if old != nil {
		count = old.refused
	}
	if count == nil {
		count = new(atomic.Int64)
	}
	return &throttle{bucket: newBucket(next), refused: count}
}

// ThrottleCounts are the requests the token buckets refused since the
// gateway started.
type ThrottleCounts struct {
	// Connections counts handshakes refused by connectionThrottling.
	Connections int64
	// Routes counts requests refused by a route's bucket (its own
	// throttling or the stage's), by route key; $connect counts refused
	// handshakes. Routes without a bucket are absent.
	Routes map[string]int64
}

// Throttled reports the requests the token buckets refused. The in-flight
// bounds (maxInflight) answer with the same frame but are not counted
// here.
func (g *Gateway) Throttled() ThrottleCounts {
	out := ThrottleCounts{Connections: g.connRefused.Load(), Routes: make(map[string]int64)}
	for key, rt := range g.current().routes {
		if rt.throttle != nil {
			out.Routes[key] = rt.throttle.refused.Load()
		}
	}
	return out
}

// routeThrottling is the throttling of route key: its own, else the
// stage's. $disconnect is never throttled: its event would be lost.
func (c *Config) routeThrottling(key string) *Throttling {
	if key == routeDisconnect {
		return nil
	}
	if t := c.Routes[key].Throttling; t != nil {
		return t
	}
	return c.Throttling
}
