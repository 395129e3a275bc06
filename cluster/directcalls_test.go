package cluster_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// directPair starts cfgs' two nodes, registers a connection on the second
// (the owner) and posts to it through the first (the origin) until a call
// went over the origin's direct link to the owner (the first finds no
// connection open and has one dialed); warm is what was posted.
func directPair(t *testing.T, cfgs []cluster.Config) (origin, owner *cluster.Hub, c *hubtest.Conn, warm []string) {
	t.Helper()
	hubs := startHubs(t, cfgs)
	origin, owner = hubs[0], hubs[1]
	c = hubtest.NewConn(hub.NewID(owner.Self()), false)
	if err := owner.Register(c); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		p := fmt.Sprintf("warm-%d", len(warm))
		if err := origin.Send(context.Background(), c.ID(), hub.NewMessage([]byte(p))); err != nil {
			return err
		}
		warm = append(warm, p)
		if n, _ := origin.DirectCalls(); n == 0 {
			return errors.New("no call went over the direct link yet")
		}
		return nil
	})
	return origin, owner, c, warm
}

// Calls that go alone go over the direct link once a connection to the
// owner is open: post, get, leave and delete; a join goes over NATS (its
// answer must follow the owner's new group interest on the route). Each
// is answered as over NATS and run once.
func TestClusterDirectCalls(t *testing.T) {
	parallel(t)
	cfgs := patient(embeddedConfigs(t, 2))
	for i := range cfgs {
		cfgs[i].AttemptTimeoutMillis = 10_000 // a stalled process: no attempt of these calls times out
	}
	origin, owner, c, want := directPair(t, cfgs)
	ctx := context.Background()
	step := func(what string, direct bool, f func() error) {
		t.Helper()
		sent0, served0 := origin.DirectCalls()
		_, ownerServed0 := owner.DirectCalls()
		calls0, _ := origin.CallsOut()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		sent, served := origin.DirectCalls()
		_, ownerServed := owner.DirectCalls()
		calls, _ := origin.CallsOut()
		if direct && (sent != sent0+1 || ownerServed != ownerServed0+1 || calls != calls0) {
			t.Fatalf("%s: %d calls sent over the link, %d served by the owner, %d over NATS; want 1, 1, 0", what, sent-sent0, ownerServed-ownerServed0, calls-calls0)
		}
		if !direct && (sent != sent0 || calls != calls0+1) {
			t.Fatalf("%s: %d calls sent over the link, %d over NATS; want 0, 1", what, sent-sent0, calls-calls0)
		}
		if served != served0 {
			t.Fatalf("%s: the origin served %d call frames", what, served-served0)
		}
	}
	step("post", true, func() error { return origin.Send(ctx, c.ID(), hub.NewMessage([]byte("direct"))) })
	want = append(want, "direct")
	if got := c.Got(); !slices.Equal(got, want) {
		t.Fatalf("the connection got %q, want %q", got, want)
	}
	step("get", true, func() error {
		info, err := origin.Info(ctx, c.ID())
		if err == nil && info.ConnectionID != c.ID() {
			err = fmt.Errorf("info of %q, want %q", info.ConnectionID, c.ID())
		}
		return err
	})
	step("join", false, func() error { return origin.Join(ctx, "g", c.ID()) })
	if owner.GroupSubs()["g"] != 1 {
		t.Fatalf("the owner's group subscriptions are %v after the join, want g", owner.GroupSubs())
	}
	step("leave", true, func() error { return origin.Leave(ctx, "g", c.ID()) })
	if n, err := owner.Count(ctx, "g"); err != nil || n != 0 {
		t.Fatalf("count of g after the leave: %d, %v; want 0", n, err)
	}
	step("post to an unknown id", true, func() error {
		if err := origin.Send(ctx, hub.NewID(owner.Self()), hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
			return fmt.Errorf("got %v, want hub.ErrGone", err)
		}
		return nil
	})
	step("delete", true, func() error { return origin.Disconnect(ctx, c.ID(), hub.CloseDeleted) })
	if _, closed := c.Closed(); !closed {
		t.Fatal("the connection was not closed by the delete")
	}
}

