package hub

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
)

// Memory is the single-node Hub: connections and groups in this process.
//
// Lock order: a shard's lock, then idsMu or groupsMu, then a group's lock.
// Join holds the member's shard lock while it touches the group, so a Join
// racing an Unregister either lands before it (and is undone by it) or
// sees ErrGone. idsMu is never held while another lock is taken.
type Memory struct {
	seed   maphash.Seed
	shards [shardCount]shard
	limits Limits

	idsMu sync.RWMutex
	ids   index[struct{}] // every registered id, in order: the connection listing

	groupsMu sync.RWMutex
	groups   map[string]*group

	node byte
	name string

	pace paceState
}

// Limits bound what clients can make a Memory hub hold. A zero field takes
// its default.
type Limits struct {
	// GroupsPerConnection is the most groups one connection may be in.
	// Default DefaultGroupsPerConnection.
	GroupsPerConnection int
	// Groups is the most non-empty groups the hub holds at once, so that
	// many connections cannot together grow it without bound (a
	// one-member group costs about 300 bytes). Default DefaultGroups.
	Groups int
}

// Defaults of Limits.
const (
	DefaultGroupsPerConnection = 100
	DefaultGroups              = 1_000_000
)

const shardCount = 64

type shard struct {
	mu    sync.RWMutex
	conns map[string]entry // by value: no allocation per connection
}

type entry struct {
	conn   Conn
	groups *[]string // names of the groups it joined, ascending; nil until the first join
}

// in returns where name is or would be in e's groups, and whether it is.
func (e entry) in(name string) (int, bool) {
	if e.groups == nil {
		return 0, false
	}
	return slices.BinarySearch(*e.groups, name)
}

// group is a group's members twice over: ids, ordered by id, for the
// member pages, and order, the members in the order they joined, which is
// the order a publish writes them in (first come, first served; with many
// members on few client processes, as in the benchmarks, it is also the
// order that wakes each client process for the most frames at once).
//
// A publish takes order[:len(order)] and walks it without the lock (the
// slice header is its snapshot), so while shared is set nothing in
// order[:len(order)] is overwritten: a join appends past it, and a leave
// first copies order. A leave leaves a nil behind; when nils are more
// than half of order, it is compacted and ids renumbered. So joins and
// leaves cost O(1) apart from the index, amortised, and a publish costs
// no copy unless members left since the previous one.
type group struct {
	mu     sync.Mutex
	ids    index[int32] // member id → its position in order
	order  []Conn       // members in join order; nil where one left
	shared bool         // a publish may hold order[:len(order)]
}

var (
	_ Hub   = (*Memory)(nil)
	_ Pacer = (*Memory)(nil)
)

// NewMemory returns an empty in-process Hub with limits l.
func NewMemory(l Limits) *Memory {
	if l.GroupsPerConnection <= 0 {
		l.GroupsPerConnection = DefaultGroupsPerConnection
	}
	if l.Groups <= 0 {
		l.Groups = DefaultGroups
	}
	h := &Memory{seed: maphash.MakeSeed(), limits: l, groups: make(map[string]*group)}
	for i := range h.shards {
		h.shards[i].conns = make(map[string]entry)
	}
	return h
}

func (h *Memory) shard(id string) *shard {
	return &h.shards[maphash.String(h.seed, id)%shardCount]
}

// Register implements Hub.
func (h *Memory) Register(c Conn) error {
	id := c.ID()
	s := h.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	// ids holds exactly the ids in the shards' maps (both change under
	// the shard's lock): its Put tells a taken id without a map lookup.
	h.idsMu.Lock()
	fresh := h.ids.Put(id, struct{}{})
	h.idsMu.Unlock()
	if !fresh {
		return errIDTaken
	}
	s.conns[id] = entry{conn: c}
	return nil
}

