package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
)

// dialFrozen connects a client whose tiny receive buffer (set before
// connecting, so the kernel does not grow it) fills after a few frames;
// the test then never reads from it.
func (tg *testGateway) dialFrozen(t testing.TB) *websocket.Conn {
	return tg.dialFrozenBuf(t, 2048)
}

// dialFrozenBuf is dialFrozen with a receive buffer of rcvbuf bytes (the
// kernel doubles it). TestPingFlood's client sends 2.5 MB while its own
// buffer is full: with 2048 (4,096 held) the loopback segments the server
// sends outgrow the buffer, the client drops them, and both ends fell
// into retransmission backoff (RTO 13 s and more, 3 of 60 runs stalled
// past 3 minutes with nothing queued to read at the server).
func (tg *testGateway) dialFrozenBuf(t testing.TB, rcvbuf int) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { setRcvbuf(fd, rcvbuf) })
	}}).DialContext}
	c, _, err := d.Dial(tg.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// postUntilFull posts data to id until the gateway answers 429
// LimitExceededException (true) or 410 GoneException (false: the
// connection was closed first).
func (tg *testGateway) postUntilFull(t testing.TB, id string, data []byte) (full bool) {
	t.Helper()
	api := tg.mgmt()
	var limited *types.LimitExceededException
	var gone *types.GoneException
	testenv.Eventually(t, 60*time.Second, func() error {
		_, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data})
		switch {
		case errors.As(err, &limited):
			full = true
			return nil
		case errors.As(err, &gone):
			return nil
		case err != nil:
			t.Fatalf("unexpected error: %v", err)
		}
		return errors.New("still accepted")
	})
	return full
}

// waitDisconnect waits for a $disconnect event and returns its code.
func waitDisconnect(t testing.TB, be *backend) int64 {
	t.Helper()
	var e events.APIGatewayWebsocketProxyRequest
	_ = json.Unmarshal(be.waitEvents(t, "/disconnect", 1)[0], &e)
	return e.RequestContext.DisconnectStatusCode
}

