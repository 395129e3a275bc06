package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// roundRobin is an SDK HTTP client that sends each attempt to the next
// node (the Host header stays the one the SDK signed) and drops the answer
// of every 10th attempt after the server answered, as a connection reset
// would: the SDK retries the call, with the same invocation id, through
// another node.
type roundRobin struct {
	addrs []string
	n     atomic.Int64
}

func (r *roundRobin) Do(req *http.Request) (*http.Response, error) {
	k := r.n.Add(1)
	out := req.Clone(req.Context())
	out.Host = req.URL.Host
	out.URL.Host = r.addrs[int(k)%len(r.addrs)]
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil || k%10 != 0 {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, errors.New("read: connection reset by peer (the test dropped the answer)")
}

// inbox counts every frame the clients receive.
type inbox struct {
	mu  sync.Mutex
	got map[string]int
}

func (b *inbox) read(ws *websocket.Conn) {
	for {
		_, m, err := ws.ReadMessage()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.got[string(m)]++
		b.mu.Unlock()
	}
}

func (b *inbox) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got[s]
}

// retriedPosts sends n POSTs with unique payloads through the AWS SDK over
// roundRobin to clients on every node, while each node's owner side holds
// one request in 50 for 400 ms (longer than attemptTimeoutMillis: the
// forwarding node retries it). It returns the payloads answered 200 and
// what arrived.
func retriedPosts(t *testing.T, srvs []*server.Server, n int) (map[string]bool, *inbox) {
	t.Helper()
	box := &inbox{got: map[string]int{}}
	var ids []string
	for _, s := range srvs {
		for range 2 {
			ws, id := dial(t, s)
			ids = append(ids, id)
			go box.read(ws)
		}
		var k atomic.Int64
		s.Cluster().SetConnHook(func(op string) {
			if op == "post" && k.Add(1)%50 == 0 {
				time.Sleep(400 * time.Millisecond) // a slow owner: the request and those behind it wait
			}
		})
	}
	rr := &roundRobin{}
	for _, s := range srvs {
		rr.addrs = append(rr.addrs, s.Addr())
	}
	api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srvs[0].ManagementEndpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		HTTPClient:  rr,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
	ctx := context.Background()
	var mu sync.Mutex
	ok := map[string]bool{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1)); k <= n; k = int(next.Add(1)) {
				p := fmt.Sprintf("p-%d", k)
				_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(ids[k%len(ids)]), Data: []byte(p)})
				mu.Lock()
				ok[p] = err == nil
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// A last frame to every client through every node, after the hooks:
	// once it is in, every request queued before it was handled.
	for _, s := range srvs {
		s.Cluster().SetConnHook(func(string) {})
	}
	for _, id := range ids {
		for i, s := range srvs {
			if st := postStatus(ctx, oneShot(s), id, fmt.Appendf(nil, "end %s %d", id, i)); st != 200 {
				t.Fatalf("closing post to %s via node %d: %d", id, i, st)
			}
		}
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, id := range ids {
			for i := range srvs {
				if box.count(fmt.Sprintf("end %s %d", id, i)) == 0 {
					return fmt.Errorf("%s has not got its last frame via node %d", id, i)
				}
			}
		}
		return nil
	})
	return ok, box
}

// dedupeServers are 3 wsgate nodes on one external NATS server (dedupe
// works alike on embedded NATS; this starts faster).
func dedupeServers(t *testing.T, dedupeSeconds int) []*server.Server {
	url := startNATS(t)
	var cfgs []cluster.Config
	for i := range 3 {
		c := externalConfig(url, fmt.Sprintf("d%d", i+1))
		c.RequestTimeoutMillis = 1000
		c.DedupeSeconds = &dedupeSeconds
		cfgs = append(cfgs, c)
	}
	return startServers(t, cfgs)
}

