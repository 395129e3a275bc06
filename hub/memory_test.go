package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testConn is a Conn that records what it is sent; full makes Send fail
// as a slow reader's would.
type testConn struct {
	id   string
	full bool
	got  atomic.Int64
}

func (c *testConn) ID() string { return c.id }
func (c *testConn) Send(*Message) error {
	if c.full {
		return ErrQueueFull
	}
	c.got.Add(1)
	return nil
}
func (c *testConn) Close(CloseReason) {}
func (c *testConn) Info() Info        { return Info{ConnectionID: c.id, ConnectedAt: time.Unix(1, 0)} }

func TestMemoryGroups(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	a, b, c := &testConn{id: "a"}, &testConn{id: "b"}, &testConn{id: "c", full: true}
	for _, x := range []*testConn{a, b, c} {
		if err := h.Register(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Register(&testConn{id: "a"}); err == nil {
		t.Fatal("registering a taken id succeeded")
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := h.Join(ctx, "g1", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Join(ctx, "g1", "a"); err != nil {
		t.Fatal("second join:", err)
	}
	if err := h.Join(ctx, "g1", "nobody"); !errors.Is(err, ErrGone) {
		t.Fatalf("join of unknown id: %v, want ErrGone", err)
	}
	d, _ := h.Publish(ctx, "g1", NewMessage([]byte("x")))
	if d.Delivered != 2 || d.Skipped != 1 {
		t.Fatalf("publish = %+v, want 2 delivered 1 skipped", d)
	}
	ids, next, _ := h.Members(ctx, "g1", Page{Limit: 2})
	if fmt.Sprint(ids) != "[a b]" || next != "b" {
		t.Fatalf("members page 1 = %v next %q", ids, next)
	}
	ids, next, _ = h.Members(ctx, "g1", Page{After: next, Limit: 2})
	if fmt.Sprint(ids) != "[c]" || next != "" {
		t.Fatalf("members page 2 = %v next %q", ids, next)
	}
	_ = h.Leave(ctx, "g1", "a")
	d, _ = h.Publish(ctx, "g1", NewMessage([]byte("x")))
	if d.Delivered != 1 || a.got.Load() != 1 {
		t.Fatalf("after leave: %+v, a got %d", d, a.got.Load())
	}
	infos, _, _ := h.Connections(ctx, Page{})
	if len(infos) != 3 || fmt.Sprint(infos[1].Groups) != "[g1]" || infos[0].Groups != nil {
		t.Fatalf("connections = %+v", infos)
	}
	for _, id := range []string{"a", "b", "c"} {
		h.Unregister(id)
	}
	if h.GroupCount() != 0 || h.Len() != 0 {
		t.Fatalf("left behind: %d groups, %d conns", h.GroupCount(), h.Len())
	}
}

// TestMemoryNoLeak joins and closes a million connections (160,000 under
// -race) concurrently, in 50 groups and one shared group, and
// checks that no group or entry is left behind.
func TestMemoryNoLeak(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < joinsPerWorker; i++ {
				id := fmt.Sprintf("%d-%d", w, i)
				_ = h.Register(&testConn{id: id})
				_ = h.Join(ctx, fmt.Sprintf("g%d", i%50), id)
				_ = h.Join(ctx, "all", id)
				if i%3 == 0 {
					_ = h.Leave(ctx, "all", id)
				}
				h.Unregister(id)
			}
		}()
	}
	wg.Wait()
	if h.GroupCount() != 0 || h.Len() != 0 {
		t.Fatalf("left behind: %d groups, %d conns", h.GroupCount(), h.Len())
	}
}

// TestMemoryPageCost: a page of a listing costs in proportion to the page,
// not to the listing. It counts the bytes a page allocates (deterministic,
// unlike its time): sorting every id on every page, as the hub once did,
// allocates a slice of all 20,000 ids (320 KB) per page.
func TestMemoryPageCost(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	for i := range 20000 {
		id := fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15)
		if err := h.Register(&testConn{id: id}); err != nil {
			t.Fatal(err)
		}
		if err := h.Join(ctx, "g", id); err != nil {
			t.Fatal(err)
		}
	}
	var ms runtime.MemStats
	allocated := func(f func()) uint64 {
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		f()
		runtime.ReadMemStats(&ms)
		return ms.TotalAlloc - before
	}
	const limit = 64 << 10 // a page of 100 is a few KB
	var next string
	for page := range 5 {
		if n := allocated(func() { _, next, _ = h.Members(ctx, "g", Page{After: next, Limit: 100}) }); n > limit {
			t.Errorf("members page %d allocated %d bytes", page, n)
		}
	}
	next = ""
	for page := range 5 {
		if n := allocated(func() { _, next, _ = h.Connections(ctx, Page{After: next, Limit: 100}) }); n > limit {
			t.Errorf("connections page %d allocated %d bytes", page, n)
		}
	}
}

// TestMemoryPagesStable: a listing walked page by page while connections
// come and go returns every connection that was open throughout exactly
// once, in ascending order.
func TestMemoryPagesStable(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	stable := map[string]bool{}
	for i := range 3000 {
		id := fmt.Sprintf("s%05d", i*7%3000)
		stable[id] = true
		_ = h.Register(&testConn{id: id})
		_ = h.Join(ctx, "g", id)
	}
	for _, list := range []string{"connections", "members"} {
		var got []string
		next, churn := "", 0
		for {
			var ids []string
			if list == "members" {
				ids, next, _ = h.Members(ctx, "g", Page{After: next, Limit: 50})
			} else {
				var infos []Info
				infos, next, _ = h.Connections(ctx, Page{After: next, Limit: 50})
				for _, in := range infos {
					ids = append(ids, in.ConnectionID)
				}
			}
			for _, id := range ids {
				if stable[id] {
					got = append(got, id)
				}
			}
			if next == "" {
				break
			}
			// Between pages: ids before and after the token join and leave.
			for _, id := range []string{fmt.Sprintf("c%05d", churn), next + "x", "a" + next, "t" + next} {
				_ = h.Register(&testConn{id: id})
				_ = h.Join(ctx, "g", id)
			}
			h.Unregister(fmt.Sprintf("c%05d", churn-1))
			h.Unregister("a" + next)
			churn++
		}
		if len(got) != len(stable) || !slices.IsSorted(got) {
			t.Fatalf("%s: %d of %d stable ids, sorted %v", list, len(got), len(stable), slices.IsSorted(got))
		}
	}
}

// TestMemoryGroupLimits: past GroupsPerConnection a join fails with
// ErrLimitExceeded until the connection leaves a group; past Groups only
// joins that would create a group fail.
func TestMemoryGroupLimits(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{GroupsPerConnection: 3, Groups: 5})
	for _, id := range []string{"a", "b"} {
		_ = h.Register(&testConn{id: id})
	}
	for _, g := range []string{"g1", "g2", "g3"} {
		if err := h.Join(ctx, g, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Join(ctx, "g4", "a"); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("4th group: %v, want ErrLimitExceeded", err)
	}
	if err := h.Join(ctx, "g1", "a"); err != nil {
		t.Fatalf("joining a group again at the limit: %v", err)
	}
	_ = h.Leave(ctx, "g1", "a")
	if err := h.Join(ctx, "g4", "a"); err != nil {
		t.Fatalf("after a leave: %v", err)
	}
	// a is in g2 g3 g4; b makes g5 g6, then the hub is full.
	for _, g := range []string{"g5", "g6"} {
		if err := h.Join(ctx, g, "b"); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Join(ctx, "g7", "b"); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("6th group: %v, want ErrLimitExceeded", err)
	}
	if err := h.Join(ctx, "g2", "b"); err != nil {
		t.Fatalf("joining an existing group with the hub full: %v", err)
	}
	h.Unregister("a") // g3 and g4 empty and go
	_ = h.Leave(ctx, "g2", "b")
	if err := h.Join(ctx, "g7", "b"); err != nil {
		t.Fatalf("after groups emptied: %v", err)
	}
	if h.GroupCount() != 3 {
		t.Fatalf("%d groups, want 3 (g5 g6 g7)", h.GroupCount())
	}
	h.Unregister("b")
	if h.GroupCount() != 0 {
		t.Fatalf("%d groups left", h.GroupCount())
	}
}

// TestMemoryDefaultGroupLimit: with no limits given, one connection can
// join DefaultGroupsPerConnection groups and no more.
func TestMemoryDefaultGroupLimit(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	_ = h.Register(&testConn{id: "a"})
	for i := range DefaultGroupsPerConnection {
		if err := h.Join(ctx, fmt.Sprint("g", i), "a"); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Join(ctx, "one-more", "a"); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("join past the default: %v", err)
	}
}

func BenchmarkMemoryPublish10k(b *testing.B) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	for i := 0; i < 10000; i++ {
		id := fmt.Sprint(i)
		_ = h.Register(&testConn{id: id})
		_ = h.Join(ctx, "g", id)
	}
	m := NewMessage([]byte("hello"))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h.Publish(ctx, "g", m)
	}
}