// Unregister implements Hub.
func (h *Memory) Unregister(id string) {
	s := h.shard(id)
	s.mu.Lock()
	e, ok := s.conns[id]
	if ok {
		delete(s.conns, id)
		h.idsMu.Lock()
		h.ids.Delete(id)
		h.idsMu.Unlock()
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	if e.groups != nil {
		for _, name := range *e.groups {
			h.removeMember(name, id)
		}
	}
}

// SetNode names the node this hub is, for Nodes. Call it before use.
func (h *Memory) SetNode(node byte, name string) { h.node, h.name = node, name }

// conn returns an open connection by id.
func (h *Memory) conn(id string) (Conn, bool) {
	s := h.shard(id)
	s.mu.RLock()
	e, ok := s.conns[id]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return e.conn, true
}

// LookupLocal implements Local: every id is this node's. It is for a
// caller on this node that writes to the connection itself, as the
// gateway does with a single send (a PostToConnection builds no
// Message); Send is the same lookup followed by the Conn's Send.
func (h *Memory) LookupLocal(_ context.Context, id string) (Conn, error) {
	if c, ok := h.conn(id); ok {
		return c, nil
	}
	return nil, ErrGone
}

// Send implements Hub.
func (h *Memory) Send(_ context.Context, id string, m *Message) error {
	c, ok := h.conn(id)
	if !ok {
		return ErrGone
	}
	return c.Send(m)
}

// Info implements Hub.
func (h *Memory) Info(_ context.Context, id string) (Info, error) {
	c, ok := h.conn(id)
	if !ok {
		return Info{}, ErrGone
	}
	return c.Info(), nil
}

// Disconnect implements Hub.
func (h *Memory) Disconnect(_ context.Context, id string, r CloseReason) error {
	c, ok := h.conn(id)
	if !ok {
		return ErrGone
	}
	c.Close(r)
	return nil
}

// Join implements Hub.
func (h *Memory) Join(_ context.Context, name, id string) error {
	s := h.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.conns[id]
	if !ok {
		return ErrGone
	}
	at, in := e.in(name)
	if in {
		return nil
	}
	if e.groups != nil && len(*e.groups) >= h.limits.GroupsPerConnection {
		return fmt.Errorf("%w: the connection is in %d groups, the most one connection may join", ErrLimitExceeded, len(*e.groups))
	}

	h.groupsMu.Lock()
	g := h.groups[name]
	if g == nil {
		if len(h.groups) >= h.limits.Groups {
			h.groupsMu.Unlock()
			return fmt.Errorf("%w: the gateway holds %d groups, the most it may", ErrLimitExceeded, len(h.groups))
		}
		g = &group{}
		h.groups[name] = g
	}
	g.mu.Lock()
	h.groupsMu.Unlock()
	g.add(id, e.conn)
	g.mu.Unlock()

	if e.groups == nil {
		e.groups = &[]string{name}
		s.conns[id] = e
	} else {
		*e.groups = slices.Insert(*e.groups, at, name)
	}
	return nil
}

// Leave implements Hub.
func (h *Memory) Leave(_ context.Context, name, id string) error {
	s := h.shard(id)
	s.mu.Lock()
	e, ok := s.conns[id]
	if ok {
		if at, member := e.in(name); member {
			*e.groups = slices.Delete(*e.groups, at, at+1) // kept when empty: the next join reuses it
			h.removeMember(name, id)
		}
	}
	s.mu.Unlock()
	return nil
}

// removeMember deletes id from the group and the group itself once empty,
// so nothing is left behind however many joins and closes there were.
func (h *Memory) removeMember(name, id string) {
	h.groupsMu.Lock()
	defer h.groupsMu.Unlock()
	g := h.groups[name]
	if g == nil {
		return
	}
	g.mu.Lock()
	g.remove(id)
	empty := g.ids.Len() == 0
	g.mu.Unlock()
	if empty {
		delete(h.groups, name)
	}
}

// HasGroup reports whether group has a member on this node.
func (h *Memory) HasGroup(name string) bool { return h.group(name) != nil }

func (h *Memory) group(name string) *group {
	h.groupsMu.RLock()
	g := h.groups[name]
	h.groupsMu.RUnlock()
	return g
}

// add appends c, whose id is not a member, to the join order. g.mu is
// held.
func (g *group) add(id string, c Conn) {
	g.ids.Put(id, int32(len(g.order)))
	g.order = append(g.order, c) // past what a publish holds, if one does
}

// remove takes member id out. g.mu is held.
func (g *group) remove(id string) {
	at, ok := g.ids.Get(id)
	if !ok {
		return
	}
	g.ids.Delete(id)
	if g.ids.Len() == 0 {
		g.order, g.shared = nil, false
		return
	}
	if g.shared {
		g.order, g.shared = slices.Clone(g.order), false // a publish holds the old one
	}
	g.order[at] = nil
	if holes := len(g.order) - g.ids.Len(); holes > len(g.order)/2 {
		g.compact()
	}
}

// compact drops the nils from order, keeping the join order, and
// renumbers ids. g.mu is held and order is not shared.
func (g *group) compact() {
	to := make([]int32, len(g.order)) // old position → new
	n := 0
	for i, c := range g.order {
		to[i] = int32(n)
		if c != nil {
			g.order[n] = c
			n++
		}
	}
	clear(g.order[n:])
	g.order = g.order[:n]
	if cap(g.order) > 2*n {
		g.order = slices.Clone(g.order) // give back what a shrunk group no longer needs
	}
	g.ids.update(func(at int32) int32 { return to[at] })
}

// snapshot returns the members in join order, with nils where members
// left, as a slice that stays valid (and unchanged) after the lock is
// released.
func (g *group) snapshot() []Conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shared = true
	return g.order[:len(g.order):len(g.order)]
}

