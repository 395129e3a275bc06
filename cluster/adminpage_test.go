package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/dashboardtest"
)

// TestClusterAdminPage: in headless Chromium, node 1's admin page lists
// both nodes (name, byte, state, connections, groups) and follows a client
// connecting to node 2; a single node's page hides the section (server's
// TestAdminPage).
func TestClusterAdminPage(t *testing.T) {
	heavy(t)
	srvs := startServers(t, embeddedConfigs(t, 2))
	ctx, _ := dashboardtest.Open(t, "http://AKID:secret@"+srvs[0].AdminAddr()+"/")
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	nodes := func() (string, error) {
		return dashboardtest.Eval[string](ctx, `document.getElementById("cluster").hidden ? "hidden" :
			[...document.querySelectorAll("#nodes tbody tr")].map(r => [...r.cells].map(c => c.textContent).join("|")).join("\n")`)
	}
	want := func(connsOnN2 int) string {
		return fmt.Sprintf("n1 (this node)|%s|up|0|0|–\nn2|%s|up|%d|0|", hub.NodeHex(srvs[0].Cluster().Self()), hub.NodeHex(srvs[1].Cluster().Self()), connsOnN2)
	}
	waitNodes := func(connsOnN2 int) {
		t.Helper()
		var got string
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			// The last column of n2 is how long ago it was heard: cut it.
			if got, err = nodes(); err == nil && strings.HasPrefix(got, want(connsOnN2)) && !strings.Contains(got[len(want(connsOnN2)):], "\n") {
				return
			}
		}
		t.Fatalf("the page's cluster nodes: %q, %v; want %q…", got, err, want(connsOnN2))
	}
	waitNodes(0)
	dial(t, srvs[1])
	waitNodes(1)
}
