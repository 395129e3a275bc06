// Package metrics exposes a wsgate's figures to Prometheus: API Gateway's
// six WebSocket metrics (ConnectCount, MessageCount, IntegrationError,
// ClientError, ExecutionError, IntegrationLatency) under Prometheus names,
// per route where CloudWatch has a Route dimension, and what a gateway
// operator needs besides (connections, handshakes, management calls,
// frames and bytes, full queues, closes, in-flight invocations, local
// functions, change streams). docs/metrics.md lists every metric.
//
// Metrics is a gateway.Observer: the gateway hands it one record per
// connect, message and disconnect, and one call per management request.
// Counters that move per frame are not observed: the gateway keeps them
// as atomics (gateway.Stats) and Metrics reads them when scraped, so the
// hot path pays one atomic add and no allocation.
//
// Labels are bounded: route is a configured route key (or $connect,
// $disconnect, $default), never what a client sent; operation, outcome,
// reason and status come from fixed tables; stream and function names
// come from the config. No label carries a connection id or a group.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	dto "github.com/prometheus/client_model/go"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/hub"
)

const namespace = "wsgate"

// latencyBuckets cover 1 ms to 30 s: an integration call is bounded by
// its timeout (API Gateway's 29 s at most).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics is a Prometheus registry with wsgate's metrics. It is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	connects      prometheus.Counter
	handshakes    *prometheus.CounterVec
	messagesIn    *prometheus.CounterVec
	integErrors   *prometheus.CounterVec
	clientErrors  *prometheus.CounterVec
	execErrors    *prometheus.CounterVec
	integLatency  *prometheus.HistogramVec
	throttled     *prometheus.CounterVec
	authLatency   prometheus.Histogram
	closes        *prometheus.CounterVec
	mgmtRequests  *prometheus.CounterVec
	mgmtDurations *prometheus.HistogramVec

	mu     sync.RWMutex
	routes map[string]*routeSeries
}

// routeSeries are one route's children, resolved once so that observing
// a record is a map lookup and a few atomic adds.
type routeSeries struct {
	messagesIn, integErrors, clientErrors, execErrors, throttled prometheus.Counter
	latency                                                      prometheus.Observer
}

// New makes the registry, with the Go runtime and process collectors, and
// series for routeKeys (the configured routes, which
// gateway.Config.RouteKeys lists) starting at zero.
func New(routeKeys []string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), routes: map[string]*routeSeries{}}
	route := []string{"route"}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	m.connects = counter("connects_total", "Handshakes that reached the $connect route: API Gateway's ConnectCount.")
	m.handshakes = counterVec("handshakes_total", "WebSocket handshakes by outcome: ok, bad_request, unauthorized, throttled, refused, integration_error, execution_error, unavailable.", "outcome")
	m.messagesIn = counterVec("messages_received_total", "Client messages by route: the inbound half of API Gateway's MessageCount.", route...)
	m.integErrors = counterVec("integration_errors_total", "Integration calls that answered a 4XX/5XX status: API Gateway's IntegrationError.", route...)
	m.clientErrors = counterVec("client_errors_total", "Requests answered 4XX by the gateway before an integration was called: API Gateway's ClientError.", route...)
	m.execErrors = counterVec("execution_errors_total", "Integration calls that failed (timeout, unreachable, function error, malformed answer): API Gateway's ExecutionError.", route...)
	m.integLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "integration_latency_seconds", Buckets: latencyBuckets,
		Help: "Time from calling an integration to its answer: API Gateway's IntegrationLatency.",
	}, route)
	m.throttled = counterVec("throttled_total", "Handshakes and messages answered Too Many Requests (429): refused by a token bucket (throttling, connectionThrottling) or a full in-flight bound.", route...)
	m.authLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "authorizer_latency_seconds", Buckets: latencyBuckets,
		Help: "Time the REQUEST authorizer took per handshake, cache hits included.",
	})
	m.closes = counterVec("closes_total", "Closed connections by reason: "+strings.Join(hub.CloseLabels(), ", ")+".", "reason")
	m.mgmtRequests = counterVec("management_requests_total", "Management API requests by operation and HTTP status.", "operation", "status")
	m.mgmtDurations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "management_request_duration_seconds", Buckets: latencyBuckets,
		Help: "Time to answer a management API request, by operation.",
	}, []string{"operation"})
	m.reg.MustRegister(m.connects, m.handshakes, m.messagesIn, m.integErrors, m.clientErrors, m.execErrors,
		m.integLatency, m.throttled, m.authLatency, m.closes, m.mgmtRequests, m.mgmtDurations,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, k := range routeKeys {
		m.route(k)
	}
	for _, o := range []string{gateway.OutcomeOK, gateway.OutcomeBadRequest, gateway.OutcomeUnauthorized, gateway.OutcomeThrottled,
		gateway.OutcomeRefused, gateway.OutcomeIntegrationError, gateway.OutcomeExecutionError, gateway.OutcomeUnavailable} {
		m.handshakes.WithLabelValues(o)
	}
	return m
}

