package gateway_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestLingerBound: a burst of joins, one from each of many connections,
// leaves at most the gateway's bound of read turns lingering for more
// (the others go back to the poller at once), and every connection is
// still read, lingering or not. Turns linger an hour here, so what
// lingers stays until the test's next message.
func TestLingerBound(t *testing.T) {
	const conns, bound = 32, 4
	cfg := baseConfig()
	cfg.Routes["subscribe"] = gateway.Route{
		Groups:                           &gateway.RouteGroups{Join: "$request.body.group", Allow: []string{"*"}},
		RouteResponseSelectionExpression: "$default",
	}
	tg := startGatewayWith(t, cfg, testLogger(t), true)
	tg.gw.SetLinger(time.Hour, bound)
	cs := make([]*websocket.Conn, conns)
	for i := range cs {
		cs[i] = tg.dial(t, nil)
	}
	send := func(round int) {
		t.Helper()
		for i, c := range cs {
			if err := c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"action":"subscribe","group":"g%d-%d"}`, i, round)); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range cs {
			if got := readText(t, c); !strings.Contains(got, "subscribed") {
				t.Fatalf("connection %d, round %d: %q", i, round, got)
			}
		}
	}
	for round := range 2 {
		send(round)
		// Each join's read turn has answered; wait until each has
		// either gone back to the poller or lingers.
		var n int
		testenv.Eventually(t, 30*time.Second, func() error {
			n = lingeringGoroutines()
			if r := tg.gw.Reading(); r != n {
				return fmt.Errorf("%d connections read, %d goroutines linger", r, n)
			}
			return nil
		})
		if n > bound {
			t.Fatalf("round %d: %d read turns linger after %d joins; the bound is %d", round, n, conns, bound)
		}
		if c := tg.gw.Lingering(); c != n {
			t.Fatalf("round %d: the gateway counts %d lingering, %d goroutines do", round, c, n)
		}
	}
}

// lingeringGoroutines counts the goroutines waiting in a read turn's
// linger (conn.linger) for their socket to turn readable.
func lingeringGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("gateway.waitReadable(")) && bytes.Contains(g, []byte("gateway.(*conn).linger(")) {
			count++
		}
	}
	return count
}
