package client

import (
	"context"
	"net/http"
	"time"
)

// Connection is one entry of the connection listing.
type Connection struct {
	ConnectionID string    `json:"connectionId"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	Identity     Identity  `json:"identity"`
	// Groups are the groups the connection is a member of.
	Groups []string `json:"groups"`
}

// Identity is who opened a connection, as GetConnection reports it.
type Identity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// ConnectionsPage is one page of the connection listing.
type ConnectionsPage struct {
	Connections []Connection `json:"connections"`
	// NextToken asks for the next page; empty on the last one.
	NextToken string `json:"nextToken,omitempty"`
}

// ListConnections returns one page of the stage's open connections in
// ascending id order (GET /{stage}/@connections, operation
// ListConnections). maxResults is 1 to 1000; 0 means the server's default,
// 100. nextToken is empty for the first page.
func (c *Client) ListConnections(ctx context.Context, maxResults int, nextToken string) (ConnectionsPage, error) {
	var p ConnectionsPage
	err := c.do(ctx, call{op: "ListConnections", method: http.MethodGet, segments: []string{"@connections"}, query: pageQuery(maxResults, nextToken)}, &p)
	return p, err
}

// NewConnectionsPaginator walks the connection listing maxResults at a time.
func NewConnectionsPaginator(c *Client, maxResults int) *Paginator[ConnectionsPage] {
	return &Paginator[ConnectionsPage]{fetch: func(ctx context.Context, token string) (ConnectionsPage, string, error) {
		p, err := c.ListConnections(ctx, maxResults, token)
		return p, p.NextToken, err
	}}
}

// AllConnections returns every open connection, reading every page.
func (c *Client) AllConnections(ctx context.Context) ([]Connection, error) {
	all := []Connection{}
	err := NewConnectionsPaginator(c, 0).each(ctx, func(p ConnectionsPage) { all = append(all, p.Connections...) })
	return all, err
}
