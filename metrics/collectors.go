package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
)

// Gateway is what the gateway collector reads when scraped;
// *gateway.Gateway implements it.
type Gateway interface {
	Stats() gateway.Stats
	Connections() int
	Inflight() int
}

// funcCollector turns a function that emits const metrics into a
// prometheus.Collector. It is unchecked (no Describe): what it emits
// depends on the config (stream names, function names).
type funcCollector func(ch chan<- prometheus.Metric)

func (f funcCollector) Describe(chan<- *prometheus.Desc)    {}
func (f funcCollector) Collect(ch chan<- prometheus.Metric) { f(ch) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	connectionsDesc  = desc("connections", "Open WebSocket connections.")
	inflightDesc     = desc("inflight_invocations", "Integration invocations running (routes, $connect, $disconnect, the authorizer), at most maxInflight.")
	messagesSentDesc = desc("messages_sent_total", "Data messages queued for clients (route answers, POSTs, group deliveries): the outbound half of API Gateway's MessageCount.")
	framesDesc       = desc("frames_total", "WebSocket frames read from (in) and queued for (out) clients, data and control.", "direction")
	bytesDesc        = desc("bytes_total", "Bytes of WebSocket frames read from (in) and queued for (out) clients, frame headers included.", "direction")
	queueFullDesc    = desc("queue_full_total", "Messages for one connection (a POST, a route answer) refused because its outbound queue was full (429 LimitExceededException).")
	skippedDesc      = desc("group_deliveries_skipped_total", "Group deliveries skipped because the member's outbound queue was full.")
)

// AddGateway registers a collector of g's running totals and gauges.
func (m *Metrics) AddGateway(g Gateway) {
	m.reg.MustRegister(funcCollector(func(ch chan<- prometheus.Metric) {
		s := g.Stats()
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(g.Connections()))
		ch <- prometheus.MustNewConstMetric(inflightDesc, prometheus.GaugeValue, float64(g.Inflight()))
		ch <- prometheus.MustNewConstMetric(messagesSentDesc, prometheus.CounterValue, float64(s.MessagesOut))
		ch <- prometheus.MustNewConstMetric(framesDesc, prometheus.CounterValue, float64(s.FramesIn), "in")
		ch <- prometheus.MustNewConstMetric(framesDesc, prometheus.CounterValue, float64(s.FramesOut), "out")
		ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(s.BytesIn), "in")
		ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(s.BytesOut), "out")
		ch <- prometheus.MustNewConstMetric(queueFullDesc, prometheus.CounterValue, float64(s.QueueFull))
		ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(s.GroupSkipped))
	}))
}

// Stream is one change stream's figures at scrape time.
type Stream struct {
	Name  string
	State string // running, retrying, failed, stopped
	// Delivered counts records the target accepted.
	Delivered int64
	// Lag is the age of the oldest change not yet delivered.
	Lag      time.Duration
	Restarts int
	// Leader: this node runs the stream (always, on a single node; in a
	// cluster, while it holds the stream's lease).
	Leader bool
	// Stops counts the runs stopped by their context, by reason (one of
	// StreamStopReasons; streams.StopReason), and Cut the calls to the
	// target such a stop cut (their batches are delivered again).
	Stops map[string]int64
	Cut   int64
}

// StreamStopReasons are the values of the reason label of
// wsgate_stream_stops_total (streams.StopReasons).
var StreamStopReasons = []string{"lease_lost", "shutdown", "reload", "other"}

// StreamStates are the values of the state label of wsgate_stream_state.
var StreamStates = []string{"running", "retrying", "failed", "stopped"}

