package gateway

import (
	"net/http"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/confcheck"
)

// UsagePlan is API Gateway's usage plan (AWS::ApiGateway::UsagePlan with
// its UsagePlanKeys) for this stage: each of its API keys gets its own
// token bucket (Throttle) and request quota (Quota). They meter the
// requests of routes with apiKeyRequired: the $connect handshake and the
// messages.
type UsagePlan struct {
	// Name names the plan in logs. Required.
	Name string `json:"name"`
	// Throttle is each key's token bucket. Default none.
	Throttle *Throttling `json:"throttle,omitempty"`
	// Quota is each key's request count per period. Default none.
	Quota *Quota `json:"quota,omitempty"`
	// APIKeys are the names of the keys (under apiKeys) in the plan. A key
	// is in one plan at most, as a key has one plan per API stage on AWS.
	APIKeys []string `json:"apiKeys,omitempty"`
}

// Quota is a usage plan's QuotaSettings: at most Limit requests per
// Period, counted per key from the start of the period in UTC.
type Quota struct {
	// Limit is the requests a key may make in a period. Range 1 to
	// 2147483647.
	Limit int `json:"limit"`
	// Period is DAY, WEEK or MONTH.
	Period string `json:"period"`
	// Offset is the day a period starts: for WEEK 0 (Sunday) to 6
	// (Saturday), for MONTH 0 (the 1st) to 27 (the 28th); 0 for DAY.
	Offset int `json:"offset,omitempty"`
}

// Usage plan bounds: AWS's default quotas per account and region (API
// keys, usage plans) bound the counters wsgate keeps, one per key.
const (
	MaxAPIKeys     = 10000
	MaxUsagePlans  = 300
	MaxQuotaLimit  = 2147483647
	frameOverQuota = "Limit Exceeded"
)

func (c *Config) validateUsagePlans(e *confcheck.Errors) {
	if len(c.APIKeys) > MaxAPIKeys {
		e.Addf("apiKeys", "at most %d keys, got %d", MaxAPIKeys, len(c.APIKeys))
	}
	if len(c.UsagePlans) > MaxUsagePlans {
		e.Addf("usagePlans", "at most %d plans, got %d", MaxUsagePlans, len(c.UsagePlans))
	}
	keys := map[string]int{}
	for _, k := range c.APIKeys {
		keys[k.Name]++
	}
	planOf := map[string]string{}
	for i, p := range c.UsagePlans {
		path := confcheck.Index("usagePlans", i)
		if p.Name == "" {
			e.Addf(confcheck.Field(path, "name"), "required")
		}
		if p.Throttle != nil {
			e.In(confcheck.Field(path, "throttle"), p.Throttle.validate())
		}
		if q := p.Quota; q != nil {
			qp := confcheck.Field(path, "quota")
			e.Range(confcheck.Field(qp, "limit"), q.Limit, 1, MaxQuotaLimit)
			switch q.Period {
			case "DAY":
				e.Range(confcheck.Field(qp, "offset"), q.Offset, 0, 0)
			case "WEEK":
				e.Range(confcheck.Field(qp, "offset"), q.Offset, 0, 6)
			case "MONTH":
				e.Range(confcheck.Field(qp, "offset"), q.Offset, 0, 27)
			default:
				e.Addf(confcheck.Field(qp, "period"), "%q: want DAY, WEEK or MONTH", q.Period)
			}
		}
		for j, name := range p.APIKeys {
			kp := confcheck.Index(confcheck.Field(path, "apiKeys"), j)
			switch {
			case keys[name] == 0:
				e.Addf(kp, "%q is not the name of one of apiKeys", name)
			case keys[name] > 1:
				e.Addf(kp, "%q names more than one of apiKeys", name)
			case planOf[name] != "":
				e.Addf(kp, "%q is already in usage plan %q: a key is in one plan", name, planOf[name])
			}
			planOf[name] = p.Name
		}
	}
}

