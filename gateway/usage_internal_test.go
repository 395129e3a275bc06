package gateway

import (
	"testing"
	"time"
)

func TestQuotaPeriods(t *testing.T) {
	// 2026-11-25 is a Wednesday.
	now := time.Date(2026, 11, 25, 15, 4, 5, 0, time.UTC)
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		q          Quota
		start, end time.Time
	}{
		{Quota{Period: "DAY"}, day(2026, 11, 25), day(2026, 11, 26)},
		{Quota{Period: "WEEK"}, day(2026, 11, 22), day(2026, 11, 29)},            // Sunday
		{Quota{Period: "WEEK", Offset: 1}, day(2026, 11, 23), day(2026, 11, 30)}, // Monday
		{Quota{Period: "WEEK", Offset: 3}, day(2026, 11, 25), day(2026, 12, 2)},  // today
		{Quota{Period: "WEEK", Offset: 4}, day(2026, 11, 19), day(2026, 11, 26)}, // Thursday last week
		{Quota{Period: "MONTH"}, day(2026, 11, 1), day(2026, 12, 1)},
		{Quota{Period: "MONTH", Offset: 24}, day(2026, 11, 25), day(2026, 12, 25)},
		{Quota{Period: "MONTH", Offset: 27}, day(2026, 10, 28), day(2026, 11, 28)},
	}
	for _, c := range cases {
		start := periodStart(now, &c.q)
		if end := periodEnd(start, &c.q); !start.Equal(c.start) || !end.Equal(c.end) {
			t.Errorf("%+v: period %v to %v, want %v to %v", c.q, start, end, c.start, c.end)
		}
	}
	// A zone other than UTC counts in UTC.
	if got := periodStart(now.In(time.FixedZone("x", 14*3600)), &Quota{Period: "DAY"}); !got.Equal(day(2026, 11, 25)) {
		t.Errorf("DAY start in +14:00 = %v", got)
	}
}

func TestQuotaCount(t *testing.T) {
	q := &quotaCount{set: Quota{Limit: 2, Period: "DAY"}}
	now := time.Date(2026, 11, 25, 23, 59, 0, 0, time.UTC)
	var got []bool
	for range 3 {
		got = append(got, q.take(now))
	}
	if !got[0] || !got[1] || got[2] {
		t.Fatalf("a quota of 2 must allow two requests, then refuse: %v", got)
	}
	if !q.take(now.Add(time.Minute)) {
		t.Fatal("the next day starts a new quota")
	}
	var none *quotaCount
	if !none.take(now) {
		t.Fatal("no quota must allow")
	}
}

func TestKeepUsageAcrossReload(t *testing.T) {
	cfg := Config{
		APIKeys: []APIKey{{Name: "a", Value: "aaaaaaaaaaaaaaaaaaaa"}, {Name: "b", Value: "bbbbbbbbbbbbbbbbbbbb"}},
		UsagePlans: []UsagePlan{{Name: "p", Throttle: &Throttling{RateLimit: 0.001, BurstLimit: 6},
			Quota: &Quota{Limit: 3, Period: "MONTH"}, APIKeys: []string{"a", "b"}}},
	}
	now := time.Now()
	u := buildUsage(&cfg, nil)
	l := &live{usage: u}
	a := &Identity{APIKey: "aaaaaaaaaaaaaaaaaaaa", APIKeyID: "a"}
	for range 3 {
		if status, _, msg := l.keyRefusal(a, now); status != 0 {
			t.Fatalf("refused within the quota: %s", msg)
		}
	}
	if _, _, msg := l.keyRefusal(a, now); msg != frameOverQuota {
		t.Fatalf("over the quota: %q, want %q", msg, frameOverQuota)
	}
	// The same plan: the count goes on.
	next := cfg
	next.UsagePlans = []UsagePlan{cfg.UsagePlans[0]}
	l.usage = buildUsage(&next, u)
	if _, _, msg := l.keyRefusal(a, now); msg != frameOverQuota {
		t.Fatalf("after an unchanged reload: %q, want the quota still spent", msg)
	}
	// A new limit: a new count. The bucket, unchanged, keeps its tokens: five
	// requests took one each (the refused ones too), one is left.
	changed := next
	changed.UsagePlans = []UsagePlan{next.UsagePlans[0]}
	changed.UsagePlans[0].Quota = &Quota{Limit: 4, Period: "MONTH"}
	l.usage = buildUsage(&changed, l.usage)
	if status, _, msg := l.keyRefusal(a, now); status != 0 {
		t.Fatalf("a changed quota must count anew: %s", msg)
	}
	if _, _, msg := l.keyRefusal(a, now); msg != frameThrottled {
		t.Fatalf("the kept bucket: %q, want %q", msg, frameThrottled)
	}
	// Key b out of the plan: refused while plans exist.
	changed.UsagePlans[0].APIKeys = []string{"a"}
	l.usage = buildUsage(&changed, l.usage)
	if status, _, _ := l.keyRefusal(&Identity{APIKey: "bbbbbbbbbbbbbbbbbbbb", APIKeyID: "b"}, now); status != 403 {
		t.Fatalf("a key in no plan: %d, want 403", status)
	}
}