// parallelPublish is the group size from which a publish is spread over
// GOMAXPROCS goroutines: each member costs a lock and a queue append (for
// the gateway's connections, which its flusher then writes: Message.Fanout,
// BlockSender), so a large group's hand-off is spread over the cores as its
// writes are.
const parallelPublish = 256

// publishBlock is how many members in a row a publish hands off at a time
// (one SendBlock, BlockSender). The goroutines of a parallel publish take
// the blocks in turn, so together they list the members with the
// gateway's flusher close to join order, the order its goroutines then
// write them in.
const publishBlock = 32

// Publish implements Hub.
func (h *Memory) Publish(_ context.Context, name string, m *Message) (Delivery, error) {
	g := h.group(name)
	if g == nil {
		return Delivery{}, nil
	}
	members := g.snapshot()
	m.fanout = true // set before any member sees m
	workers := min(runtime.GOMAXPROCS(0), len(members)/(parallelPublish/2))
	if workers < 2 {
		var d Delivery
		for lo := 0; lo < len(members); lo += publishBlock {
			b := sendAll(members[lo:min(lo+publishBlock, len(members))], m)
			d.Delivered += b.Delivered
			d.Skipped += b.Skipped
		}
		return d, nil
	}
	parts := make([]Delivery, workers)
	blocks := func(i int) {
		for lo := i * publishBlock; lo < len(members); lo += workers * publishBlock {
			d := sendAll(members[lo:min(lo+publishBlock, len(members))], m)
			parts[i].Delivered += d.Delivered
			parts[i].Skipped += d.Skipped
		}
	}
	var wg sync.WaitGroup
	for i := 1; i < workers; i++ {
		wg.Go(func() { blocks(i) })
	}
	blocks(0)
	wg.Wait()
	var d Delivery
	for _, p := range parts {
		d.Delivered += p.Delivered
		d.Skipped += p.Skipped
	}
	return d, nil
}

