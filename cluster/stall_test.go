package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// shortLease is cfg with a registry lease of 5 s (renewed every second):
// a stalled node's entry expires within a test's patience.
func shortLease(cfg cluster.Config) cluster.Config {
	cfg.LeaseSeconds, cfg.IsolationSeconds = 5, 4
	return cfg
}

// stallHooks holds a node's registry renewals and its registry watcher
// (each at its next step once armed: the goroutine's later work waits
// behind it) and reports the messages on its byte it leaves unanswered.
// Once armed, move holds a fenced node's move to another byte right
// after it claimed one.
type stallHooks struct {
	renewal, watcher, move *gate
	silent                 chan struct{} // one per message left unanswered, while there is room
}

func stall(t *testing.T, h *cluster.Hub) *stallHooks {
	s := &stallHooks{renewal: newGate(t), watcher: newGate(t), move: newGate(t), silent: make(chan struct{}, 64)}
	h.SetStepHook(func(step string) {
		switch step {
		case "renew-send":
			s.renewal.pass()
		case "apply":
			s.watcher.pass()
		case "move-claimed":
			s.move.pass()
		case "not-owner":
			select {
			case s.silent <- struct{}{}:
			default:
			}
		}
	})
	return s
}

// stallPastLease holds s's registry renewals and its registry watcher
// (stall) and waits until its registry entry has expired (a shortLease).
func stallPastLease(t *testing.T, url string, s *cluster.Hub) *stallHooks {
	ew := watchEntry(t, url, s.Self())
	hooks := stall(t, s)
	hooks.renewal.armed.Store(true)
	hooks.watcher.armed.Store(true)
	hooks.renewal.hold(t, "S's renewal")
	hooks.watcher.hold(t, "S's registry watcher")
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, vacant := ew.seen(""); vacant == 0 {
			return errors.New("S's entry has not expired")
		}
		return nil
	})
	return hooks
}

// answerAfter makes owner answer each batch of calls only once a node
// stalled on the same byte has had it and left it unanswered (silent),
// or once the test ends: an answer of the stalled node's would come
// first. owner.SetConnHook(func(string) {}) ends it.
func answerAfter(t *testing.T, owner *cluster.Hub, silent <-chan struct{}) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	owner.SetConnHook(func(string) {
		select {
		case <-silent:
		case <-stop:
		}
	})
}

