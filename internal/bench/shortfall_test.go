package bench

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestShortfallSources: the kernel's counters read on Linux, and ss's
// report of a loopback connection whose client has not read what the
// server wrote counts it as unread on the client's side.
func TestShortfallSources(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/net and ss are Linux's")
	}
	if k := readNetCounters(); !k.ok || k.drops < 0 || k.retrans < 0 || k.timeouts < 0 {
		t.Fatalf("readNetCounters: %+v", k)
	}
	testenv.LookPath(t, "ss", "apt-get install iproute2")
	_, s := testenv.LoopbackPair(t) // the client reads nothing: what s writes stays unread
	if _, err := s.Write([]byte("frame")); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.LocalAddr().String())
	testenv.Eventually(t, 10*time.Second, func() error {
		q, err := readSockQueues("( dport = :" + port + " )")
		if err != nil {
			return err
		}
		if q.unread != 1 {
			return fmt.Errorf("client side: %+v, want 1 unread", q)
		}
		return nil
	})
}
