// Package hubtest is the conformance suite of hub.Hub: what every hub
// (the single-node Memory hub, the cluster's NATS hub) must do, asked from
// every node of it.
package hubtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// Node is one node of the hub under test.
type Node struct {
	Hub hub.Hub
	// Byte is the node byte: ids registered on this node are minted with it.
	Byte byte
}

// Conn is a hub.Conn that records what it is sent. Full makes Send fail as
// a slow reader's would.
type Conn struct {
	id   string
	full bool

	mu     sync.Mutex
	got    [][]byte
	closed *hub.CloseReason
}

// NewConn returns a connection with id; full connections refuse every Send.
func NewConn(id string, full bool) *Conn { return &Conn{id: id, full: full} }

// ID implements hub.Conn.
func (c *Conn) ID() string { return c.id }

// Send implements hub.Conn.
func (c *Conn) Send(m *hub.Message) error {
	if c.full {
		return hub.ErrQueueFull
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return hub.ErrGone
	}
	c.got = append(c.got, m.Data)
	return nil
}

// Close implements hub.Conn.
func (c *Conn) Close(r hub.CloseReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed == nil {
		c.closed = &r
	}
}

// Info implements hub.Conn.
func (c *Conn) Info() hub.Info {
	return hub.Info{ConnectionID: c.id, ConnectedAt: time.Unix(1, 0).UTC(), SourceIP: "192.0.2.1", UserAgent: "hubtest"}
}

// Got returns the payloads received, in order.
func (c *Conn) Got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.got))
	for i, b := range c.got {
		out[i] = string(b)
	}
	return out
}

// Closed returns the reason the connection was closed for, if it was.
func (c *Conn) Closed() (hub.CloseReason, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed == nil {
		return hub.CloseReason{}, false
	}
	return *c.closed, true
}

const wait = 15 * time.Second

// Run runs the suite against nodes, which must be one hub (a single node)
// or the nodes of one cluster, all up. Each subtest registers its own
// connections and groups and unregisters them at the end, so nodes are
// shared by all.
func Run(t *testing.T, nodes []Node) {
	t.Run("SendFromEveryNode", func(t *testing.T) { testSend(t, nodes) })
	t.Run("Gone", func(t *testing.T) { testGone(t, nodes) })
	t.Run("InfoAndDisconnect", func(t *testing.T) { testInfoDisconnect(t, nodes) })
	t.Run("Groups", func(t *testing.T) { testGroups(t, nodes) })
	t.Run("Listings", func(t *testing.T) { testListings(t, nodes) })
	t.Run("UnregisterLeavesGroups", func(t *testing.T) { testUnregister(t, nodes) })
	t.Run("GroupLimit", func(t *testing.T) { testGroupLimit(t, nodes) })
	t.Run("Nodes", func(t *testing.T) { testNodes(t, nodes) })
}