// TestClusterStalledUpNodeAnswersNoCall: an up node S stalls (its
// registry renewals and its registry watcher held: a process that does
// not run) past its entry's time to live; the entry expires, another
// node N takes the byte and registers a client. S is still subscribed to
// the byte's subjects, its view of the registry still naming itself (its
// watcher has delivered nothing): a call on N's id reaches both, and S
// must leave it unanswered (an answer would be 410, racing N's). N's
// answer is held until S has had the call and left it, so an answer of
// S's would come first. Woken, S finds its entry taken and fences (its
// client gets 1012); the calls on N's id are answered by N throughout. S's
// byte is configured (node.id): it does not move to another
// (TestClusterStalledNodeMoves is S with node.id auto), it stays fenced,
// and its readiness names the holder and asks for a restart. Off the
// byte, S answers nothing there, pings included: N killed is declared gone
// on "no responders" (before, on its silence), and S then takes its
// byte back.
func TestClusterStalledUpNodeAnswersNoCall(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	b := startHubs(t, []cluster.Config{shortLease(externalConfig(url, "u1"))})[0]
	s := startOne(t, withByte(shortLease(externalConfig(url, "u2")), freeByte(b)))
	self := s.Self()
	testenv.Eventually(t, 20*time.Second, func() error {
		if st := stateOf(b, self); st != "up" {
			return fmt.Errorf("B sees S %q, want up", st)
		}
		return nil
	})
	ctx := context.Background()
	old := hubtest.NewConn(hub.NewID(self), false)
	if err := s.Register(old); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, old.ID(), hub.NewMessage([]byte("before"))); err != nil {
		t.Fatal(err)
	}
	hooks := stallPastLease(t, url, s)
	n := startOne(t, withByte(shortLease(externalConfig(url, "u3")), self))
	fresh := hubtest.NewConn(hub.NewID(self), false)
	if err := n.Register(fresh); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if st := stateOf(b, self); st != "up" {
			return fmt.Errorf("B sees the new owner %q, want up", st)
		}
		return nil
	})
	answerAfter(t, n, hooks.silent)
	for i := range 5 {
		if err := b.Send(ctx, fresh.ID(), hub.NewMessage(fmt.Appendf(nil, "%d", i))); err != nil {
			t.Fatalf("send %d to N's connection, the stalled S subscribed too: %v", i, err)
		}
	}
	n.SetConnHook(func(string) {})

	// S wakes: it finds its entry taken and fences.
	hooks.watcher.open()
	hooks.renewal.open()
	testenv.Eventually(t, 30*time.Second, func() error {
		if r, ok := old.Closed(); !ok || r != hub.CloseFenced {
			return fmt.Errorf("S's connection: closed %v %v, want 1012 fenced", ok, r)
		}
		return nil
	})
	if f := s.Fenced(); f != 1 {
		t.Fatalf("S fenced %d times, want 1", f)
	}
	for i := range 5 {
		if err := b.Send(ctx, fresh.ID(), hub.NewMessage(fmt.Appendf(nil, "after %d", i))); err != nil {
			t.Fatalf("send %d to N's connection after S woke: %v", i, err)
		}
	}
	if f := n.Fenced(); f != 0 {
		t.Fatalf("N fenced %d times", f)
	}
	// S cannot take its byte back while N holds it, and its node.id pins
	// it: /readyz says so, naming the holder and what brings S back.
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "is now held by u3") || !strings.Contains(err.Error(), "restart this process") {
			return fmt.Errorf("S's readiness: %v", err)
		}
		return nil
	})
	if s.Self() != self || s.Moves() != 0 {
		t.Fatalf("S with node.id %d is on byte %d, moved %d times; want it kept", self, s.Self(), s.Moves())
	}

	// S answers nothing on the byte N holds, pings included: N dies (its
	// NATS connections closed, nothing released), and B's calls on N's id
	// find no responders, on which B declares N gone. Before, S stayed
	// subscribed to the byte's subjects (leaving calls unanswered,
	// answering pings): no "no responders", and N was declared on its
	// silence, nodeTimeoutMillis after its last heartbeat.
	testenv.Eventually(t, 30*time.Second, func() error {
		// "No responders" is evidence against an incarnation B heard:
		// a heartbeat of N's counting its client.
		nodes, _ := b.Nodes(ctx)
		for _, nd := range nodes {
			if nd.ID == hub.NodeHex(self) && nd.Name == "u3" && nd.Connections == 1 {
				return nil
			}
		}
		return errors.New("B has not heard N's heartbeat with its client")
	})
	ew := watchEntry(t, url, self)
	cluster.Crash(n)
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := b.Send(ctx, fresh.ID(), hub.NewMessage([]byte("N killed"))); !errors.Is(err, hub.ErrGone) {
			return fmt.Errorf("a call on the killed N's id: %v, want gone", err)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		if len(ew.goneReasons()) == 0 {
			return errors.New("N's entry not seen written gone")
		}
		return nil
	})
	if why := ew.goneReasons(); len(why) != 1 || why[0] != "no responders" {
		t.Fatalf("N declared gone for %q, want once for \"no responders\" (not its silence: S answered on its byte)", why)
	}

	// N gone, S takes its byte back as a start does (joining, subscribed,
	// up): ready, on its own byte, not counted a move; a client registered
	// there is reached from B, and N's id answers 410 (S has no such
	// connection).
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := s.Ready(); err != nil {
			return fmt.Errorf("S's readiness: %v", err)
		}
		if st := stateOf(b, self); st != "up" {
			return fmt.Errorf("B sees byte %02x %q, want S up", self, st)
		}
		return nil
	})
	if s.Self() != self || s.Moves() != 0 || s.Fenced() != 1 {
		t.Fatalf("S with node.id %d is on byte %d, moved %d times, fenced %d; want its byte back, no move, one fence", self, s.Self(), s.Moves(), s.Fenced())
	}
	back := hubtest.NewConn(hub.NewID(self), false)
	if err := s.Register(back); err != nil {
		t.Fatal(err)
	}
	if _, closed := back.Closed(); closed {
		t.Fatal("a client registered on S once it took its byte back was closed")
	}
	if err := b.Send(ctx, back.ID(), hub.NewMessage([]byte("back"))); err != nil {
		t.Fatalf("B's call on S's new client: %v", err)
	}
	if err := b.Send(ctx, fresh.ID(), hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
		t.Fatalf("B's call on N's id with S back on the byte: %v, want gone", err)
	}
}