// A direct connection that breaks while the owner runs the call on it
// (held there): the origin sends the call again over NATS with the same
// key, the owner runs it, and the held call, let go, is answered from the
// owner's table: the connection gets the frame once and the call is
// answered, with dedupeSeconds 10 and 0 alike (before, with 0 the frame
// arrived twice). The control: the call did go again over NATS, and the
// owner answered the held one from its table.
func TestClusterDirectCallBroken(t *testing.T) {
	parallel(t)
	for _, dedupe := range []int{10, 0} {
		t.Run(fmt.Sprintf("dedupeSeconds=%d", dedupe), func(t *testing.T) {
			cfgs, nw := proxiedConfigs(t, 2)
			cfgs = patient(cfgs)
			for i := range cfgs {
				cfgs[i].AttemptTimeoutMillis = 10_000 // the break, not a timeout, ends the direct attempt
				cfgs[i].DedupeSeconds = &dedupe
			}
			origin, owner, c, warm := directPair(t, cfgs)
			var armed atomic.Bool
			entered, gate := make(chan struct{}), make(chan struct{})
			owner.SetConnHook(func(op string) {
				if op == "post" && armed.CompareAndSwap(true, false) {
					close(entered)
					<-gate
				}
			})
			var release sync.Once
			open := func() { release.Do(func() { close(gate) }) }
			t.Cleanup(open) // before the hubs close, should the test fail while held
			armed.Store(true)
			sent0, _ := origin.DirectCalls()
			calls0, _ := origin.CallsOut()
			_, served0 := owner.DirectCalls()
			broken0, silent0 := origin.DirectCallsUnanswered()
			repeats0 := owner.DedupeRepeats()
			errs := make(chan error, 1)
			go func() { errs <- origin.Send(context.Background(), c.ID(), hub.NewMessage([]byte("once"))) }()
			<-entered
			// Counted once written: the owner may read it first.
			testenv.Eventually(t, 20*time.Second, func() error {
				if sent, _ := origin.DirectCalls(); sent != sent0+1 {
					return fmt.Errorf("%d calls went over the direct link, want 1", sent-sent0)
				}
				return nil
			})
			nw.query[0][1].heal() // closes the link's connections
			testenv.Eventually(t, 20*time.Second, func() error {
				if calls, _ := origin.CallsOut(); calls != calls0+1 {
					return fmt.Errorf("%d calls over NATS, want 1", calls-calls0)
				}
				return nil
			})
			// The retry ran the call (the first is held) and answered it.
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			open()
			testenv.Eventually(t, 20*time.Second, func() error {
				if _, served := owner.DirectCalls(); served != served0+1 {
					return errors.New("the owner has not finished the held call")
				}
				return nil
			})
			if got := c.Got()[len(warm):]; !slices.Equal(got, []string{"once"}) {
				t.Fatalf("the connection got %q after the warm-up, want [once]", got)
			}
			if r := owner.DedupeRepeats() - repeats0; r != 1 {
				t.Fatalf("the owner answered %d calls from its table, want 1 (the held one)", r)
			}
			if broken, silent := origin.DirectCallsUnanswered(); broken != broken0+1 || silent != silent0 {
				t.Fatalf("calls unanswered on the link: %d broken, %d silent; want 1, 0", broken-broken0, silent-silent0)
			}
		})
	}
}

// A direct link that goes silent after the owner ran a call sent on it
// (blackholed as the owner takes the call: its answer is lost, nothing is
// reset), with dedupeSeconds 0: after a whole attempt without an answer
// the origin closes the connection and sends the call again over NATS,
// same key; the owner answers it from its table (it keeps a forwarded
// call's key until its deadline, whatever dedupeSeconds says). The call
// is answered and the frame arrives once; before, it arrived twice. The
// control: the owner answered a repeat from its table, when the call
// reached it over the link first (the order of a process not starved
// for an attempt's 2 s).
func TestClusterDirectCallAnswerLost(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 2)
	cfgs = patient(cfgs)
	off := 0
	for i := range cfgs {
		cfgs[i].AttemptTimeoutMillis = 2000
		cfgs[i].DedupeSeconds = &off
	}
	origin, owner, c, warm := directPair(t, cfgs)
	calls0, _ := origin.CallsOut()
	sent0, _ := origin.DirectCalls()
	broken0, silent0 := origin.DirectCallsUnanswered()
	repeats0 := owner.DedupeRepeats()
	var armed atomic.Bool
	onLink := make(chan bool, 1) // the first run: the call over the link (nothing over NATS yet)
	owner.SetConnHook(func(op string) {
		if op == "post" && armed.CompareAndSwap(true, false) {
			nw.query[0][1].blackhole() // the answer goes nowhere
			calls, _ := origin.CallsOut()
			onLink <- calls == calls0
		}
	})
	armed.Store(true)
	if err := origin.Send(context.Background(), c.ID(), hub.NewMessage([]byte("once"))); err != nil {
		t.Fatal(err)
	}
	sent, _ := origin.DirectCalls()
	calls, _ := origin.CallsOut()
	broken, silent := origin.DirectCallsUnanswered()
	if sent != sent0+1 || calls == calls0 || broken != broken0 || silent != silent0+1 {
		t.Fatalf("%d calls over the link, %d over NATS, %d broken and %d silent on the link; want 1, at least 1, 0, 1", sent-sent0, calls-calls0, broken-broken0, silent-silent0)
	}
	// The owner runs the origin's NATS calls in order: once a last one
	// is answered, every attempt of the first was run or answered.
	if err := origin.Send(context.Background(), c.ID(), hub.NewMessage([]byte("end"))); err != nil {
		t.Fatal(err)
	}
	if got := c.Got()[len(warm):]; !slices.Equal(got, []string{"once", "end"}) {
		t.Fatalf("the connection got %q after the warm-up, want [once end]", got)
	}
	if <-onLink {
		testenv.Eventually(t, 20*time.Second, func() error {
			if owner.DedupeRepeats() == repeats0 {
				return errors.New("the owner answered no repeat from its table")
			}
			return nil
		})
	} else {
		t.Log("the call over NATS reached the owner before the one over the link")
	}
}