// register puts count connections on each node and returns them, per node.
func register(t *testing.T, nodes []Node, count int, full bool) [][]*Conn {
	t.Helper()
	out := make([][]*Conn, len(nodes))
	for i, n := range nodes {
		for range count {
			c := NewConn(hub.NewID(n.Byte), full)
			if err := n.Hub.Register(c); err != nil {
				t.Fatal(err)
			}
			out[i] = append(out[i], c)
		}
	}
	t.Cleanup(func() {
		for i, n := range nodes {
			for _, c := range out[i] {
				n.Hub.Unregister(c.ID())
			}
		}
	})
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func testSend(t *testing.T, nodes []Node) {
	conns := register(t, nodes, 2, false)
	for from, n := range nodes {
		for _, cs := range conns {
			for _, c := range cs {
				if err := n.Hub.Send(ctx(t), c.ID(), hub.NewMessage(fmt.Appendf(nil, "from %d", from))); err != nil {
					t.Fatalf("send from node %d to %s: %v", from, c.ID(), err)
				}
			}
		}
	}
	// A 200 means queued at the owner: no waiting needed.
	for _, cs := range conns {
		for _, c := range cs {
			want := make([]string, len(nodes))
			for i := range nodes {
				want[i] = fmt.Sprintf("from %d", i)
			}
			if got := c.Got(); !slices.Equal(got, want) {
				t.Fatalf("%s got %q, want %q", c.ID(), got, want)
			}
		}
	}
	full := register(t, nodes, 1, true)
	for from, n := range nodes {
		for _, cs := range full {
			if err := n.Hub.Send(ctx(t), cs[0].ID(), hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrQueueFull) {
				t.Fatalf("send from node %d to a full connection: %v, want ErrQueueFull", from, err)
			}
		}
	}
}

func testGone(t *testing.T, nodes []Node) {
	ids := []string{"not-an-id", "AAAAAAAAAAAAAAA=", hub.NewID(hub.NoNode)}
	for _, n := range nodes {
		ids = append(ids, hub.NewID(n.Byte)) // a node that exists, an id it never had
	}
	for from, n := range nodes {
		for _, id := range ids {
			c := ctx(t)
			if err := n.Hub.Send(c, id, hub.NewMessage([]byte("x"))); !errors.Is(err, hub.ErrGone) {
				t.Fatalf("node %d: send to %q: %v, want ErrGone", from, id, err)
			}
			if _, err := n.Hub.Info(c, id); !errors.Is(err, hub.ErrGone) {
				t.Fatalf("node %d: info of %q: %v, want ErrGone", from, id, err)
			}
			if err := n.Hub.Disconnect(c, id, hub.CloseDeleted); !errors.Is(err, hub.ErrGone) {
				t.Fatalf("node %d: disconnect of %q: %v, want ErrGone", from, id, err)
			}
			if err := n.Hub.Join(c, "g", id); !errors.Is(err, hub.ErrGone) {
				t.Fatalf("node %d: join of %q: %v, want ErrGone", from, id, err)
			}
			if err := n.Hub.Leave(c, "g", id); err != nil && !errors.Is(err, hub.ErrGone) {
				t.Fatalf("node %d: leave of %q: %v", from, id, err)
			}
		}
	}
}

func testInfoDisconnect(t *testing.T, nodes []Node) {
	conns := register(t, nodes, 1, false)
	for from, n := range nodes {
		for _, cs := range conns {
			info, err := n.Hub.Info(ctx(t), cs[0].ID())
			if err != nil {
				t.Fatalf("info from node %d: %v", from, err)
			}
			if info.ConnectionID != cs[0].ID() || info.SourceIP != "192.0.2.1" || info.UserAgent != "hubtest" || !info.ConnectedAt.Equal(time.Unix(1, 0)) {
				t.Fatalf("info from node %d = %+v", from, info)
			}
		}
	}
	for i, cs := range conns {
		from := nodes[(i+1)%len(nodes)] // another node when there is one
		if err := from.Hub.Disconnect(ctx(t), cs[0].ID(), hub.CloseDeleted); err != nil {
			t.Fatal(err)
		}
		if r, ok := cs[0].Closed(); !ok || r != hub.CloseDeleted {
			t.Fatalf("closed = %v %v, want %v", r, ok, hub.CloseDeleted)
		}
	}
}

func testGroups(t *testing.T, nodes []Node) {
	conns := register(t, nodes, 3, false)
	group := fmt.Sprintf("room.%d:x-y_z", rand.IntN(1e9))
	var members []string
	for i, cs := range conns {
		for j, c := range cs[:2] { // the third of each node stays out
			via := nodes[(i+j)%len(nodes)]
			if err := via.Hub.Join(ctx(t), group, c.ID()); err != nil {
				t.Fatal(err)
			}
			if err := via.Hub.Join(ctx(t), group, c.ID()); err != nil {
				t.Fatal("second join:", err)
			}
			members = append(members, c.ID())
		}
	}
	slices.Sort(members)
	for from, n := range nodes {
		ids, next, err := n.Hub.Members(ctx(t), group, hub.Page{Limit: 1000})
		if err != nil || next != "" || !slices.Equal(ids, members) {
			t.Fatalf("members from node %d = %v %q %v, want %v", from, ids, next, err, members)
		}
		if c, err := n.Hub.Count(ctx(t), group); err != nil || c != len(members) {
			t.Fatalf("count from node %d = %d %v, want %d", from, c, err, len(members))
		}
	}
	// In a cluster a member's group interest reaches the other nodes' NATS
	// servers a moment after its join is answered (docs/cluster.md, the
	// window of a new member's interest), which no listing waits for: a
	// probe from every node, published again at each poll, until every
	// member has one from each; then the publishes counted below.
	probe := func(s string) bool { return strings.HasPrefix(s, "probe ") }
	for from, n := range nodes {
		k := 0
		prefix := fmt.Sprintf("probe %d ", from)
		testenv.Eventually(t, wait, func() error {
			k++
			if _, err := n.Hub.Publish(ctx(t), group, hub.NewMessage(fmt.Appendf(nil, "%s%d", prefix, k))); err != nil {
				return err
			}
			for _, cs := range conns {
				for _, c := range cs[:2] {
					if !slices.ContainsFunc(c.Got(), func(s string) bool { return strings.HasPrefix(s, prefix) }) {
						return fmt.Errorf("%s has no probe from node %d yet", c.ID(), from)
					}
				}
			}
			return nil
		})
	}
	for from, n := range nodes {
		d, err := n.Hub.Publish(ctx(t), group, hub.NewMessage(fmt.Appendf(nil, "pub %d", from)))
		if err != nil {
			t.Fatalf("publish from node %d: %v", from, err)
		}
		if d.Delivered != 2 || d.Skipped != 0 {
			t.Fatalf("publish from node %d = %+v, want the 2 local members", from, d)
		}
	}
	want := make([]string, len(nodes))
	for i := range nodes {
		want[i] = fmt.Sprintf("pub %d", i)
	}
	for _, cs := range conns {
		for _, c := range cs[:2] {
			testenv.Eventually(t, wait, func() error {
				got := slices.DeleteFunc(c.Got(), probe)
				slices.Sort(got) // publishes from different nodes are not ordered
				if !slices.Equal(got, want) {
					return fmt.Errorf("%s got %q, want %q", c.ID(), got, want)
				}
				return nil
			})
		}
	}
	// Leave through another node; the next publish reaches the others only.
	leaver := conns[0][0]
	if err := nodes[len(nodes)-1].Hub.Leave(ctx(t), group, leaver.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].Hub.Publish(ctx(t), group, hub.NewMessage([]byte("after leave"))); err != nil {
		t.Fatal(err)
	}
	last := conns[len(conns)-1][1]
	testenv.Eventually(t, wait, func() error {
		if got := last.Got(); !slices.Contains(got, "after leave") {
			return fmt.Errorf("%s got %q", last.ID(), got)
		}
		return nil
	})
	if got := leaver.Got(); slices.Contains(got, "after leave") {
		t.Fatalf("a connection that left got %q", got)
	}
	for _, cs := range conns {
		if got := cs[2].Got(); len(got) != 0 {
			t.Fatalf("a non-member got %q", got)
		}
	}
	if d, err := nodes[0].Hub.Publish(ctx(t), "nobody-here", hub.NewMessage([]byte("x"))); err != nil || d.Delivered != 0 {
		t.Fatalf("publish to an empty group = %+v %v", d, err)
	}
}

func testListings(t *testing.T, nodes []Node) {
	per := 40
	if len(nodes) == 1 {
		per = 120
	}
	conns := register(t, nodes, per, false)
	group := fmt.Sprintf("list-%d", rand.IntN(1e9))
	var all, members []string
	for i, cs := range conns {
		for j, c := range cs {
			all = append(all, c.ID())
			if j%3 == 0 {
				if err := nodes[(i+j)%len(nodes)].Hub.Join(ctx(t), group, c.ID()); err != nil {
					t.Fatal(err)
				}
				members = append(members, c.ID())
			}
		}
	}
	slices.Sort(all)
	slices.Sort(members)
	for from, n := range nodes {
		for _, limit := range []int{1, 7, 100, 1000} {
			var got []string
			after := ""
			for {
				infos, next, err := n.Hub.Connections(ctx(t), hub.Page{After: after, Limit: limit})
				if err != nil {
					t.Fatalf("node %d limit %d: %v", from, limit, err)
				}
				if len(infos) > limit {
					t.Fatalf("node %d: page of %d past limit %d", from, len(infos), limit)
				}
				for _, in := range infos {
					got = append(got, in.ConnectionID)
					if slices.Contains(members, in.ConnectionID) && !slices.Contains(in.Groups, group) {
						t.Fatalf("listing of %s lacks its group: %v", in.ConnectionID, in.Groups)
					}
				}
				if next == "" {
					break
				}
				after = next
			}
			// Other subtests' connections may be listed too: compare ours.
			got = slices.DeleteFunc(got, func(id string) bool { _, ok := slices.BinarySearch(all, id); return !ok })
			if !slices.Equal(got, all) {
				t.Fatalf("node %d limit %d: listing has %d of %d, or out of order", from, limit, len(got), len(all))
			}
			got = nil
			after = ""
			for {
				ids, next, err := n.Hub.Members(ctx(t), group, hub.Page{After: after, Limit: limit})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids...)
				if next == "" {
					break
				}
				after = next
			}
			if !slices.Equal(got, members) {
				t.Fatalf("node %d limit %d: members %d of %d, or out of order", from, limit, len(got), len(members))
			}
		}
	}
}

