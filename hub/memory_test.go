package hub

import (
	"context"
	"errors"
	"fmt"
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