// TestClusterNoDuplicatePost: an AWS SDK client whose calls go round-robin
// over the nodes and lose every 10th answer retries those calls through
// another node; owners hold one request in 50 past attemptTimeoutMillis,
// so forwarding nodes retry too. Every payload arrives at most once, and
// every payload answered 200 exactly once. The control: the owners
// answered retries from their tables (each would have been a second
// delivery). (A run with dedupeSeconds 0 was the control before: it
// delivered about 1 payload in 8 twice; now the owners keep every key for
// the retry window, requestTimeoutMillis, so it delivers twice only an
// SDK retry that reaches the owner later than that.)
func TestClusterNoDuplicatePost(t *testing.T) {
	heavy(t)
	const posts = 600
	srvs := dedupeServers(t, 10)
	ok, box := retriedPosts(t, srvs, posts)
	answered := 0
	for k := 1; k <= posts; k++ {
		p := fmt.Sprintf("p-%d", k)
		got := box.count(p)
		if ok[p] {
			answered++
		}
		switch {
		case got > 1:
			t.Errorf("%s arrived %d times", p, got)
		case ok[p] && got != 1:
			t.Errorf("%s answered 200, arrived %d times", p, got)
		}
	}
	var repeats int64
	for _, s := range srvs {
		repeats += s.Cluster().DedupeRepeats()
	}
	t.Logf("%d POSTs, %d answered 200, %d repeats answered from the owners' tables", posts, answered, repeats)
	if repeats == 0 {
		t.Fatal("no owner answered a repeat from its table: the test does not retry")
	}
}

// TestClusterTimeoutNotDelivered: an owner that takes longer than the
// forwarding node's requestTimeoutMillis: the call fails with
// ErrUnavailable (500), and the frame never arrives, because the owner
// drops a request past its deadline.
func TestClusterTimeoutNotDelivered(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	var cfgs []cluster.Config
	for i := range 2 {
		c := externalConfig(url, fmt.Sprintf("t%d", i+1))
		c.RequestTimeoutMillis = 1000
		cfgs = append(cfgs, c)
	}
	hubs := startHubs(t, cfgs)
	owner := hubtest.NewConn(hub.NewID(hubs[1].Self()), false)
	if err := hubs[1].Register(owner); err != nil {
		t.Fatal(err)
	}
	var slow atomic.Bool
	slow.Store(true)
	hubs[1].SetConnHook(func(op string) {
		if op == "post" && slow.Load() {
			time.Sleep(1500 * time.Millisecond)
		}
	})
	ctx := context.Background()
	err := hubs[0].Send(ctx, owner.ID(), hub.NewMessage([]byte("late")))
	if !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("send to a slow owner: %v, want ErrUnavailable (500)", err)
	}
	slow.Store(false)
	// The owner handles requests in order: once this one is in, the late
	// one (and the forwarding node's retries of it) were handled.
	testenv.Eventually(t, 10*time.Second, func() error {
		return hubs[0].Send(ctx, owner.ID(), hub.NewMessage([]byte("after")))
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := owner.Got(); len(got) == 0 {
			return errors.New("nothing arrived yet")
		}
		return nil
	})
	for _, m := range owner.Got() {
		if m == "late" {
			t.Fatalf("the frame of a call answered 500 arrived: %q", owner.Got())
		}
	}
}

// TestLookupLocal: a cluster hub hands out its own connections for a
// direct write only when Send would be a plain local send: not another
// node's id, nor a call with a dedupe key (which Send delivers once).
func TestLookupLocal(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	hubs := startHubs(t, []cluster.Config{externalConfig(url, "t1"), externalConfig(url, "t2")})
	owner := hubtest.NewConn(hub.NewID(hubs[1].Self()), false)
	if err := hubs[1].Register(owner); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if c, err := hubs[1].LookupLocal(ctx, owner.ID()); c != owner || err != nil {
		t.Fatalf("the owner's lookup: %v, %v; want the connection", c, err)
	}
	if c, err := hubs[0].LookupLocal(ctx, owner.ID()); c != nil || err != nil {
		t.Fatalf("another node's lookup: %v, %v; want nil, nil (Send forwards)", c, err)
	}
	if c, err := hubs[1].LookupLocal(hub.WithDedupeKey(ctx, "k"), owner.ID()); c != nil || err != nil {
		t.Fatalf("a keyed lookup: %v, %v; want nil, nil (Send dedupes)", c, err)
	}
	if c, err := hubs[1].LookupLocal(ctx, hub.NewID(hubs[1].Self())); c != nil || !errors.Is(err, hub.ErrGone) {
		t.Fatalf("an unknown id of this node: %v, %v; want ErrGone", c, err)
	}
}