// sendAll sends m to the members, one block of a publish: through the
// first member's SendBlock when it has one (the gateway's connections: one
// hand-off to its flusher per block), else member by member.
func sendAll(members []Conn, m *Message) Delivery {
	for _, c := range members {
		if c == nil {
			continue
		}
		if b, ok := c.(BlockSender); ok {
			return b.SendBlock(members, m)
		}
		break
	}
	var d Delivery
	for _, c := range members {
		if c == nil {
			continue // left
		}
		if c.Send(m) == nil {
			d.Delivered++
		} else {
			d.Skipped++
		}
	}
	return d
}

// Members implements Hub.
func (h *Memory) Members(_ context.Context, name string, p Page) ([]string, string, error) {
	g := h.group(name)
	if g == nil {
		return []string{}, "", nil
	}
	g.mu.Lock()
	ids := make([]string, 0, min(pageCap(p), g.ids.Len()))
	next := g.ids.page(p, func(id string, _ int32) { ids = append(ids, id) })
	g.mu.Unlock()
	return ids, next, nil
}

// EachMember calls f with group name's member ids after p.After,
// ascending, at most p.Limit of them (all when it is 0 or less), and
// reports whether more follow: Members without a slice, for a caller that
// encodes the ids as it gets them. f runs under the group's lock and must
// not call h.
func (h *Memory) EachMember(name string, p Page, f func(id string)) (more bool) {
	g := h.group(name)
	if g == nil {
		return false
	}
	n := 0
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ids.Ascend(p.After, func(id string, _ int32) bool {
		if p.Limit > 0 && n == p.Limit {
			more = true
			return false
		}
		f(id)
		n++
		return true
	})
	return more
}

// Connections implements Hub.
func (h *Memory) Connections(_ context.Context, p Page) ([]Info, string, error) {
	h.idsMu.RLock()
	ids := make([]string, 0, min(pageCap(p), h.ids.Len()))
	next := h.ids.page(p, func(id string, _ struct{}) { ids = append(ids, id) })
	h.idsMu.RUnlock()
	infos := make([]Info, 0, len(ids))
	for _, id := range ids {
		s := h.shard(id)
		s.mu.RLock()
		e, ok := s.conns[id]
		var groups []string
		if ok && e.groups != nil && len(*e.groups) > 0 {
			groups = slices.Clone(*e.groups) // ascending
		}
		s.mu.RUnlock()
		if !ok {
			continue // closed while we listed
		}
		info := e.conn.Info()
		info.Groups = groups
		infos = append(infos, info)
	}
	return infos, next, nil
}

// pageCap is the most items page p can hold (a guess when unlimited).
func pageCap(p Page) int {
	if p.Limit > 0 {
		return p.Limit
	}
	return 1024
}

// Len implements Hub.
func (h *Memory) Len() int {
	h.idsMu.RLock()
	defer h.idsMu.RUnlock()
	return h.ids.Len()
}

// Each implements Hub.
func (h *Memory) Each(f func(Conn) bool) {
	var batch []Conn
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		batch = batch[:0]
		for _, e := range s.conns {
			batch = append(batch, e.conn)
		}
		s.mu.RUnlock()
		for _, c := range batch {
			if !f(c) {
				return
			}
		}
	}
}

// Count implements Hub.
func (h *Memory) Count(_ context.Context, name string) (int, error) {
	g := h.group(name)
	if g == nil {
		return 0, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ids.Len(), nil
}

// Nodes implements Hub: this one node.
func (h *Memory) Nodes(context.Context) ([]Node, error) {
	return []Node{{ID: NodeHex(h.node), Name: h.name, State: "up", Connections: h.Len(), Groups: h.GroupCount()}}, nil
}

// Close implements Hub; a Memory hub holds nothing to release.
func (h *Memory) Close() error { return nil }

// GroupCount is the number of non-empty groups (for tests and metrics).
func (h *Memory) GroupCount() int {
	h.groupsMu.RLock()
	defer h.groupsMu.RUnlock()
	return len(h.groups)
}
