package gateway_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestPublishToStarvedMembers: group publishes, from two goroutines at
// once, to many members, half of whose clients read nothing until every
// publish has been answered. Their sockets fill (2 KB receive, 4 KB send
// buffers), so each of them has a write turn that the socket did not
// take whole and a writer goroutine waiting for writability, all at the
// same time, with the rest of its frames queued in wsgate. When those
// clients read, every member gets every frame it was counted as
// delivered, whole and in each publisher's order: a writer whose wait is
// never woken, or a frame queued with no write turn to take it, leaves a
// member short, and the failure names the frames the gateway still holds.
// Both fronts: httpfront's sockets enter the runtime's poller only when
// a write has to wait.
func TestPublishToStarvedMembers(t *testing.T) {
	for _, front := range []bool{false, true} {
		t.Run(map[bool]string{false: "net/http", true: "httpfront"}[front], func(t *testing.T) {
			testPublishToStarved(t, front)
		})
	}
}

func testPublishToStarved(t *testing.T, front bool) {
	const (
		members    = 400 // over hub's parallelPublish: blocks on two goroutines
		publishers = 2
		// each; about 70 frames fill a starved member's socket (its 64 KiB
		// receive buffer, the server's 8 KiB send buffer): about half of
		// what is published to it waits in the gateway.
		publishes = 64
	)
	cfg := baseConfig()
	cfg.SendBufferBytes = 4096
	cfg.OutboundQueueFrames = 4 * publishers * publishes // nothing is skipped
	cfg.SlowConsumerSeconds = 3600
	cfg.WriteTimeoutSeconds = 3600
	tg := startGatewayWith(t, cfg, testLogger(t), front)
	clients := make([]*websocket.Conn, members)
	for i := range clients {
		// 64 KiB held, not 4 KiB: a starved member that starts reading
		// drains what waited through its buffer, and at 4 KiB loopback
		// segments outgrew it, were dropped, and the server's
		// retransmissions backed off (as TestPingFlood's did: a run in
		// about 20 took 3 to 7 times the median).
		clients[i] = tg.dialFrozenBuf(t, 32<<10)
	}
	tg.joinAll(t, members)
	h := tg.gw.Hub()
	ctx := context.Background()

	pad := strings.Repeat("p", 1000)
	errs := make(chan error, members+publishers)
	starve := make(chan struct{}) // closed when the starved clients may read
	var readers sync.WaitGroup
	for i, c := range clients {
		readers.Go(func() {
			if i%2 == 1 {
				<-starve
			}
			next := map[string]int{} // publisher → the number expected next
			for k := range publishers * publishes {
				_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
				_, p, err := c.ReadMessage()
				if err != nil {
					frames, writing := tg.gw.Unwritten()
					errs <- fmt.Errorf("member %d: frame %d of %d: %w (the gateway holds %d frames unwritten, %d write turns)",
						i, k, publishers*publishes, err, frames, writing)
					return
				}
				f := strings.SplitN(string(p), " ", 3)
				if len(f) != 3 || f[1] != strconv.Itoa(next[f[0]]) || f[2] != pad {
					errs <- fmt.Errorf("member %d: got %.12q, want %s %d", i, p, f[0], next[f[0]])
					return
				}
				next[f[0]]++
			}
		})
	}
	var senders sync.WaitGroup
	for k := range publishers {
		senders.Go(func() {
			for i := range publishes {
				d, err := h.Publish(ctx, "all", hub.NewMessage(fmt.Appendf(nil, "p%d %d %s", k, i, pad)))
				if err != nil || d.Delivered != members {
					errs <- fmt.Errorf("publish p%d %d: %+v, %v", k, i, d, err)
					return
				}
			}
		})
	}
	senders.Wait()
	// The starved members' frames wait in the gateway for their sockets.
	if frames, writing := tg.gw.Unwritten(); frames == 0 || writing == 0 {
		t.Errorf("after the publishes, the gateway holds %d frames unwritten, %d write turns: the starved members' sockets did not fill", frames, writing)
	}
	close(starve)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if frames, writing := tg.gw.Unwritten(); frames != 0 || writing != 0 {
			return fmt.Errorf("the gateway holds %d frames unwritten, %d write turns", frames, writing)
		}
		return nil
	})
}
