// Package adminui is the admin page of wsgate's admin listener: live
// connections (searchable, with their groups, age and last activity, and
// a disconnect button), groups and their sizes, routes with their message
// rate, errors and latency, change streams, local functions and, in a
// cluster, every node with its state and counts. The page
// is embedded (no request leaves the machine) and polls a JSON snapshot
// once a second.
//
// Every request needs HTTP Basic authentication with one of the
// gateway's credentials (access key id as user name, secret access key
// as password): whoever may call the management API may use the page,
// which can do what DeleteConnection does. A disconnect is a POST that
// must carry the X-Wsgate-Admin header, which a foreign page cannot send
// without a CORS preflight that is never granted.
package adminui

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed web
var webFS embed.FS

// Snapshot is what the page shows; the server fills it.
type Snapshot struct {
	Time time.Time `json:"time"`
	// Connections is the number of open connections.
	Connections int `json:"connections"`
	// List holds the connections matching the search, at most Limit.
	List []Connection `json:"list"`
	// Matched counts the matching connections among the Scanned first
	// ones (a listing is bounded).
	Matched int `json:"matched"`
	Scanned int `json:"scanned"`
	// Groups are the groups of the scanned connections, largest first.
	Groups    []Group    `json:"groups"`
	Routes    []Route    `json:"routes"`
	Streams   []Stream   `json:"streams"`
	Functions []Function `json:"functions"`
	// Nodes are the cluster's nodes (empty on a single node).
	Nodes []Node `json:"nodes"`
}

// Node is a cluster node as the node serving the page last heard of it.
type Node struct {
	Name string `json:"name"`
	// Byte is the node byte as two hex digits, as in the ids it mints.
	Byte  string `json:"byte"`
	State string `json:"state"`
	// Connections and Groups are the node's open connections and
	// non-empty groups at its last heartbeat.
	Connections    int   `json:"connections"`
	Groups         int   `json:"groups"`
	LastSeenMillis int64 `json:"lastSeenMillis"`
	// Self marks the node serving the page.
	Self bool `json:"self"`
}

// Connection is one row of the connection list.
type Connection struct {
	ID           string    `json:"id"`
	SourceIP     string    `json:"sourceIp"`
	UserAgent    string    `json:"userAgent"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	Groups       []string  `json:"groups"`
}

// Group is a group and how many of the scanned connections are in it.
type Group struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// Route is a route's totals; the page turns them into rates.
type Route struct {
	Key      string  `json:"route"`
	Messages uint64  `json:"messages"`
	Errors   uint64  `json:"errors"`
	Latency  float64 `json:"latencySeconds"`
	Calls    uint64  `json:"calls"`
}

// Stream is a change stream's state.
type Stream struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Delivered int64  `json:"delivered"`
	LagMillis int64  `json:"lagMillis"`
	Error     string `json:"error,omitempty"`
}

// Function is a local function's processes and counters.
type Function struct {
	Name        string `json:"name"`
	Processes   int    `json:"processes"`
	ColdStarts  uint64 `json:"coldStarts"`
	Invocations uint64 `json:"invocations"`
	Errors      uint64 `json:"errors"`
}

// Source is what the page reads and does; the server implements it.
type Source interface {
	// Snapshot returns the figures, with at most limit connections
	// matching search (a substring of the id, source IP, user agent or a
	// group; "" matches all).
	Snapshot(ctx context.Context, search string, limit int) Snapshot
	// Disconnect closes a connection as DeleteConnection does; false when
	// no such connection is open.
	Disconnect(ctx context.Context, id string) bool
}

// ListLimit is the most connections a snapshot lists.
const ListLimit = 200

// New returns the page's handler. credentials returns the access key ids
// and their secret keys in force (they change with a reload); with none,
// every request is refused.
func New(src Source, credentials func() map[string]string) http.Handler {
	web, _ := fs.Sub(webFS, "web")
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(web))
	mux.HandleFunc("GET /api/snapshot", func(w http.ResponseWriter, r *http.Request) {
		snap := src.Snapshot(r.Context(), strings.TrimSpace(r.URL.Query().Get("q")), ListLimit)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(snap)
	})
	mux.HandleFunc("POST /api/disconnect", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Wsgate-Admin") != "1" {
			http.Error(w, "missing X-Wsgate-Admin header", http.StatusForbidden)
			return
		}
		if !src.Disconnect(r.Context(), r.URL.Query().Get("id")) {
			http.Error(w, "no such connection", http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		secret, known := credentials()[user]
		if !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(secret)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="wsgate admin", charset="UTF-8"`)
			http.Error(w, "an access key id and its secret key are needed", http.StatusUnauthorized)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		mux.ServeHTTP(w, r)
	})
}