// TestPingFlood: a client that pings hard and never reads holds at most
// one pending pong, not one per ping (issue 13, item 6).
func TestPingFlood(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.SendBufferBytes = 4096
	// The client never reads: with the 10 s default, a run slowed past it
	// (the full suite under -race) saw the connection closed as a stalled
	// writer before "mark" arrived, which is right, and not this test.
	cfg.WriteTimeoutSeconds = 3600
	cfg.Routes["whoami"] = be.whoamiRoute()
	cfg.Routes["mark"] = be.route("/mark")
	tg := startGateway(t, cfg)
	c := tg.dialFrozenBuf(t, 32<<10) // 64 KiB held: still far below the 2.5 MB of pongs
	id := whoami(t, c)

	payload := bytes.Repeat([]byte("p"), 125) // no byte of a pong's payload looks like a pong's first byte
	const pings = 20000                       // 2.5 MB of pongs, far more than the sockets hold
	for range pings {
		// The gateway reads on while pongs pile up (it folds them); a
		// write only waits for its reader to be scheduled.
		if err := c.WriteControl(websocket.PingMessage, payload, time.Now().Add(60*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// The reader handles frames in order: once "mark" reached the backend,
	// every ping before it has been answered or folded.
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"mark"}`)); err != nil {
		t.Fatal(err)
	}
	// 20,000 pings under -race on a loaded machine (load 20) took the
	// gateway more than 30 s to read; the wait is for throughput, not for
	// a stuck reader, so it is long.
	testenv.Eventually(t, 3*time.Minute, func() error {
		be.mu.Lock()
		defer be.mu.Unlock()
		if len(be.events["/mark"]) == 0 {
			return errors.New(`no "mark" at the backend yet`)
		}
		return nil
	})
	frames, n, pongs, ok := tg.gw.Outbound(id)
	if !ok {
		t.Fatal("connection closed")
	}
	// At most: the rest of a pong the socket took in part, a batch being
	// written and the one pending pong.
	if pongs > 1 || frames > 3 || n > 3*127 {
		t.Fatalf("after %d pings: %d frames, %d bytes, %d pongs pending", pings, frames, n, pongs)
	}
}

// TestQueueByteBound: the outbound queue is bounded in bytes too; when
// full a POST answers 429 and a publish skips the member (item 7).
func TestQueueByteBound(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.OutboundQueueBytes = 64 * 1024
	cfg.SendBufferBytes = 4096
	cfg.SlowConsumerSeconds = 3600
	cfg.WriteTimeoutSeconds = 3600
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	c := tg.dialFrozen(t)
	id := whoami(t, c)
	tg.join(t, "all", id)

	data := bytes.Repeat([]byte("q"), 16*1024)
	if !tg.postUntilFull(t, id, data) {
		t.Fatal("connection closed before its queue filled")
	}
	frames, n, _, _ := tg.gw.Outbound(id)
	if n > cfg.OutboundQueueBytes {
		t.Fatalf("%d frames, %d bytes pending; the bound is %d bytes", frames, n, cfg.OutboundQueueBytes)
	}
	if d := tg.publish(t, "all", data); d.Delivered != 0 || d.Skipped != 1 {
		t.Fatalf("publish to a full member: %+v, want it skipped", d)
	}
	if got := tg.gw.Config().OutboundQueueBytes; got != 64*1024 {
		t.Fatalf("config %d", got)
	}
}

// TestPostsQueuedKeepTheirBytes: PostToConnection builds its frame in a
// pooled buffer that goes back to the pool once written whole; a frame
// the socket did not take (in part, or queued behind a writer) must stay
// as it was. A client that reads nothing until 100 posts were answered
// gets every one of them, in order, byte for byte.
func TestPostsQueuedKeepTheirBytes(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.SendBufferBytes = 4096
	cfg.SlowConsumerSeconds = 3600
	cfg.WriteTimeoutSeconds = 3600
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	c := tg.dialFrozen(t)
	id := whoami(t, c)
	api := tg.mgmt()
	const n = 100
	msg := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 500+i) }
	for i := range n {
		if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: msg(i)}); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if frames, _, _, _ := tg.gw.Outbound(id); frames == 0 {
		t.Fatal("nothing queued: the test did not fill the socket")
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i := range n {
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, msg(i)) {
			t.Fatalf("message %d: %d bytes starting %q, want %d bytes of %q", i, len(got), got[:min(len(got), 8)], len(msg(i)), msg(i)[:1])
		}
	}
}

// TestConcurrentPostsKeepTheirBytes: posts to several connections at once
// reuse the pooled frames and SigV4's pooled bodies across goroutines;
// every connection still gets exactly its own messages, in order (run
// under -race, a body or frame reused while still read is reported).
func TestConcurrentPostsKeepTheirBytes(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	const clients, n = 4, 50
	msg := func(c, i int) []byte {
		return append(bytes.Repeat([]byte{byte('a' + c)}, 20+c*40+i), fmt.Sprintf("-%d-%d", c, i)...)
	}
	errs := make(chan error, clients)
	for k := range clients {
		c := tg.dial(t, nil)
		id := whoami(t, c)
		go func() {
			api := tg.mgmt()
			for i := range n {
				if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: msg(k, i)}); err != nil {
					errs <- fmt.Errorf("client %d, post %d: %v", k, i, err)
					return
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for i := range n {
				_, got, err := c.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("client %d, message %d: %v", k, i, err)
					return
				}
				if !bytes.Equal(got, msg(k, i)) {
					errs <- fmt.Errorf("client %d, message %d: %q, want %q", k, i, got, msg(k, i))
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueueBytesConfig: the default and the range check.
func TestQueueBytesConfig(t *testing.T) {
	cfg := baseConfig()
	cfg.SetDefaults()
	if cfg.OutboundQueueBytes != 1<<20 {
		t.Fatalf("default outboundQueueBytes %d", cfg.OutboundQueueBytes)
	}
	for _, tc := range []struct {
		name  string
		bytes int
		ok    bool
	}{{"too small", 1023, false}, {"smallest", 1024, true}, {"largest", 1 << 30, true}, {"too large", 1<<30 + 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.OutboundQueueBytes = tc.bytes
			cfg.SetDefaults()
			err := cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate: %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), "outboundQueueBytes") {
				t.Fatalf("error does not name the field: %v", err)
			}
		})
	}
}

// TestSlowConsumerDefaults: with default settings a client that stops
// reading while messages keep coming is closed as a slow consumer (1008),
// as documented, not by the write timeout with 1006 (item 18).
func TestSlowConsumerDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("waits writeTimeoutSeconds (10 s)")
	}
	for _, front := range []bool{false, true} {
		t.Run(map[bool]string{false: "net/http", true: "front"}[front], func(t *testing.T) {
			be := newBackend(t, nil)
			cfg := baseConfig()
			cfg.Routes["whoami"] = be.whoamiRoute()
			cfg.Routes["$disconnect"] = be.route("/disconnect")
			tg := startGatewayWith(t, cfg, testLogger(t), front)
			c := tg.dialFrozen(t)
			id := whoami(t, c)
			full := tg.postUntilFull(t, id, bytes.Repeat([]byte("s"), 128*1024))
			if code := waitDisconnect(t, be); code != 1008 || !full {
				t.Fatalf("$disconnect code %d (queue filled: %v), want 1008 after the queue filled", code, full)
			}
		})
	}
}