// A direct link lost while NATS is not (blackholed: no answer, no reset):
// a call sent over it is sent again over NATS after an attempt, same key,
// and is answered; the frame arrives once.
func TestClusterDirectCallLinkLost(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 2)
	cfgs = patient(cfgs)
	origin, _, c, warm := directPair(t, cfgs)
	nw.query[0][1].blackhole()
	nw.query[1][0].blackhole()
	sent0, _ := origin.DirectCalls()
	calls0, _ := origin.CallsOut()
	t0 := time.Now()
	if err := origin.Send(context.Background(), c.ID(), hub.NewMessage([]byte("once"))); err != nil {
		t.Fatal(err)
	}
	t.Logf("answered in %v", time.Since(t0))
	sent, _ := origin.DirectCalls()
	calls, _ := origin.CallsOut()
	if got := c.Got()[len(warm):]; !slices.Equal(got, []string{"once"}) {
		t.Fatalf("the connection got %q after the warm-up, want [once]", got)
	}
	// Sent over the link, then over NATS; or over NATS alone, when the
	// link's idle connection broke first (a stalled process).
	if calls-calls0 < 1 || sent-sent0 > 1 {
		t.Fatalf("%d calls over the direct link, %d over NATS; want at most 1, and at least 1", sent-sent0, calls-calls0)
	}
}

// The first frame's role: a connection that names "calls" is answered
// directServesCalls (4), so its asker may send calls on it; one that names
// none (a node of the previous version) is answered 0, as before, and
// served its queries.
func TestClusterDirectCallsRole(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 2)
	hubs := startHubs(t, cfgs)
	b := hubs[1]
	for _, c := range []struct {
		role []string
		want byte
	}{{nil, 0}, {[]string{"calls"}, 4}, {[]string{"other"}, 0}} {
		c0, err := net.Dial("tcp", b.DirectAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c0.Close() })
		_ = c0.SetDeadline(time.Now().Add(30 * time.Second))
		hello := cluster.DirectFrame(append([]string{"wsgate-q1", cfgs[1].Name, hub.NodeHex(b.Self()), b.Incarnation(), "", ""}, c.role...)...)
		if _, err := c0.Write(hello); err != nil {
			t.Fatal(err)
		}
		var ans [5]byte
		if _, err := io.ReadFull(c0, ans[:]); err != nil {
			t.Fatal(err)
		}
		if ans != [5]byte{0, 0, 0, 1, c.want} {
			t.Fatalf("role %q answered %v, want %d", c.role, ans, c.want)
		}
		// A count, as a query of the previous version asks it.
		deadline := strconv.FormatInt(time.Now().Add(20*time.Second).UnixMilli(), 10)
		if _, err := c0.Write(cluster.DirectFrame("count", "", "", "0", deadline)); err != nil {
			t.Fatal(err)
		}
		var hdr [5]byte
		if _, err := io.ReadFull(c0, hdr[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-1)
		if _, err := io.ReadFull(c0, body); err != nil {
			t.Fatal(err)
		}
		if hdr[4] != 0 || !strings.Contains(string(body), `"connections":0`) {
			t.Fatalf("role %q: the count was answered %d %q", c.role, hdr[4], body)
		}
	}
}
