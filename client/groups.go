package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Delivery is what a publish did: how many members had the message queued
// and how many were skipped because their outbound queue was full.
type Delivery struct {
	Delivered int `json:"delivered"`
	Skipped   int `json:"skipped"`
}

// MembersPage is one page of a group's members.
type MembersPage struct {
	ConnectionIDs []string `json:"connectionIds"`
	// NextToken asks for the next page; empty on the last one.
	NextToken string `json:"nextToken,omitempty"`
}

// Publish sends data as one message to every member of group
// (POST /{stage}/@groups/{group}, operation PublishToGroup). Data is at
// most 131072 bytes, else a 413 PayloadTooLargeException.
func (c *Client) Publish(ctx context.Context, group string, data []byte) (Delivery, error) {
	if data == nil {
		data = []byte{}
	}
	var d Delivery
	err := c.do(ctx, call{op: "PublishToGroup", method: http.MethodPost, segments: []string{"@groups", group}, body: data}, &d)
	return d, err
}

// Join adds the connection to group (PUT, operation JoinGroup). Joining
// twice is not an error; an unknown connection is a 410 GoneException.
func (c *Client) Join(ctx context.Context, group, connectionID string) error {
	return c.do(ctx, call{op: "JoinGroup", method: http.MethodPut, segments: []string{"@groups", group, "@connections", connectionID}}, nil)
}

// Leave removes the connection from group (DELETE, operation LeaveGroup).
func (c *Client) Leave(ctx context.Context, group, connectionID string) error {
	return c.do(ctx, call{op: "LeaveGroup", method: http.MethodDelete, segments: []string{"@groups", group, "@connections", connectionID}}, nil)
}

// Members returns one page of group's members in ascending id order
// (GET, operation GetGroupMembers). maxResults is 1 to 1000; 0 means the
// server's default, 100. nextToken is empty for the first page.
func (c *Client) Members(ctx context.Context, group string, maxResults int, nextToken string) (MembersPage, error) {
	var p MembersPage
	err := c.do(ctx, call{op: "GetGroupMembers", method: http.MethodGet, segments: []string{"@groups", group}, query: pageQuery(maxResults, nextToken)}, &p)
	return p, err
}

// NewMembersPaginator walks group's members maxResults at a time.
func NewMembersPaginator(c *Client, group string, maxResults int) *Paginator[MembersPage] {
	return &Paginator[MembersPage]{fetch: func(ctx context.Context, token string) (MembersPage, string, error) {
		p, err := c.Members(ctx, group, maxResults, token)
		return p, p.NextToken, err
	}}
}

// AllMembers returns every member of group, reading every page.
func (c *Client) AllMembers(ctx context.Context, group string) ([]string, error) {
	ids := []string{}
	err := NewMembersPaginator(c, group, 0).each(ctx, func(p MembersPage) { ids = append(ids, p.ConnectionIDs...) })
	return ids, err
}

func pageQuery(maxResults int, nextToken string) url.Values {
	q := url.Values{}
	if maxResults != 0 {
		q.Set("maxResults", strconv.Itoa(maxResults))
	}
	if nextToken != "" {
		q.Set("nextToken", nextToken)
	}
	return q
}