// TestClusterStalledUpNodeCarriesOn: an up node S whose renewals stall
// falls silent on its byte at its last renewal's send time + leaseSeconds
// − 1 s, the entry still its own; its next renewal, before the entry
// expired, makes it answer again: no fence, its client kept, the same
// incarnation (docs/cluster.md: rule 3 fences only a node that could not
// renew for leaseSeconds). For the stall to end before the expiry whatever
// the machine's load, the registry's bucket was made by B with a TTL of
// an hour while S counts its own lease, 8 s: S's answers stop 7 s after
// its last renewal, its entry lives on.
func TestClusterStalledUpNodeCarriesOn(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	bc := externalConfig(url, "c1")
	bc.LeaseSeconds = 3600
	b := startHubs(t, []cluster.Config{bc})[0]
	sc := externalConfig(url, "c2")
	sc.LeaseSeconds, sc.IsolationSeconds = 8, 7
	s := startOne(t, sc)
	testenv.Eventually(t, 20*time.Second, func() error {
		if st := stateOf(b, s.Self()); st != "up" {
			return fmt.Errorf("B sees S %q, want up", st)
		}
		return nil
	})
	ctx := context.Background()
	conn := hubtest.NewConn(hub.NewID(s.Self()), false)
	if err := s.Register(conn); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, conn.ID(), hub.NewMessage([]byte("before"))); err != nil {
		t.Fatal(err)
	}
	inc := s.Incarnation()
	hooks := stall(t, s)
	var renewed atomic.Int64
	s.SetRenewHook(func(err error) {
		if err == nil {
			renewed.Add(1)
		}
	})
	hooks.renewal.armed.Store(true)
	hooks.renewal.hold(t, "S's renewal")
	// Calls on S's connection until S leaves one unanswered.
	testenv.Eventually(t, 60*time.Second, func() error {
		select {
		case <-hooks.silent:
			return nil
		default:
		}
		_ = b.Send(ctx, conn.ID(), hub.NewMessage([]byte("during")))
		return errors.New("S still answers")
	})
	ok := renewed.Load()
	hooks.renewal.open()
	testenv.Eventually(t, 30*time.Second, func() error {
		if renewed.Load() == ok {
			return errors.New("no renewal has succeeded since the stall")
		}
		return nil
	})
	if err := b.Send(ctx, conn.ID(), hub.NewMessage([]byte("after"))); err != nil {
		t.Fatalf("a call on S's connection after its renewal: %v", err)
	}
	if _, closed := conn.Closed(); closed || s.Fenced() != 0 || s.Incarnation() != inc {
		t.Fatalf("S: connection closed %v, fenced %d times, incarnation %s (was %s); want it carrying on", closed, s.Fenced(), s.Incarnation(), inc)
	}
	if _, _, e := registryEntry(t, url, s.Self()); e["inc"] != inc || e["state"] != "up" {
		t.Fatalf("S's registry entry %v, want incarnation %s up", e, inc)
	}
}

