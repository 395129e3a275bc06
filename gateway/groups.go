package gateway

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/hub"
)

// Group names: 1 to 128 letters, digits and . _ : -, but not "." or "..",
// which would be dot segments in /{stage}/@groups/{group}.
var groupRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// GroupNameRule says what ValidGroup accepts, for error messages.
const GroupNameRule = "use 1 to 128 letters, digits, '.', '_', ':' or '-', other than '.' and '..'"

// ValidGroup reports whether name is a valid group name.
func ValidGroup(name string) bool {
	return name != "." && name != ".." && groupRe.MatchString(name)
}

// groups serves the group extensions of the management API; tail is the
// escaped path after "@groups/":
//
//	PUT    {group}/@connections/{id}   join (204)
//	DELETE {group}/@connections/{id}   leave (204)
//	POST   {group}                     publish the body to every member (200)
//	GET    {group}                     members, paginated (200)
//	GET    {group}/@count              {"connections": n} (200)
//	POST   (no group)                  publish several messages (200, groups_batch.go)
func (g *Gateway) groups(w http.ResponseWriter, r *http.Request, tail string) {
	if tail == "" {
		g.publishBatch(w, r)
		return
	}
	rawGroup, member, hasMember := strings.Cut(tail, "/")
	name, ok := pathID(rawGroup)
	if !ok || !ValidGroup(name) {
		writeAPIError(w, errBadRequest.with("Invalid group name: "+GroupNameRule+"."))
		return
	}
	if member == "@count" || member == "%40count" {
		g.countGroup(w, r, name)
		return
	}
	if hasMember {
		seg, rawID, _ := strings.Cut(member, "/")
		id, ok := pathID(rawID)
		if (seg != "@connections" && seg != "%40connections") || !ok {
			writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@groups/"+tail+" for http method "+r.Method+"."))
			return
		}
		switch r.Method {
		case http.MethodPut:
			if err := g.hub.Join(r.Context(), name, id); err != nil {
				writeAPIError(w, hubError(err))
				return
			}
		case http.MethodDelete:
			if err := g.hub.Leave(r.Context(), name, id); err != nil {
				writeAPIError(w, hubError(err))
				return
			}
		default:
			writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@groups/{group}/@connections/{connectionId} for http method "+r.Method+"."))
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	switch r.Method {
	case http.MethodPost:
		body, aerr := readBody(r)
		if aerr != nil {
			writeAPIError(w, aerr)
			return
		}
		d, err := g.hub.Publish(r.Context(), name, hub.NewMessage(body))
		if err != nil {
			writeAPIError(w, hubError(err))
			return
		}
		writeJSON(w, http.StatusOK, d)
	case http.MethodGet:
		p, aerr := pageParams(r)
		if aerr != nil {
			writeAPIError(w, aerr)
			return
		}
		ids, next, err := g.hub.Members(r.Context(), name, p)
		if err != nil {
			writeAPIError(w, hubError(err))
			return
		}
		out := map[string]any{"connectionIds": ids}
		if next != "" {
			out["nextToken"] = encodeToken(next)
		}
		writeJSON(w, http.StatusOK, out)
	default:
		writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@groups/{group} for http method "+r.Method+"."))
	}
}

// countGroup serves GET /{stage}/@groups/{group}/@count: the members on
// every node.
func (g *Gateway) countGroup(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet {
		writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@groups/{group}/@count for http method "+r.Method+"."))
		return
	}
	n, err := g.hub.Count(r.Context(), name)
	if err != nil {
		writeAPIError(w, hubError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"connections": n})
}

// cluster serves GET /{stage}/@cluster: every node, its state and
// connections (one node when there is no cluster).
func (g *Gateway) cluster(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@cluster for http method "+r.Method+"."))
		return
	}
	nodes, err := g.hub.Nodes(r.Context())
	if err != nil {
		writeAPIError(w, hubError(err))
		return
	}
	total := 0
	for _, n := range nodes {
		if n.State != "gone" {
			total += n.Connections
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": total, "nodes": nodes})
}

// listConnections serves GET /{stage}/@connections.
func (g *Gateway) listConnections(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@connections for http method "+r.Method+"."))
		return
	}
	p, aerr := pageParams(r)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	infos, next, err := g.hub.Connections(r.Context(), p)
	if err != nil {
		writeAPIError(w, hubError(err))
		return
	}
	items := make([]map[string]any, len(infos))
	for i, in := range infos {
		items[i] = connectionJSON(in, true)
	}
	out := map[string]any{"connections": items}
	if next != "" {
		out["nextToken"] = encodeToken(next)
	}
	writeJSON(w, http.StatusOK, out)
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// pageParams reads ?maxResults= (1..1000, default 100) and ?nextToken=.
func pageParams(r *http.Request) (hub.Page, *apiError) {
	q := r.URL.Query()
	p := hub.Page{Limit: defaultPageSize}
	if s := q.Get("maxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return p, errBadRequest.with("maxResults must be a whole number from 1 to 1000.")
		}
		p.Limit = n
	}
	if t := q.Get("nextToken"); t != "" {
		after, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || len(after) == 0 {
			return p, errBadRequest.with("Invalid nextToken.")
		}
		p.After = string(after)
	}
	return p, nil
}

func encodeToken(after string) string { return base64.RawURLEncoding.EncodeToString([]byte(after)) }