func testUnregister(t *testing.T, nodes []Node) {
	conns := register(t, nodes, 1, false)
	group := fmt.Sprintf("unreg-%d", rand.IntN(1e9))
	for i, cs := range conns {
		if err := nodes[i].Hub.Join(ctx(t), group, cs[0].ID()); err != nil {
			t.Fatal(err)
		}
	}
	for i, cs := range conns {
		nodes[i].Hub.Unregister(cs[0].ID())
	}
	for from, n := range nodes {
		ids, _, err := n.Hub.Members(ctx(t), group, hub.Page{Limit: 10})
		if err != nil || len(ids) != 0 {
			t.Fatalf("node %d: members after unregister = %v %v", from, ids, err)
		}
		if _, err := n.Hub.Info(ctx(t), conns[0][0].ID()); !errors.Is(err, hub.ErrGone) {
			t.Fatalf("node %d: info after unregister: %v", from, err)
		}
	}
}

func testGroupLimit(t *testing.T, nodes []Node) {
	conns := register(t, nodes, 1, false)
	c := conns[0][0]
	via := nodes[len(nodes)-1].Hub
	var err error
	for i := 0; i <= hub.DefaultGroupsPerConnection && err == nil; i++ {
		err = via.Join(ctx(t), fmt.Sprintf("lim-%d", i), c.ID())
	}
	if !errors.Is(err, hub.ErrLimitExceeded) {
		t.Fatalf("join past the limit: %v, want ErrLimitExceeded", err)
	}
}

func testNodes(t *testing.T, nodes []Node) {
	for from, n := range nodes {
		testenv.Eventually(t, wait, func() error {
			got, err := n.Hub.Nodes(ctx(t))
			if err != nil {
				return err
			}
			up := 0
			for _, x := range got {
				if x.State == "up" {
					up++
				}
			}
			if up != len(nodes) {
				return fmt.Errorf("node %d sees %+v, want %d up", from, got, len(nodes))
			}
			if !slices.IsSortedFunc(got, func(a, b hub.Node) int { return strings.Compare(a.ID, b.ID) }) {
				return fmt.Errorf("nodes not in id order: %+v", got)
			}
			return nil
		})
	}
}
