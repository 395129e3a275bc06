package hub

import (
	"context"
	"errors"
	"fmt"
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
func (c *testConn) Close(int, string) {}
func (c *testConn) Info() Info        { return Info{ConnectionID: c.id, ConnectedAt: time.Unix(1, 0)} }

func TestMemoryGroups(t *testing.T) {
	ctx := context.Background()
	h := NewMemory()
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
	h := NewMemory()
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

func BenchmarkMemoryPublish10k(b *testing.B) {
	ctx := context.Background()
	h := NewMemory()
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