// usage is the usage plans' state: by key value, the key's bucket and
// quota. Keys in no plan have no entry; with plans configured they are
// refused on routes with apiKeyRequired, as AWS refuses a key outside the
// stage's plans.
type usage struct {
	planned bool
	byKey   map[string]*keyUsage
}

type keyUsage struct {
	plan     *UsagePlan
	throttle *throttle // nil: no limit
	quota    *quotaCount
}

// quotaCount is one key's requests in the current period.
type quotaCount struct {
	set  Quota
	mu   sync.Mutex
	used int
	end  time.Time // when the current period ends; zero before the first request
}

// take counts a request at now, false when the period's quota is spent.
func (q *quotaCount) take(now time.Time) bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !now.Before(q.end) {
		start := periodStart(now, &q.set)
		q.end = periodEnd(start, &q.set)
		q.used = 0
	}
	if q.used >= q.set.Limit {
		return false
	}
	q.used++
	return true
}

// periodStart is the start (UTC midnight) of the quota period holding now.
func periodStart(now time.Time, q *Quota) time.Time {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	switch q.Period {
	case "WEEK":
		back := (int(day.Weekday()) - q.Offset + 7) % 7
		return day.AddDate(0, 0, -back)
	case "MONTH":
		start := time.Date(now.Year(), now.Month(), 1+q.Offset, 0, 0, 0, 0, time.UTC)
		if start.After(now) {
			start = start.AddDate(0, -1, 0) // offset <= 27: every month has the day
		}
		return start
	}
	return day
}

func periodEnd(start time.Time, q *Quota) time.Time {
	switch q.Period {
	case "WEEK":
		return start.AddDate(0, 0, 7)
	case "MONTH":
		return start.AddDate(0, 1, 0)
	}
	return start.AddDate(0, 0, 1)
}

// buildUsage is the usage state of cfg. A key whose plan kept the same
// throttle (or quota) keeps its bucket (or count) from prev, so a reload
// neither refills a bucket nor resets a quota.
func buildUsage(cfg *Config, prev *usage) *usage {
	u := &usage{planned: len(cfg.UsagePlans) > 0, byKey: map[string]*keyUsage{}}
	values := map[string]string{}
	for _, k := range cfg.APIKeys {
		values[k.Name] = k.Value
	}
	for i := range cfg.UsagePlans {
		p := &cfg.UsagePlans[i]
		for _, name := range p.APIKeys {
			v := values[name]
			ku := &keyUsage{plan: p}
			var old *keyUsage
			if prev != nil {
				old = prev.byKey[v]
			}
			var oldThrottle *throttle
			var oldSet *Throttling
			if old != nil {
				oldThrottle, oldSet = old.throttle, old.plan.Throttle
			}
			ku.throttle = keepThrottle(oldThrottle, oldSet, p.Throttle, nil)
			switch {
			case p.Quota == nil:
			case old != nil && old.quota != nil && old.quota.set == *p.Quota:
				ku.quota = old.quota
			default:
				ku.quota = &quotaCount{set: *p.Quota}
			}
			u.byKey[v] = ku
		}
	}
	return u
}

// keyRefusal is why a request to a route with apiKeyRequired is refused,
// status 0 when it is not: no valid key (403 Forbidden), a key in no
// usage plan while plans exist (403), the key's bucket empty (429 Too
// Many Requests) or its quota spent (429 Limit Exceeded).
func (l *live) keyRefusal(id *Identity, now time.Time) (status int, outcome, msg string) {
	if id.APIKeyID == "" {
		return http.StatusForbidden, OutcomeUnauthorized, frameForbidden
	}
	if !l.usage.planned {
		return 0, "", ""
	}
	ku := l.usage.byKey[id.APIKey]
	switch {
	case ku == nil:
		return http.StatusForbidden, OutcomeUnauthorized, frameForbidden
	case !ku.throttle.allow():
		return http.StatusTooManyRequests, OutcomeThrottled, frameThrottled
	case !ku.quota.take(now):
		return http.StatusTooManyRequests, OutcomeThrottled, frameOverQuota
	}
	return 0, "", ""
}
