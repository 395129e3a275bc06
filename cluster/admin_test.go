package cluster_test

import (
	"strings"
	"testing"
	"time"
)

// TestClusterReadyAndMetrics: a node's /readyz says whether it holds its
// place in the cluster, and /metrics counts the nodes it sees.
func TestClusterReadyAndMetrics(t *testing.T) {
	parallel(t)
	srvs := startServers(t, embeddedConfigs(t, 2))
	get := func(url string) (int, string) { return httpGet(t, url) }
	for _, s := range srvs {
		base := "http://" + s.AdminAddr()
		if code, body := get(base + "/readyz"); code != 200 {
			t.Fatalf("readyz %d %s, want 200", code, body)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, body := get(base + "/metrics")
			if strings.Contains(body, "\nwsgate_cluster_nodes 2\n") && strings.Contains(body, "\nwsgate_cluster_ready 1\n") &&
				strings.Contains(body, "\nwsgate_cluster_fenced_total 0\n") && strings.Contains(body, "\nwsgate_cluster_node_moves_total 0\n") &&
				strings.Contains(body, "\nwsgate_cluster_call_batches_late_total 0\n") && strings.Contains(body, "\nwsgate_cluster_registry_unread_total 0\n") &&
				strings.Contains(body, "\nwsgate_cluster_dedupe_repeats_total 0\n") && strings.Contains(body, "\nwsgate_cluster_direct_calls_unanswered_total{reason=\"silent\"} 0\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("metrics never showed 2 nodes, ready:\n%s", grepLines(body, "wsgate_cluster_"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
