package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/wsgate/wsgate/hub"
)

type connsReply struct {
	Infos []hub.Info `json:"infos"`
	More  bool       `json:"more"`
}

type countReply struct {
	Connections int `json:"connections"`
}

// handleQuery serves wsg.<name>.n.<self>.q: this node's part of a listing
// or a count.
func (h *Hub) handleQuery(m *nats.Msg) {
	if expired(m) {
		return
	}
	p := hub.Page{After: m.Header.Get(hdrAfter)}
	p.Limit, _ = strconv.Atoi(m.Header.Get(hdrLimit))
	var body any
	var err error
	switch m.Header.Get(hdrOp) {
	case "members":
		ids, next, err := h.mem.Members(h.ctx, m.Header.Get(hdrGroup), p)
		var b []byte
		if err == nil {
			b = encodeIDs(ids, next != "")
		}
		respond(m, err, b)
		return
	case "conns":
		var r connsReply
		var next string
		r.Infos, next, err = h.mem.Connections(h.ctx, p)
		r.More = next != ""
		body = r
	case "count":
		var r countReply
		r.Connections, err = h.mem.Count(h.ctx, m.Header.Get(hdrGroup))
		body = r
	case "streams":
		body = json.RawMessage("[]")
		if f := h.streamReport.Load(); f != nil {
			body = json.RawMessage((*f)())
		}
	default:
		err = fmt.Errorf("unknown query %q", m.Header.Get(hdrOp))
	}
	var b []byte
	if err == nil {
		b, _ = json.Marshal(body)
	}
	respond(m, err, b)
}

// scatter sends one query to every other live node in parallel, runs
// local (this node's part, if not nil) while they are out, and calls
// collect with each reply's body. A node found gone meanwhile is skipped
// (its connections left every listing with it); any other failure fails
// the whole call: never a silent partial page.
func (h *Hub) scatter(ctx context.Context, op, group string, p hub.Page, local func() error, collect func([]byte) error) error {
	nodes := h.live()
	errs := make([]error, len(nodes))
	bodies := make([][]byte, len(nodes))
	var wg sync.WaitGroup
	for i, b := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := nats.NewMsg(h.subject(b, "q"))
			msg.Header.Set(hdrOp, op)
			if group != "" {
				msg.Header.Set(hdrGroup, group)
			}
			msg.Header.Set(hdrAfter, p.After)
			msg.Header.Set(hdrLimit, strconv.Itoa(p.Limit))
			reply, err := h.call(ctx, b, msg)
			if errors.Is(err, hub.ErrGone) {
				return
			}
			bodies[i], errs[i] = replyBody(reply), err
		}()
	}
	var lerr error
	if local != nil {
		lerr = local()
	}
	wg.Wait()
	if lerr != nil {
		return lerr
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%w: node %s: %v", hub.ErrUnavailable, hub.NodeHex(nodes[i]), err)
		}
	}
	for i, b := range bodies {
		if b == nil {
			continue
		}
		if err := collect(b); err != nil {
			return fmt.Errorf("%w: node %s answered %v", hub.ErrUnavailable, hub.NodeHex(nodes[i]), err)
		}
	}
	return nil
}

func replyBody(m *nats.Msg) []byte {
	if m == nil {
		return nil
	}
	return m.Data
}

// Members implements hub.Router: each node's first page after the token,
// merged. The global first Limit ids after the token are in the union of
// every node's first Limit, so the page is exact; the token is the last
// id, as on a single node.
func (h *Hub) Members(ctx context.Context, group string, p hub.Page) ([]string, string, error) {
	lists := [][]string{nil} // this node's first
	var more bool
	err := h.scatter(ctx, "members", group, p, func() error {
		ids, next, err := h.mem.Members(ctx, group, p)
		lists[0], more = ids, next != ""
		return err
	}, func(b []byte) error {
		ids, m, err := decodeIDs(b)
		lists = append(lists, ids)
		more = more || m
		return err
	})
	if err != nil {
		return nil, "", err
	}
	ids, next := cut(merge(lists, p.Limit, func(id string) string { return id }), p.Limit, more, func(id string) string { return id })
	return ids, next, nil
}