// BenchmarkMemoryListPages lists 100,000 connections, and a group of
// 100,000 members, 100 per page: one op is one page, taken in turn from
// the start of the listing to its end and round again.
func BenchmarkMemoryListPages(b *testing.B) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	for i := 0; i < 100000; i++ {
		id := fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15)
		_ = h.Register(&testConn{id: id})
		_ = h.Join(ctx, "g", id)
	}
	b.Run("connections", func(b *testing.B) {
		var next string
		for b.Loop() {
			infos, n, err := h.Connections(ctx, Page{After: next, Limit: 100})
			if err != nil || len(infos) == 0 {
				b.Fatalf("page after %q: %d infos, %v", next, len(infos), err)
			}
			next = n
		}
	})
	b.Run("members", func(b *testing.B) {
		var next string
		for b.Loop() {
			ids, n, err := h.Members(ctx, "g", Page{After: next, Limit: 100})
			if err != nil || len(ids) == 0 {
				b.Fatalf("page after %q: %d ids, %v", next, len(ids), err)
			}
			next = n
		}
	})
}

// BenchmarkMemoryGroupBytes measures the heap a group holds per member
// (B/member): the members' index, their join order and anything a publish
// keeps. Connections are registered before the measurement starts, so
// only the groups count. Shapes: one group of 10,000 members, 100 groups
// of 100, and 10,000 groups of one member; each after a publish to every
// group and after 10% of the members left (and another publish).
func BenchmarkMemoryGroupBytes(b *testing.B) {
	ctx := context.Background()
	for _, shape := range []struct {
		name            string
		groups, members int
	}{{"1x10000", 1, 10000}, {"100x100", 100, 100}, {"10000x1", 10000, 1}} {
		b.Run(shape.name, func(b *testing.B) {
			n := shape.groups * shape.members
			var joined, left float64
			for b.Loop() {
				h := NewMemory(Limits{})
				for i := range n {
					_ = h.Register(&testConn{id: fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15)})
				}
				before := heapInUse()
				for i := range n {
					_ = h.Join(ctx, fmt.Sprint("g", i%shape.groups), fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15))
				}
				publishAll := func() {
					for g := range shape.groups {
						_, _ = h.Publish(ctx, fmt.Sprint("g", g), NewMessage([]byte("x")))
					}
				}
				publishAll()
				joined += float64(heapInUse()-before) / float64(n)
				for i := 0; i < n; i += 10 {
					_ = h.Leave(ctx, fmt.Sprint("g", i%shape.groups), fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15))
				}
				publishAll()
				left += float64(heapInUse()-before) / float64(n-(n+9)/10)
				runtime.KeepAlive(h)
			}
			b.ReportMetric(joined/float64(b.N), "B/member")
			b.ReportMetric(left/float64(b.N), "B/member-after-leaves")
		})
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// orderOf returns the ids group name's publish walks, in its order.
func orderOf(h *Memory, name string) []string {
	var ids []string
	if g := h.group(name); g != nil {
		for _, c := range g.snapshot() {
			if c != nil {
				ids = append(ids, c.ID())
			}
		}
	}
	return ids
}

