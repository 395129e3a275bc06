package hub

// CloseReason is why a connection ended: the WebSocket close code sent (or
// received), the disconnectReason of the $disconnect event, and the label
// that names it in logs, metrics and between nodes. One table (below)
// feeds all of them; only its entries can be asked of another node.
type CloseReason struct {
	Code   int
	Reason string
	// Label names the reason in logs and metrics.
	Label string
}

// The close reasons.
var (
	CloseNoStatus     = CloseReason{1005, "Client-side close frame status not set", "client_close"}
	CloseAbnormal     = CloseReason{1006, "Connection closed abnormally", "client_gone"}
	CloseDeleted      = CloseReason{1000, "Connection deleted", "deleted"}
	CloseIdle         = CloseReason{1001, "Going away", "idle_timeout"}
	CloseMaxDuration  = CloseReason{1001, "Going away", "max_duration"}
	CloseShutdown     = CloseReason{1001, "Going away", "shutdown"}
	CloseProtocol     = CloseReason{1002, "Protocol error", "protocol_error"}
	CloseBinary       = CloseReason{1003, "Binary frames are not supported", "binary_frame"}
	CloseInvalidUTF8  = CloseReason{1007, "Invalid UTF-8 in text frame", "invalid_utf8"}
	CloseSlowConsumer = CloseReason{1008, "Slow consumer: outbound buffer stayed full", "slow_consumer"}
	CloseTooBig       = CloseReason{1009, "Message too big", "message_too_big"}
	CloseWriteTimeout = CloseReason{1006, "Write timed out", "write_timeout"}
	// CloseFenced: the node lost its place in the cluster (another node
	// may already answer 410 for its ids) and closes every connection so
	// that no 410 stands against a live one. 1012 is "service restart":
	// clients reconnect, to another node.
	CloseFenced = CloseReason{1012, "Service restart", "fenced"}
)

var closeReasons = []CloseReason{
	CloseNoStatus, CloseAbnormal, CloseDeleted, CloseIdle, CloseMaxDuration, CloseShutdown,
	CloseProtocol, CloseBinary, CloseInvalidUTF8, CloseSlowConsumer, CloseTooBig,
	CloseWriteTimeout, CloseFenced,
}

// CloseLabels are the labels of every close reason, in the table's order:
// the values a metric's reason label can take.
func CloseLabels() []string {
	out := make([]string, len(closeReasons))
	for i, r := range closeReasons {
		out[i] = r.Label
	}
	return out
}

// CloseReasonByLabel returns the table's reason with that label.
func CloseReasonByLabel(label string) (CloseReason, bool) {
	for _, r := range closeReasons {
		if r.Label == label {
			return r, true
		}
	}
	return CloseReason{}, false
}
