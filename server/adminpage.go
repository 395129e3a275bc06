package server

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/adminui"
)

// adminScanLimit bounds the connections one admin page snapshot reads.
const adminScanLimit = 10000

// adminSource gives the admin page its figures.
type adminSource struct{ s *Server }

var _ adminui.Source = adminSource{}

// Snapshot implements adminui.Source.
func (a adminSource) Snapshot(ctx context.Context, search string, limit int) adminui.Snapshot {
	s := a.s
	snap := adminui.Snapshot{Time: time.Now(), Connections: s.hub.Len(), List: []adminui.Connection{}}
	sizes := map[string]int{}
	page := hub.Page{Limit: 1000}
	for snap.Scanned < adminScanLimit {
		infos, next, err := s.hub.Connections(ctx, page)
		if err != nil {
			break
		}
		for _, in := range infos {
			snap.Scanned++
			for _, g := range in.Groups {
				sizes[g]++
			}
			if !matches(in, search) {
				continue
			}
			snap.Matched++
			if len(snap.List) < limit {
				snap.List = append(snap.List, adminui.Connection{ID: in.ConnectionID, SourceIP: in.SourceIP, UserAgent: in.UserAgent,
					ConnectedAt: in.ConnectedAt, LastActiveAt: in.LastActiveAt, Groups: in.Groups})
			}
		}
		if next == "" {
			break
		}
		page.After = next
	}
	snap.Groups = make([]adminui.Group, 0, len(sizes))
	for name, n := range sizes {
		snap.Groups = append(snap.Groups, adminui.Group{Name: name, Size: n})
	}
	slices.SortFunc(snap.Groups, func(a, b adminui.Group) int { return cmp.Or(b.Size-a.Size, strings.Compare(a.Name, b.Name)) })
	snap.Groups = snap.Groups[:min(len(snap.Groups), 100)]
	snap.Routes = []adminui.Route{}
	for _, r := range s.metrics.Routes() {
		snap.Routes = append(snap.Routes, adminui.Route{Key: r.Key, Messages: r.Messages, Errors: r.Errors, Latency: r.Latency, Calls: r.Calls})
	}
	snap.Streams = []adminui.Stream{}
	for _, st := range s.liveStreams() {
		ss := st.sup.Status()
		snap.Streams = append(snap.Streams, adminui.Stream{Name: st.name, State: string(ss.State), Delivered: ss.Source.Delivered,
			LagMillis: ss.Lag.Milliseconds(), Error: ss.Error})
	}
	snap.Nodes = []adminui.Node{}
	if s.cluster != nil {
		self := hub.NodeHex(s.cluster.Self())
		nodes, _ := s.cluster.Nodes(ctx) // none listed when the registry cannot be read
		for _, n := range nodes {
			snap.Nodes = append(snap.Nodes, adminui.Node{Name: n.Name, Byte: n.ID, State: n.State, Connections: n.Connections,
				Groups: n.Groups, LastSeenMillis: n.LastSeenMillis, Self: n.ID == self})
		}
	}
	snap.Functions = []adminui.Function{}
	for _, f := range s.liveFunctions().Stats() {
		snap.Functions = append(snap.Functions, adminui.Function{Name: f.Name, Processes: f.Processes, ColdStarts: f.ColdStarts,
			Invocations: f.Invocations, Errors: f.Errors})
	}
	return snap
}

func matches(in hub.Info, search string) bool {
	if search == "" {
		return true
	}
	if strings.Contains(in.ConnectionID, search) || strings.Contains(in.SourceIP, search) || strings.Contains(in.UserAgent, search) {
		return true
	}
	for _, g := range in.Groups {
		if strings.Contains(g, search) {
			return true
		}
	}
	return false
}

// Disconnect implements adminui.Source: as DeleteConnection.
func (a adminSource) Disconnect(ctx context.Context, id string) bool {
	return a.s.hub.Disconnect(ctx, id, hub.CloseDeleted) == nil // DeleteConnection's code and reason
}

// adminCredentials are the access keys that may open the admin page.
func (c *Config) adminCredentials() map[string]string {
	m := make(map[string]string, len(c.Credentials))
	for _, cr := range c.Credentials {
		m[cr.AccessKeyID] = cr.SecretAccessKey
	}
	return m
}