// TestMemoryPublishOrder: a publish walks a group's members in the order
// they joined, through leaves (in place, and after a publish took a
// snapshot), compactions and rejoins (which go to the end), while the
// member pages stay in id order.
func TestMemoryPublishOrder(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	r := rand.New(rand.NewPCG(3, 4))
	var want []string // join order
	for i := range 3000 {
		id := fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15) // ids not in join order
		_ = h.Register(&testConn{id: id})
		if err := h.Join(ctx, "g", id); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if got := orderOf(h, "g"); !slices.Equal(got, want) {
		t.Fatal("publish order is not join order")
	}
	for round := range 30 {
		if round%3 == 0 {
			_, _ = h.Publish(ctx, "g", NewMessage([]byte("x"))) // the next leave copies
		}
		for range 100 {
			k := r.IntN(len(want))
			id := want[k]
			want = slices.Delete(want, k, k+1)
			if round%2 == 0 {
				h.Unregister(id)
				continue
			}
			_ = h.Leave(ctx, "g", id)
			if r.IntN(2) == 0 {
				_ = h.Join(ctx, "g", id)
				want = append(want, id)
			}
		}
		if got := orderOf(h, "g"); !slices.Equal(got, want) {
			t.Fatalf("round %d: publish order is not join order", round)
		}
		g := h.group("g")
		g.mu.Lock()
		holes, n := len(g.order)-g.ids.Len(), len(g.order)
		g.mu.Unlock()
		if holes*2 > n {
			t.Fatalf("round %d: %d of %d places empty", round, holes, n)
		}
		ids, _, _ := h.Members(ctx, "g", Page{})
		if len(ids) != len(want) || !slices.IsSorted(ids) {
			t.Fatalf("round %d: members page of %d ids, sorted %v; %d members", round, len(ids), slices.IsSorted(ids), len(want))
		}
	}
}

