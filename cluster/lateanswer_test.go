package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
)

// lagProxy is a TCP proxy between NATS clients and their server that holds
// the server's messages to one subject (once set) for lag before passing
// them on; everything else flows at once. Held messages reach the client
// late, none is lost: a round trip slower than an attempt. It can also
// drop the clients' publishes on subjects of given prefixes (requests
// that never reach the server: a registry that does not answer).
type lagProxy struct {
	ln      net.Listener
	subject atomic.Pointer[[]byte]
	lag     time.Duration
	held    atomic.Int64

	mu       sync.Mutex
	prefixes []string
	drops    int // publishes still to drop; < 0: all
	dropped  int
}

func newLagProxy(t *testing.T, target string, lag time.Duration) *lagProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lagProxy{ln: ln, lag: lag}
	servePairs(t, ln, target, func(c, d net.Conn) {
		go p.up(c, d)
		go p.down(d, c)
	})
	return p
}

func (p *lagProxy) url() string { return "nats://" + p.ln.Addr().String() }

// hold makes the proxy hold the server's messages to subject.
func (p *lagProxy) hold(subject string) {
	s := []byte(subject)
	p.subject.Store(&s)
}

// dropPubs makes the proxy drop the next n publishes (n < 0: all) on
// subjects starting with one of prefixes; none stops it.
func (p *lagProxy) dropPubs(n int, prefixes ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prefixes, p.drops = prefixes, n
}

// droppedPubs is how many publishes were dropped.
func (p *lagProxy) droppedPubs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// up copies the client's bytes to the server frame by frame, leaving out
// the publishes dropPubs names.
func (p *lagProxy) up(c, d net.Conn) { filterFrames(c, d, p.drop, "PUB ", "HPUB ") }

// drop reports whether the client's frame is a publish to drop.
func (p *lagProxy) drop(frame []byte) bool {
	line, _, _ := bytes.Cut(frame, []byte("\r\n"))
	f := bytes.Fields(line)
	if len(f) < 3 || !(string(f[0]) == "PUB" || string(f[0]) == "HPUB") {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drops == 0 || !slices.ContainsFunc(p.prefixes, func(s string) bool { return bytes.HasPrefix(f[1], []byte(s)) }) {
		return false
	}
	if p.drops > 0 {
		p.drops--
	}
	p.dropped++
	return true
}

// down copies the server's bytes to the client frame by frame; a message
// to the held subject is written lag later, the rest at once (one frame
// at a time on c).
func (p *lagProxy) down(d, c net.Conn) {
	defer c.Close()
	var mu sync.Mutex
	write := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = c.Write(b)
	}
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := d.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			end := frameEnd(buf, "MSG ", "HMSG ")
			if end < 0 {
				break
			}
			frame := bytes.Clone(buf[:end])
			buf = buf[end:]
			if p.isHeld(frame) {
				p.held.Add(1)
				time.AfterFunc(p.lag, func() { write(frame) })
				continue
			}
			write(frame)
		}
		if err != nil {
			return
		}
	}
}

// isHeld reports whether frame is a message to the held subject.
func (p *lagProxy) isHeld(frame []byte) bool {
	s := p.subject.Load()
	if s == nil {
		return false
	}
	line, _, _ := bytes.Cut(frame, []byte("\r\n"))
	f := bytes.Fields(line)
	return len(f) >= 3 && (string(f[0]) == "MSG" || string(f[0]) == "HMSG") && bytes.Equal(f[1], *s)
}

// TestClusterCallLateAnswers: every round trip of a call from A to B's
// connection takes longer than an attempt (B's replies to A's batches are
// held 150 ms on the way, attemptTimeoutMillis is 30): a call takes the
// answer to an earlier attempt that comes after its attempt timed out,
// while its deadline lasts. Every POST is answered 200 and delivered
// once (its retries carry its dedupe key: B answers them with the first
// answer). Before, a late answer was dropped and the retry started over,
// so every call failed with 500 after requestTimeoutMillis (patient's
// 20 s: a starved process's calls keep their budget).
func TestClusterCallLateAnswers(t *testing.T) {
	parallel(t)
	lateAnswers(t, nil)
}

// TestClusterCallLateAnswersDedupeOff: the same with dedupeSeconds 0: the
// retries that reach B after it ran the call still get the first answer
// (B keeps a forwarded call's key until its deadline whatever
// dedupeSeconds says), so each frame arrives once. Before, B ran every
// retry that reached it: most frames arrived several times.
func TestClusterCallLateAnswersDedupeOff(t *testing.T) {
	parallel(t)
	lateAnswers(t, new(int))
}