// encodeIDs is a members reply: "1" when the node has more, else "0",
// then each id after a newline (ids are base64url: no newline in them).
func encodeIDs(ids []string, more bool) []byte {
	b := make([]byte, 0, 1+len(ids)*17)
	if more {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	for _, id := range ids {
		b = append(b, '\n')
		b = append(b, id...)
	}
	return b
}

func decodeIDs(b []byte) ([]string, bool, error) {
	if len(b) == 0 || (b[0] != '0' && b[0] != '1') {
		return nil, false, errors.New("a members reply that does not parse")
	}
	more := b[0] == '1'
	if len(b) == 1 {
		return nil, more, nil
	}
	if b[1] != '\n' {
		return nil, false, errors.New("a members reply that does not parse")
	}
	return strings.Split(string(b[2:]), "\n"), more, nil
}

// merge merges lists, each sorted by key, into one sorted list of at most
// limit+1 items (all when limit is 0): one more than a page, so cut sees
// that more exist.
func merge[T any](lists [][]T, limit int, key func(T) string) []T {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	if limit > 0 {
		total = min(total, limit+1)
	}
	out := make([]T, 0, total)
	heads := make([]int, len(lists))
	for len(out) < total {
		best := -1
		for i, l := range lists {
			if heads[i] < len(l) && (best < 0 || key(l[heads[i]]) < key(lists[best][heads[best]])) {
				best = i
			}
		}
		out = append(out, lists[best][heads[best]])
		heads[best]++
	}
	return out
}

// Connections implements hub.Router, merged as Members.
func (h *Hub) Connections(ctx context.Context, p hub.Page) ([]hub.Info, string, error) {
	lists := [][]hub.Info{nil} // this node's first
	var more bool
	err := h.scatter(ctx, "conns", "", p, func() error {
		infos, next, err := h.mem.Connections(ctx, p)
		lists[0], more = infos, next != ""
		return err
	}, func(b []byte) error {
		var r connsReply
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		lists = append(lists, r.Infos)
		more = more || r.More
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	id := func(in hub.Info) string { return in.ConnectionID }
	infos, next := cut(merge(lists, p.Limit, id), p.Limit, more, id)
	return infos, next, nil
}

// cut keeps the first limit items (all when limit is 0); the token is the
// last kept id when more exist anywhere.
func cut[T any](items []T, limit int, more bool, id func(T) string) ([]T, string) {
	if limit > 0 && len(items) > limit {
		items, more = items[:limit], true
	}
	if !more || len(items) == 0 {
		return items, ""
	}
	return items, id(items[len(items)-1])
}

// Count implements hub.Router: the members on every node, summed.
func (h *Hub) Count(ctx context.Context, group string) (int, error) {
	var n int
	err := h.scatter(ctx, "count", group, hub.Page{}, func() (err error) {
		n, err = h.mem.Count(ctx, group)
		return err
	}, func(b []byte) error {
		var r countReply
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		n += r.Connections
		return nil
	})
	return n, err
}

// SetStreamReport gives the function that answers other nodes' streams
// query: this node's change streams as JSON (the server's @streams items,
// with which of them this node leads). Call it before other nodes may ask;
// until then a node answers an empty list.
func (h *Hub) SetStreamReport(f func() []byte) { h.streamReport.Store(&f) }

// StreamReports asks every other live node for its stream report and
// returns the bodies. A node that does not answer fails the call, as a
// listing does.
func (h *Hub) StreamReports(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	err := h.scatter(ctx, "streams", "", hub.Page{}, nil, func(b []byte) error {
		if !json.Valid(b) {
			return errors.New("a stream report that is not JSON")
		}
		out = append(out, b)
		return nil
	})
	return out, err
}
