package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/streams"
)

// answerHold is a TCP proxy between one NATS client and its server that
// loses the answer to one request: armed with a subject, it holds
// everything the server sends to the client from the moment the client
// publishes on that subject until the client publishes on it again. The
// first request reaches the server, which applies it, and its answer
// reaches the client only after the client gave up on it and sent the
// next (its answer then flows as usual): an answer lost on the way, as
// when a JetStream leader answers late.
type answerHold struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	pattern []byte // armed: "PUB <subject> "; nil: forwards everything
	holding *holdPair
	pubs    int // publishes on the subject seen since armed
	done    chan struct{}
}

type holdPair struct {
	client net.Conn
	wmu    sync.Mutex
	held   []byte
	hold   bool
}

func newAnswerHold(t *testing.T, target string) *answerHold {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &answerHold{ln: ln, target: target, done: make(chan struct{})}
	servePairs(t, ln, target, func(c, d net.Conn) {
		pair := &holdPair{client: c}
		go p.up(pair, c, d)
		go p.down(pair, d)
	})
	return p
}

func (p *answerHold) url() string { return "nats://" + p.ln.Addr().String() }

// arm makes the proxy hold the answers after the next publish on subject.
func (p *answerHold) arm(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pattern, p.pubs = []byte("PUB "+subject+" "), 0
}

// publishes is how many publishes on the armed subject it has seen.
func (p *answerHold) publishes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pubs
}

// released is closed once the held answers were let go.
func (p *answerHold) released() <-chan struct{} { return p.done }

// up copies the client's bytes to the server, watching for the subject.
func (p *answerHold) up(pair *holdPair, c, d net.Conn) {
	defer d.Close()
	buf := make([]byte, 32<<10)
	var tail []byte
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.pattern != nil {
				window := append(tail, buf[:n]...)
				for range bytes.Count(window, p.pattern) {
					p.pubs++
					switch {
					case p.pubs == 1:
						p.holding = pair
						pair.setHold(true)
					case p.holding == pair && pair.isHeld():
						pair.setHold(false) // before the next request goes out
						close(p.done)
					}
				}
				tail = append(tail[:0], window[max(0, len(window)-len(p.pattern)+1):]...)
			}
			p.mu.Unlock()
			if _, werr := d.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down copies the server's bytes to the client, or holds them.
func (p *answerHold) down(pair *holdPair, d net.Conn) {
	defer pair.client.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := d.Read(buf)
		if n > 0 {
			pair.wmu.Lock()
			var werr error
			if pair.hold {
				pair.held = append(pair.held, buf[:n]...)
			} else {
				_, werr = pair.client.Write(buf[:n])
			}
			pair.wmu.Unlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (pair *holdPair) isHeld() bool {
	pair.wmu.Lock()
	defer pair.wmu.Unlock()
	return pair.hold
}

// setHold starts holding, or writes what was held and forwards again.
func (pair *holdPair) setHold(on bool) {
	pair.wmu.Lock()
	defer pair.wmu.Unlock()
	pair.hold = on
	if !on {
		_, _ = pair.client.Write(pair.held)
		pair.held = nil
	}
}

// leaseWatch records the operations on one lease key, as a client of
// NATS beside the nodes sees them.
type leaseWatch struct {
	mu  sync.Mutex
	ops []jetstream.KeyValueOp
	kv  jetstream.KeyValue
}

// natsClient is a JetStream client of url beside the nodes, and a context
// that ends with the test.
func natsClient(t *testing.T, url string) (jetstream.JetStream, context.Context) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return js, ctx
}

func watchLease(t *testing.T, url, key string, lease time.Duration) *leaseWatch {
	t.Helper()
	js, ctx := natsClient(t, url)
	// The bucket as the nodes open it (cluster's leaseKV), if none has yet.
	kv, err := js.KeyValue(ctx, "WSGATE_ext_LEASES")
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: "WSGATE_ext_LEASES", History: 1, TTL: lease, Storage: jetstream.FileStorage, Replicas: 1, LimitMarkerTTL: time.Second,
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	lw := &leaseWatch{kv: kv}
	go func() {
		for e := range w.Updates() {
			if e != nil {
				lw.mu.Lock()
				lw.ops = append(lw.ops, e.Operation())
				lw.mu.Unlock()
			}
		}
	}()
	return lw
}

// vacated reports whether the key was ever deleted or expired.
func (lw *leaseWatch) vacated() bool {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, op := range lw.ops {
		if op != jetstream.KeyValuePut {
			return true
		}
	}
	return false
}

// leaseRunners runs Lease(key) on each hub, in order: each next one only
// once the first runs (the first node leads). Each runner's terms are
// recorded.
func leaseRunners(t *testing.T, hubs []*cluster.Hub, key string) []*runner {
	t.Helper()
	var active, most atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var rs []*runner
	for i, h := range hubs {
		r := &runner{name: fmt.Sprintf("n%d", i+1), active: &active, most: &most}
		rs = append(rs, r)
		wg.Go(func() { _ = h.Lease(ctx, key, r.run) })
		if i == 0 {
			testenv.Eventually(t, 20*time.Second, func() error {
				if s, _ := r.terms(); len(s) == 0 {
					return errors.New("the first node does not run yet")
				}
				return nil
			})
		}
	}
	return rs
}

func lostAnswerConfigs(first, others string) []cluster.Config {
	cfgs := []cluster.Config{externalConfig(first, "l1"), externalConfig(others, "l2")}
	for i := range cfgs {
		cfgs[i].StreamLeaseSeconds = 5 // renewals every second, the self-fence 3.5 s after one
	}
	return cfgs
}

// TestLeaseRenewalAnswerLost: the leader's renewal reaches NATS and is
// applied, but its answer is held until the leader has given up on it and
// sent the next renewal, which NATS refuses for its revision. The leader
// reads the key, finds its own term's value at a newer revision, adopts it
// and carries on: its run is never stopped, the other node never runs,
// and the renewals after that succeed. Before, the refusal ended the term
// ("another node holds it now"): a needless handover.
func TestLeaseRenewalAnswerLost(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	px := newAnswerHold(t, url[len("nats://"):])
	hubs := startHubs(t, lostAnswerConfigs(px.url(), url))
	const key = "stream.lostrenewal"
	rs := leaseRunners(t, hubs, key)
	lw := watchLease(t, url, key, 5*time.Second)

	px.arm("$KV.WSGATE_ext_LEASES." + key)
	select {
	case <-px.released(): // a renewal applied, its answer lost; the next one out
	case <-time.After(60 * time.Second):
		t.Fatal("the leader sent no second renewal after the one whose answer was held")
	}
	n := px.publishes()
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := px.publishes(); got < n+2 {
			return fmt.Errorf("%d renewals since the refused one, want 2", got-n)
		}
		return nil
	})
	starts, ends := rs[0].terms()
	if len(starts) != 1 || len(ends) != 0 {
		rs[0].mu.Lock()
		causes := rs[0].causes
		rs[0].mu.Unlock()
		t.Fatalf("the leader ran %d terms, %d ended (%v); want one, running", len(starts), len(ends), causes)
	}
	if s, _ := rs[1].terms(); len(s) != 0 {
		t.Fatal("the other node ran")
	}
	if lw.vacated() {
		t.Fatal("the lease key was deleted or expired")
	}
}