// Registry is the registry, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// route returns key's series, creating them the first time (keys are
// configured routes, so they are few).
func (m *Metrics) route(key string) *routeSeries {
	m.mu.RLock()
	rs := m.routes[key]
	m.mu.RUnlock()
	if rs != nil {
		return rs
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rs = m.routes[key]; rs == nil {
		rs = &routeSeries{
			messagesIn:   m.messagesIn.WithLabelValues(key),
			integErrors:  m.integErrors.WithLabelValues(key),
			clientErrors: m.clientErrors.WithLabelValues(key),
			execErrors:   m.execErrors.WithLabelValues(key),
			throttled:    m.throttled.WithLabelValues(key),
			latency:      m.integLatency.WithLabelValues(key),
		}
		m.routes[key] = rs
	}
	return rs
}

var _ gateway.Observer = (*Metrics)(nil)

// Request implements gateway.Observer.
func (m *Metrics) Request(r gateway.Record) {
	rs := m.route(r.RouteKey)
	switch r.EventType {
	case gateway.EventConnect:
		m.handshakes.WithLabelValues(r.Outcome).Inc()
		if r.Outcome != gateway.OutcomeBadRequest && r.Outcome != gateway.OutcomeUnavailable {
			m.connects.Inc()
		}
		if r.AuthorizerStatus != 0 {
			m.authLatency.Observe(r.AuthorizerLatency.Seconds())
		}
	case gateway.EventMessage:
		rs.messagesIn.Inc()
	case gateway.EventDisconnect:
		m.closes.WithLabelValues(r.CloseReason).Inc()
	}
	if r.Integrated {
		rs.latency.Observe(r.IntegrationLatency.Seconds())
	}
	switch {
	case r.Outcome == gateway.OutcomeExecutionError:
		rs.execErrors.Inc()
	case r.Integrated && r.IntegrationStatus >= 400:
		rs.integErrors.Inc()
	case !r.Integrated && r.Status >= 400 && r.Status < 500:
		rs.clientErrors.Inc()
	}
	if r.Outcome == gateway.OutcomeThrottled {
		rs.throttled.Inc()
	}
}

// Management implements gateway.Observer.
func (m *Metrics) Management(op string, status int, d time.Duration) {
	m.mgmtRequests.WithLabelValues(op, strconv.Itoa(status)).Inc()
	m.mgmtDurations.WithLabelValues(op).Observe(d.Seconds())
}

// Route is one route's totals, for the admin page.
type Route struct {
	Key string `json:"route"`
	// Messages counts client messages; Errors the integration, client and
	// execution errors.
	Messages, Errors uint64
	// Latency sums the integration calls' seconds over Calls calls.
	Latency float64
	Calls   uint64
}

// Routes reads each route's totals, sorted by route key.
func (m *Metrics) Routes() []Route {
	m.mu.RLock()
	keys := make([]string, 0, len(m.routes))
	series := make([]*routeSeries, 0, len(m.routes))
	for k, rs := range m.routes {
		keys = append(keys, k)
		series = append(series, rs)
	}
	m.mu.RUnlock()
	out := make([]Route, len(keys))
	for i, rs := range series {
		r := Route{Key: keys[i], Messages: counterValue(rs.messagesIn)}
		r.Errors = counterValue(rs.integErrors) + counterValue(rs.clientErrors) + counterValue(rs.execErrors)
		var pb dto.Metric
		if h, ok := rs.latency.(prometheus.Metric); ok && h.Write(&pb) == nil && pb.Histogram != nil {
			r.Latency, r.Calls = pb.Histogram.GetSampleSum(), pb.Histogram.GetSampleCount()
		}
		out[i] = r
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func counterValue(c prometheus.Counter) uint64 {
	var pb dto.Metric
	if c.Write(&pb) != nil || pb.Counter == nil {
		return 0
	}
	return uint64(pb.Counter.GetValue())
}