// TestMemoryPublishDuringChurn publishes to a group while members join,
// leave and close: every publish reaches at least the members that were
// in the group throughout, and (under -race) no publish reads a slot a
// join or leave writes.
func TestMemoryPublishDuringChurn(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	stable := make([]*testConn, 300)
	for i := range stable {
		stable[i] = &testConn{id: fmt.Sprintf("s%04d", i)}
		_ = h.Register(stable[i])
		_ = h.Join(ctx, "g", stable[i].id)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("c%d-%d", w, i)
				_ = h.Register(&testConn{id: id})
				_ = h.Join(ctx, "g", id)
				if i%2 == 0 {
					_ = h.Leave(ctx, "g", id)
				}
				if i >= 50 {
					h.Unregister(fmt.Sprintf("c%d-%d", w, i-50))
				}
			}
		})
	}
	const publishes = 500
	for range publishes {
		if d, _ := h.Publish(ctx, "g", NewMessage([]byte("x"))); d.Delivered < len(stable) {
			t.Errorf("publish delivered %d, fewer than the %d stable members", d.Delivered, len(stable))
		}
	}
	close(stop)
	wg.Wait()
	for _, c := range stable {
		if c.got.Load() != publishes {
			t.Fatalf("%s got %d of %d", c.id, c.got.Load(), publishes)
		}
	}
}

// TestMemoryParallelPublishCounts: a publish spread over goroutines (from
// parallelPublish members) hands every member the message exactly once,
// whichever goroutine hands off its block, and counts every delivery and
// skip, for group sizes around the block size and the parallel threshold,
// with publishes to several groups at once.
func TestMemoryParallelPublishCounts(t *testing.T) {
	ctx := context.Background()
	h := NewMemory(Limits{})
	sizes := []int{parallelPublish - 1, parallelPublish, parallelPublish + 1, 1000, 3001}
	groups := make([][]*testConn, len(sizes))
	for gi, n := range sizes {
		for i := range n {
			c := &testConn{id: fmt.Sprintf("g%d-%05d", gi, i), full: i%97 == 5}
			_ = h.Register(c)
			if err := h.Join(ctx, fmt.Sprint("g", gi), c.id); err != nil {
				t.Fatal(err)
			}
			groups[gi] = append(groups[gi], c)
		}
	}
	const publishes = 40
	var wg sync.WaitGroup
	for gi, members := range groups {
		full := 0
		for _, c := range members {
			if c.full {
				full++
			}
		}
		wg.Go(func() {
			for range publishes {
				d, err := h.Publish(ctx, fmt.Sprint("g", gi), NewMessage([]byte("x")))
				if err != nil || d.Delivered != len(members)-full || d.Skipped != full {
					t.Errorf("group of %d (%d full): delivered %d, skipped %d, error %v", len(members), full, d.Delivered, d.Skipped, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, members := range groups {
		for _, c := range members {
			if want := int64(publishes); !c.full && c.got.Load() != want {
				t.Fatalf("%s got %d of %d", c.id, c.got.Load(), want)
			}
		}
	}
}

// BenchmarkMemoryJoinLeave: one connection joins and leaves a group of
// 10,000 members; "publish between" publishes to the group (to members
// whose Send does nothing) after each join and each leave, so whatever a
// change costs a publish (a copy, a rebuilt snapshot) is in the figure.
func BenchmarkMemoryJoinLeave(b *testing.B) {
	ctx := context.Background()
	for _, publish := range []bool{false, true} {
		name := "alone"
		if publish {
			name = "publish between"
		}
		b.Run(name, func(b *testing.B) {
			h := NewMemory(Limits{})
			for i := range 10000 {
				id := fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15)
				_ = h.Register(&testConn{id: id, full: true})
				_ = h.Join(ctx, "g", id)
			}
			_ = h.Register(&testConn{id: "joiner"})
			m := NewMessage([]byte("x"))
			b.ReportAllocs()
			for b.Loop() {
				_ = h.Join(ctx, "g", "joiner")
				if publish {
					_, _ = h.Publish(ctx, "g", m)
				}
				_ = h.Leave(ctx, "g", "joiner")
				if publish {
					_, _ = h.Publish(ctx, "g", m)
				}
			}
		})
	}
}

// BenchmarkMemoryRegister: one connection registered with an id as NewID
// makes them, as a handshake registers it, into a hub holding 10,000 to
// 14,096 (every 4,096 they are unregistered, outside the timing).
func BenchmarkMemoryRegister(b *testing.B) {
	h := NewMemory(Limits{})
	for range 10000 {
		_ = h.Register(&testConn{id: NewID(1)})
	}
	conns := make([]*testConn, 4096)
	refill := func() {
		for j, c := range conns {
			if c != nil {
				h.Unregister(c.id)
			}
			conns[j] = &testConn{id: NewID(1)}
		}
	}
	refill()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(conns) {
			b.StopTimer()
			refill()
			i = 0
			b.StartTimer()
		}
		if err := h.Register(conns[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