// TestLeaseCampaignAnswerLost: a campaign's Create reaches NATS and is
// applied, but its answer is held until the node has given up on it and
// tried again, which finds the key existing. The node reads the key, finds
// that attempt's value and leads, renewing the key before it can expire:
// the key is never vacated and the other node never runs. Before, the node
// took its own key for another's and waited until it expired.
func TestLeaseCampaignAnswerLost(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	px := newAnswerHold(t, url[len("nats://"):])
	hubs := startHubs(t, lostAnswerConfigs(px.url(), url))
	const key = "stream.lostcampaign"
	lw := watchLease(t, url, key, 5*time.Second)
	px.arm("$KV.WSGATE_ext_LEASES." + key)
	rs := leaseRunners(t, hubs, key)
	select {
	case <-px.released():
	default:
		t.Fatal("the first node runs, but its first Create was not held")
	}
	n := px.publishes()
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := px.publishes(); got < n+2 {
			return fmt.Errorf("%d renewals since the node led, want 2", got-n)
		}
		return nil
	})
	if lw.vacated() {
		t.Fatal("the lease key was deleted or expired before the node ran on it")
	}
	if starts, ends := rs[0].terms(); len(starts) != 1 || len(ends) != 0 {
		t.Fatalf("the first node ran %d terms, %d ended; want one, running", len(starts), len(ends))
	}
	if s, _ := rs[1].terms(); len(s) != 0 {
		t.Fatal("the other node ran")
	}
}

// TestLeaseForeignValueEndsTerm: the lease key is rewritten under the
// leader, by another node, or with this node's own name and incarnation
// but another term. The leader's next renewal is refused, it reads the
// key, finds a value that is not its term's and stops its run with
// streams.ErrLeaseLost (no adoption of a write that is not its own).
func TestLeaseForeignValueEndsTerm(t *testing.T) {
	parallel(t)
	for _, tc := range []struct {
		name   string
		change func(v map[string]any)
	}{
		{"another node", func(v map[string]any) { v["node"], v["name"], v["inc"] = "fe", "intruder", "0123456789abcdef" }},
		{"another term of this node", func(v map[string]any) { v["term"] = "0123456789abcdef" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startNATS(t)
			hubs := startHubs(t, lostAnswerConfigs(url, url))
			const key = "stream.foreign"
			rs := leaseRunners(t, hubs[:1], key)
			lw := watchLease(t, url, key, 5*time.Second)
			e, err := lw.kv.Get(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				t.Fatal(err)
			}
			tc.change(v)
			foreign, _ := json.Marshal(v)
			if _, err := lw.kv.Put(context.Background(), key, foreign); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 60*time.Second, func() error {
				if _, ends := rs[0].terms(); len(ends) == 0 {
					return errors.New("the leader still runs")
				}
				return nil
			})
			rs[0].mu.Lock()
			cause := rs[0].causes[0]
			rs[0].mu.Unlock()
			if !errors.Is(cause, streams.ErrLeaseLost) {
				t.Fatalf("the run ended with %v, want streams.ErrLeaseLost", cause)
			}
		})
	}
}