var (
	streamDeliveredDesc = desc("stream_delivered_total", "Change records the stream's target accepted.", "stream")
	streamLagDesc       = desc("stream_lag_seconds", "Age of the stream's oldest change not yet delivered; 0 when none is pending.", "stream")
	streamRestartsDesc  = desc("stream_restarts_total", "Restarts of the stream's source after a failure.", "stream")
	streamStateDesc     = desc("stream_state", "1 for the stream's current state, 0 for the others.", "stream", "state")
	streamLeaderDesc    = desc("stream_leader", "1 while this node runs the stream (in a cluster: holds its lease), else 0.", "stream")
	streamStopsDesc     = desc("stream_stops_total", "Runs of the stream on this node stopped by their context, by reason: lease_lost, shutdown (or a cluster's handover at shutdown), reload, other.", "stream", "reason")
	streamCutDesc       = desc("stream_batches_cut_total", "Calls to the stream's target that a stop cut (the delivery grace ran out, or the lease was lost): their batches are delivered again by the next run.", "stream")
)

// AddStreams registers a collector of the streams list returns.
func (m *Metrics) AddStreams(list func() []Stream) {
	m.reg.MustRegister(funcCollector(func(ch chan<- prometheus.Metric) {
		for _, s := range list() {
			ch <- prometheus.MustNewConstMetric(streamDeliveredDesc, prometheus.CounterValue, float64(s.Delivered), s.Name)
			ch <- prometheus.MustNewConstMetric(streamLagDesc, prometheus.GaugeValue, s.Lag.Seconds(), s.Name)
			ch <- prometheus.MustNewConstMetric(streamRestartsDesc, prometheus.CounterValue, float64(s.Restarts), s.Name)
			leader := 0.0
			if s.Leader {
				leader = 1
			}
			ch <- prometheus.MustNewConstMetric(streamLeaderDesc, prometheus.GaugeValue, leader, s.Name)
			for _, r := range StreamStopReasons {
				ch <- prometheus.MustNewConstMetric(streamStopsDesc, prometheus.CounterValue, float64(s.Stops[r]), s.Name, r)
			}
			ch <- prometheus.MustNewConstMetric(streamCutDesc, prometheus.CounterValue, float64(s.Cut), s.Name)
			for _, st := range StreamStates {
				v := 0.0
				if st == s.State {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(streamStateDesc, prometheus.GaugeValue, v, s.Name, st)
			}
		}
	}))
}

var (
	paceWaitsDesc   = desc("stream_pace_waits_total", "Times a change stream's group delivery waited on this node for members whose outbound queue was more than half taken (a burst, such as a takeover's catch-up).")
	paceExcusedDesc = desc("stream_pace_excused_total", "Times a member (or a whole group) was excused from pacing for 30 s: one wait of 1 s, or its waits adding up to their budget; an excused member skips rows as before.")
	paceRefusedDesc = desc("stream_pace_refused_total", "Pacing questions from other nodes' change streams this node answered at once, unpaced, because 64 of them were waiting here already (cluster mode).")
)

// AddPace registers a collector of the hub's pacing counts
// (hub.Memory.PaceStats, cluster.Hub.PaceStats).
func (m *Metrics) AddPace(stats func() (waits, excused, refused int64)) {
	m.reg.MustRegister(funcCollector(func(ch chan<- prometheus.Metric) {
		w, e, r := stats()
		ch <- prometheus.MustNewConstMetric(paceWaitsDesc, prometheus.CounterValue, float64(w))
		ch <- prometheus.MustNewConstMetric(paceExcusedDesc, prometheus.CounterValue, float64(e))
		ch <- prometheus.MustNewConstMetric(paceRefusedDesc, prometheus.CounterValue, float64(r))
	}))
}

var (
	accessLogLinesDesc   = desc("access_log_lines_total", "Access log lines written.")
	accessLogDroppedDesc = desc("access_log_dropped_total", "Access log lines dropped because the log's buffer was full (the destination is slower than the traffic).")
)

// AddAccessLog registers a collector of an access log's written and
// dropped lines.
func (m *Metrics) AddAccessLog(counts func() (written, dropped uint64)) {
	m.reg.MustRegister(funcCollector(func(ch chan<- prometheus.Metric) {
		w, d := counts()
		ch <- prometheus.MustNewConstMetric(accessLogLinesDesc, prometheus.CounterValue, float64(w))
		ch <- prometheus.MustNewConstMetric(accessLogDroppedDesc, prometheus.CounterValue, float64(d))
	}))
}

var (
	waitDescriptorsDesc      = desc("http_keepalive_wait_descriptors", "Second descriptors held by kept-alive HTTP connections waiting for their next request.")
	waitDescriptorsLimitDesc = desc("http_keepalive_wait_descriptors_limit", "At most this many second descriptors for keep-alive waits: keepAliveWaitDescriptors, by default an eighth of the process's descriptor limit.")
	waitFallbacksDesc        = desc("http_keepalive_wait_fallbacks_total", "Times a kept-alive HTTP connection fell back to waiting without a second descriptor (the limit reached, or none left): one read more per request until a later wait takes one.")
)

// AddKeepAliveWaits registers a collector of the front's keep-alive
// waits (httpfront.Server.KeepAliveWaits).
func (m *Metrics) AddKeepAliveWaits(waits func() (held, limit int64, fallbacks uint64)) {
	m.reg.MustRegister(funcCollector(func(ch chan<- prometheus.Metric) {
		held, limit, fallbacks := waits()
		ch <- prometheus.MustNewConstMetric(waitDescriptorsDesc, prometheus.GaugeValue, float64(held))
		ch <- prometheus.MustNewConstMetric(waitDescriptorsLimitDesc, prometheus.GaugeValue, float64(limit))
		ch <- prometheus.MustNewConstMetric(waitFallbacksDesc, prometheus.CounterValue, float64(fallbacks))
	}))
}

var (
	functionColdStartsDesc  = desc("function_cold_starts_total", "Processes started for a local function (each a cold start).", "function")
	functionProcessesDesc   = desc("function_processes", "Live processes of a local function.", "function")
	functionInvocationsDesc = desc("function_invocations_total", "Events a local function's processes took.", "function")
	functionErrorsDesc      = desc("function_errors_total", "Invocations of a local function that ended in a function error, a crash or a timeout.", "function")
	functionInitDesc        = desc("function_init_duration_seconds", "Cold starts: how long an invocation that started a process waited for it to take the event (Lambda's init phase).", "function")
	functionDurationDesc    = desc("function_duration_seconds", "A local function's invoke phase: from the process taking the event to its answer.", "function")
)

// AddFunctions registers a collector of the local functions' figures.
func (m *Metrics) AddFunctions(list func() []integration.FunctionStats) {
	m.reg.MustRegister(funcCollector(func(ch chan<- prometheus.Metric) {
		for _, f := range list() {
			ch <- prometheus.MustNewConstMetric(functionColdStartsDesc, prometheus.CounterValue, float64(f.ColdStarts), f.Name)
			ch <- prometheus.MustNewConstMetric(functionProcessesDesc, prometheus.GaugeValue, float64(f.Processes), f.Name)
			ch <- prometheus.MustNewConstMetric(functionInvocationsDesc, prometheus.CounterValue, float64(f.Invocations), f.Name)
			ch <- prometheus.MustNewConstMetric(functionErrorsDesc, prometheus.CounterValue, float64(f.Errors), f.Name)
			ch <- constHistogram(functionInitDesc, f.Init, f.Name)
			ch <- constHistogram(functionDurationDesc, f.Duration, f.Name)
		}
	}))
}

func constHistogram(d *prometheus.Desc, h integration.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(integration.DurationBuckets))
	for i, b := range integration.DurationBuckets {
		buckets[b] = h.Counts[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets, labels...)
}

var (
	clusterNodesDesc   = desc("cluster_nodes", "Cluster nodes up, as this node sees them (itself included).")
	clusterReadyDesc   = desc("cluster_ready", "1 while this node holds its place in the cluster (registered, connected to NATS, not fencing), else 0.")
	clusterFencedDesc  = desc("cluster_fenced_total", "Times this node fenced: found itself declared gone and closed its connections.")
	clusterMovesDesc   = desc("cluster_node_moves_total", "Times this node, fenced, found its node byte held by another node and moved to another byte.")
	clusterDirectDesc  = desc("cluster_direct_closed_total", "Connections this node's direct query link closed past its bounds or refused, by reason.", "reason")
	clusterLateDesc    = desc("cluster_call_batches_late_total", "Batches of cross-node calls this node sent that got no reply within attemptTimeoutMillis.")
	clusterLateAnsDesc = desc("cluster_call_late_answers_total", "Replies to late batches of cross-node calls that came before their calls' deadlines.")
	clusterUnreadDesc  = desc("cluster_registry_unread_total", "Registry reads that failed when a call asked whether a node byte nobody answered is held.")
	clusterRepeatsDesc = desc("cluster_dedupe_repeats_total", "POSTs and DELETEs this node answered with an earlier run's answer instead of running them again.")
	clusterUnansDesc   = desc("cluster_direct_calls_unanswered_total", "Calls this node sent over a direct link whose answer did not come on it, by reason; they went again over NATS.", "reason")
)

// Cluster is what the cluster collector reads.
type Cluster interface {
	LiveNodes() int
	Ready() error
	Fenced() int64
	// Moves counts the moves to another node byte after a fence
	// (docs/cluster.md).
	Moves() int64
	// DirectClosed counts the direct query link's closed connections by
	// reason (cluster/direct.go).
	DirectClosed() map[string]int64
	// LateCalls counts the cross-node call batches unanswered within
	// attemptTimeoutMillis and the replies that came for them after
	// all, before their calls' deadlines (cluster/calls.go).
	LateCalls() (batches, answers int64)
	// RegistryUnread counts the registry reads that failed when a call
	// on a node byte nobody answered asked whether the byte is held.
	RegistryUnread() int64
	// DedupeRepeats counts the POSTs and DELETEs answered with an
	// earlier run's answer (cluster/dedupe.go).
	DedupeRepeats() int64
	// DirectCallsUnanswered counts the calls sent over a direct link
	// whose connection broke before the answer, or gave none for a
	// whole attempt (cluster/directcalls.go).
	DirectCallsUnanswered() (broken, silent int64)
}

// AddCluster registers a collector of this node's cluster figures.
func (m *Metrics) AddCluster(c Cluster) {
	m.reg.MustRegister(funcCollector(func(ch chan<- prometheus.Metric) {
		ready := 0.0
		if c.Ready() == nil {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(clusterNodesDesc, prometheus.GaugeValue, float64(c.LiveNodes()))
		ch <- prometheus.MustNewConstMetric(clusterReadyDesc, prometheus.GaugeValue, ready)
		ch <- prometheus.MustNewConstMetric(clusterFencedDesc, prometheus.CounterValue, float64(c.Fenced()))
		ch <- prometheus.MustNewConstMetric(clusterMovesDesc, prometheus.CounterValue, float64(c.Moves()))
		for reason, n := range c.DirectClosed() {
			ch <- prometheus.MustNewConstMetric(clusterDirectDesc, prometheus.CounterValue, float64(n), reason)
		}
		late, answers := c.LateCalls()
		ch <- prometheus.MustNewConstMetric(clusterLateDesc, prometheus.CounterValue, float64(late))
		ch <- prometheus.MustNewConstMetric(clusterLateAnsDesc, prometheus.CounterValue, float64(answers))
		ch <- prometheus.MustNewConstMetric(clusterUnreadDesc, prometheus.CounterValue, float64(c.RegistryUnread()))
		ch <- prometheus.MustNewConstMetric(clusterRepeatsDesc, prometheus.CounterValue, float64(c.DedupeRepeats()))
		broken, silent := c.DirectCallsUnanswered()
		ch <- prometheus.MustNewConstMetric(clusterUnansDesc, prometheus.CounterValue, float64(broken), "broken")
		ch <- prometheus.MustNewConstMetric(clusterUnansDesc, prometheus.CounterValue, float64(silent), "silent")
	}))
}