// TestClusterStalledNodeMoves: S, a wsgate server with node.id auto, has
// a WebSocket client (a member of a group) when it stalls (its renewals
// and its registry watcher held) past its entry's time to live; the entry
// expires and N takes the byte (a configured node.id). Woken, S fences (its
// client gets 1012) and, its byte held, moves to another one without a
// restart: held there, /readyz answers 503 saying so; let go, it answers
// 200, S is up under the new byte in A's view, a new client's id carries
// the new byte and is reached by a POST through A, the old client's id
// answers 410 through A (N's answer), the group has no member left, and
// S answers nothing on its old byte's subject: with N gone, a ping there
// finds no responders. A connection registered while S moves, or after
// under an id of the old byte, is closed at once. Before, S stayed fenced
// until restarted.
func TestClusterStalledNodeMoves(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	srvs := startServers(t, []cluster.Config{shortLease(externalConfig(url, "m1")), shortLease(externalConfig(url, "m2"))})
	a, s := srvs[0], srvs[1]
	sh := s.Cluster()
	from := sh.Self()
	ctx := context.Background()
	ws, oldID := dial(t, s)
	if err := groupClient(t, a).Join(ctx, "room.m", oldID); err != nil {
		t.Fatal(err)
	}
	if _, err := sdk(a).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(oldID), Data: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, ws); got != "before" {
		t.Fatalf("S's client got %q", got)
	}
	readyz := "http://" + s.AdminAddr() + "/readyz"
	if code, body := httpGet(t, readyz); code != 200 {
		t.Fatalf("S's readyz before the stall: %d %s", code, body)
	}

	hooks := stallPastLease(t, url, sh)
	hooks.move.armed.Store(true)
	n := startOne(t, withByte(shortLease(externalConfig(url, "m3")), from))

	// S wakes: its byte is N's. It fences, and moves.
	hooks.watcher.open()
	hooks.renewal.open()
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 1012) {
		t.Fatalf("S's client after the fence: %v, want close 1012", err)
	}
	hooks.move.hold(t, "S's move, another byte claimed")
	if code, body := httpGet(t, readyz); code != 503 || !strings.Contains(body, "is now held by m3") || !strings.Contains(body, "moving to another node byte") {
		t.Fatalf("S's readyz while it moves: %d %s, want 503 saying it moves", code, body)
	}
	to := sh.Self()
	if to == from {
		t.Fatalf("S claimed its old byte %d again", from)
	}
	// A connection that registers while S moves (its upgrade began before
	// the fence), whatever byte its id names, is closed at once.
	for _, b := range []byte{from, to} {
		c := hubtest.NewConn(hub.NewID(b), false)
		if err := sh.Register(c); err != nil {
			t.Fatal(err)
		}
		if r, ok := c.Closed(); !ok || r != hub.CloseFenced {
			t.Fatalf("a connection of byte %d registered during the move: closed %v %v, want 1012 fenced", b, ok, r)
		}
		sh.Unregister(c.ID())
	}
	hooks.move.open()
	testenv.Eventually(t, 30*time.Second, func() error {
		if code, body := httpGet(t, readyz); code != 200 {
			return fmt.Errorf("S's readyz: %d %s", code, body)
		}
		if st := stateOf(a.Cluster(), to); st != "up" {
			return fmt.Errorf("A sees S's new byte %d %q, want up", to, st)
		}
		return nil
	})
	if sh.Self() != to || sh.Moves() != 1 || sh.Fenced() != 1 || n.Fenced() != 0 {
		t.Fatalf("S on byte %d (claimed %d), moved %d, fenced %d times; N fenced %d times", sh.Self(), to, sh.Moves(), sh.Fenced(), n.Fenced())
	}
	if _, body := httpGet(t, "http://"+s.AdminAddr()+"/metrics"); !strings.Contains(body, "\nwsgate_cluster_node_moves_total 1\n") || !strings.Contains(body, "\nwsgate_cluster_ready 1\n") {
		t.Fatalf("S's metrics after the move:\n%s", grepLines(body, "wsgate_cluster_"))
	}

	// One registered after the move under an id of the old byte (minted
	// before it) is closed at once; the byte is N's.
	late := hubtest.NewConn(hub.NewID(from), false)
	if err := sh.Register(late); err != nil {
		t.Fatal(err)
	}
	if r, ok := late.Closed(); !ok || r != hub.CloseFenced {
		t.Fatalf("a connection of the old byte registered after the move: closed %v %v, want 1012 fenced", ok, r)
	}
	sh.Unregister(late.ID())

	ws2, newID := dial(t, s)
	if b, _ := hub.NodeOf(newID); b != to {
		t.Fatalf("S's new client has id %s of byte %d, want %d", newID, b, to)
	}
	if _, err := sdk(a).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(newID), Data: []byte("after")}); err != nil {
		t.Fatalf("post through A to S's new client: %v", err)
	}
	if got := read(t, ws2); got != "after" {
		t.Fatalf("S's new client got %q", got)
	}
	for _, via := range srvs {
		_, err := sdk(via).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(oldID), Data: []byte("x")})
		if !isGone(err) {
			t.Fatalf("post to S's old client: %v, want GoneException", err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		members, err := groupClient(t, a).AllMembers(ctx, "room.m")
		if err != nil || len(members) != 0 {
			return fmt.Errorf("members of S's old client's group: %v %v, want none", members, err)
		}
		return nil
	})

	// N leaves: nobody answers on the old byte any more, S included.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testenv.Eventually(t, 10*time.Second, func() error {
		m := nats.NewMsg("wsg.ext.n." + hub.NodeHex(from) + ".c")
		m.Header.Set("Wsg-Op", "ping")
		m.Header.Set("Wsg-Deadline", fmt.Sprint(time.Now().Add(time.Second).UnixMilli()))
		if _, err := nc.RequestMsg(m, time.Second); !errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("a ping on the old byte's subject: %v, want no responders", err)
		}
		return nil
	})
}