// lateAnswers is TestClusterCallLateAnswers with dedupeSeconds dedupe
// (nil: the default).
func lateAnswers(t *testing.T, dedupe *int) {
	url := startNATS(t)
	px := newLagProxy(t, url[len("nats://"):], 150*time.Millisecond)
	cfgs := patient([]cluster.Config{externalConfig(px.url(), "late-a"), externalConfig(url, "late-b")})
	for i := range cfgs {
		cfgs[i].AttemptTimeoutMillis = 30
		if dedupe != nil {
			cfgs[i].DedupeSeconds = dedupe
		}
	}
	hubs := startHubs(t, cfgs)
	a, b := hubs[0], hubs[1]
	conns := []*hubtest.Conn{hubtest.NewConn(hub.NewID(b.Self()), false), hubtest.NewConn(hub.NewID(b.Self()), false)}
	for _, c := range conns {
		if err := b.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	var runs atomic.Int64 // the posts B was asked to run, retries included
	b.SetConnHook(func(op string) {
		if op == "post" {
			runs.Add(1)
		}
	})
	px.hold(a.CallReply(b.Self()))
	ctx := context.Background()
	const n = 24
	errs := make([]error, n)
	var wg sync.WaitGroup
	for g := range 4 { // 4 callers: calls alone and in batches
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				errs[i] = a.Send(ctx, conns[i%2].ID(), hub.NewMessage(fmt.Appendf(nil, "m%d", i)))
			}
		})
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Errorf("send %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d sends failed with every round trip slower than an attempt", failed, n)
	}
	// B runs A's batches in order, one at a time: once a last call is
	// answered, every retry sent before it was run or answered.
	if err := a.Send(ctx, conns[0].ID(), hub.NewMessage([]byte("end"))); err != nil {
		t.Fatalf("the last send: %v", err)
	}
	got := map[string]int{}
	for _, c := range conns {
		for _, m := range c.Got() {
			got[m]++
		}
	}
	for i := range n {
		if k := got[fmt.Sprintf("m%d", i)]; k != 1 {
			t.Errorf("m%d delivered %d times, want once", i, k)
		}
	}
	late, answers := a.LateCalls()
	if px.held.Load() == 0 || late == 0 || answers == 0 {
		t.Fatalf("%d replies held, %d batches late, %d late answers taken: the round trips were not slower than an attempt", px.held.Load(), late, answers)
	}
	// The control: retries reached B after it ran their call, and B
	// answered them from its table.
	if r := b.DedupeRepeats(); runs.Load() <= n+1 || r == 0 {
		t.Fatalf("B was asked %d posts for %d calls and answered %d from its table: no retry reached it after the first run", runs.Load(), n+1, r)
	}
	t.Logf("B was asked %d posts for %d calls, answered %d from its table", runs.Load(), n+1, b.DedupeRepeats())
}

// registryGets are the subjects' prefixes of a registry read: the
// leader's (STREAM.MSG.GET) and a direct get (any replica).
var registryGets = []string{"$JS.API.STREAM.MSG.GET.", "$JS.API.DIRECT.GET."}

// TestClusterSendRegistryUnread: a send to an id whose byte no node holds
// ("no responders") answers 410 once the registry says no node has the
// byte. While the registry cannot be read (A's reads of it never reach
// the server), the call asks again on each attempt and, past its
// deadline, fails with ErrUnavailable (500) naming the registry: never
// 410 on an unread registry, nor a 500 that blames the node alone. A read
// that is lost once and then answers still gives 410 within the deadline.
// Before, a failed read counted as "registered" and the 500 said "node
// NN did not answer".
func TestClusterSendRegistryUnread(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	px := newLagProxy(t, url[len("nats://"):], 0)
	cfg := externalConfig(px.url(), "reg-a")
	cfg.RequestTimeoutMillis = 3000
	a := startHubs(t, []cluster.Config{cfg})[0]
	id := hub.NewID(freeByte(a))
	ctx := context.Background()
	if err := a.Send(ctx, id, hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
		t.Fatalf("send on a byte nobody holds, the registry readable: %v, want ErrGone", err)
	}

	px.dropPubs(-1, registryGets...)
	err := a.Send(ctx, id, hub.NewMessage([]byte("x")))
	if !errors.Is(err, hub.ErrUnavailable) || errors.Is(err, hub.ErrGone) || !strings.Contains(err.Error(), "registry could not be read") {
		t.Fatalf("send on a byte nobody holds, the registry unread: %v, want ErrUnavailable naming the registry", err)
	}
	if px.droppedPubs() == 0 || a.RegistryUnread() == 0 {
		t.Fatalf("%d registry reads dropped, %d counted unread", px.droppedPubs(), a.RegistryUnread())
	}

	// One read lost: the next attempt reads again and answers 410.
	px.dropPubs(1, registryGets...)
	dropped := px.droppedPubs()
	if err := a.Send(ctx, id, hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
		t.Fatalf("send on a byte nobody holds, a registry read lost: %v, want ErrGone", err)
	}
	if px.droppedPubs() != dropped+1 {
		t.Fatalf("%d registry reads dropped, want 1", px.droppedPubs()-dropped)
	}
}