// TestSendLocalOnce: a keyed send to a connection of this node through
// SendLocalOnce runs the caller's send once per key, local or forwarded:
// a repeat through SendLocalOnce or through another node's Send (an SDK
// retry entering elsewhere) gets the first answer and delivers nothing;
// a key first forwarded is not delivered again locally either. Another
// node's id is left to Send; an unknown id of this node answers ErrGone.
func TestSendLocalOnce(t *testing.T) {
	parallel(t)
	url := startNATS(t)
	cfgs := []cluster.Config{externalConfig(url, "t1"), externalConfig(url, "t2")}
	hubs := startHubs(t, cfgs)
	owner := hubtest.NewConn(hub.NewID(hubs[1].Self()), false)
	if err := hubs[1].Register(owner); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var sends atomic.Int64
	send := func(c hub.Conn, data []byte) error {
		sends.Add(1)
		return c.Send(hub.NewMessage(bytes.Clone(data)))
	}
	if local, err := hubs[1].SendLocalOnce(hub.CallKey{"sdk:", "AKID", ":", "a"}, owner.ID(), []byte("a1"), send); !local || err != nil {
		t.Fatalf("first a: %v, %v", local, err)
	}
	if local, err := hubs[1].SendLocalOnce(hub.CallKey{"sdk:", "AKID", ":", "a"}, owner.ID(), []byte("a2"), send); !local || err != nil {
		t.Fatalf("repeat of a: %v, %v", local, err)
	}
	if err := hubs[0].Send(hub.WithDedupeKey(ctx, "sdk:AKID:a"), owner.ID(), hub.NewMessage([]byte("a3"))); err != nil {
		t.Fatalf("a forwarded: %v", err)
	}
	if err := hubs[0].Send(hub.WithDedupeKey(ctx, "sdk:AKID:b"), owner.ID(), hub.NewMessage([]byte("b1"))); err != nil {
		t.Fatalf("b forwarded: %v", err)
	}
	if local, err := hubs[1].SendLocalOnce(hub.CallKey{"sdk:", "AKID", ":", "b"}, owner.ID(), []byte("b2"), send); !local || err != nil {
		t.Fatalf("b after it was forwarded: %v, %v", local, err)
	}
	if local, err := hubs[1].SendLocalOnce(hub.CallKey{}, owner.ID(), []byte("c"), send); !local || err != nil {
		t.Fatalf("no key: %v, %v", local, err)
	}
	if local, err := hubs[1].SendLocalOnce(hub.CallKey{}, owner.ID(), []byte("c"), send); !local || err != nil {
		t.Fatalf("no key again: %v, %v", local, err)
	}
	if local, err := hubs[0].SendLocalOnce(hub.CallKey{"sdk:", "AKID", ":", "d"}, owner.ID(), []byte("d"), send); local || err != nil {
		t.Fatalf("another node's id: %v, %v; want false, nil (Send forwards)", local, err)
	}
	gone := hub.NewID(hubs[1].Self())
	for range 2 {
		if local, err := hubs[1].SendLocalOnce(hub.CallKey{"sdk:", "AKID", ":", "e"}, gone, []byte("e"), send); !local || !errors.Is(err, hub.ErrGone) {
			t.Fatalf("an unknown id of this node: %v, %v; want true, ErrGone", local, err)
		}
	}
	if got, want := strings.Join(owner.Got(), ","), "a1,b1,c,c"; got != want {
		t.Fatalf("delivered %s, want %s", got, want)
	}
	if sends.Load() != 3 {
		t.Fatalf("send called %d times, want 3", sends.Load())
	}
}
