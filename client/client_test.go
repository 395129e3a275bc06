package client_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/clienttest"
)

func newClient(t *testing.T, g *clienttest.Gateway) *client.Client {
	t.Helper()
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	c, err := client.New(context.Background(), client.Options{EndpointURL: g.Endpoint, Region: clienttest.Region, Credentials: clienttest.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGroups: join, publish reaches exactly the members, members page by
// page and all at once, leave.
func TestGroups(t *testing.T) {
	g := clienttest.Start(t)
	c := newClient(t, g)
	ctx := context.Background()
	var conns []*websocket.Conn
	var ids []string
	for range 3 {
		ws, id := g.Dial(t, "client-test")
		conns, ids = append(conns, ws), append(ids, id)
	}
	for _, id := range ids[:2] {
		if err := c.Join(ctx, "room:1", id); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	d, err := c.Publish(ctx, "room:1", []byte("hello members"))
	if err != nil || d != (client.Delivery{Delivered: 2}) {
		t.Fatalf("publish: %+v, %v", d, err)
	}
	for _, ws := range conns[:2] {
		if got := clienttest.Read(t, ws); got != "hello members" {
			t.Fatalf("member got %q", got)
		}
	}
	// The non-member's next message is its own echo, not the publish.
	if err := conns[2].WriteMessage(websocket.TextMessage, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if got := clienttest.Read(t, conns[2]); got != "mine" {
		t.Fatalf("non-member got %q", got)
	}

	want := slices.Sorted(slices.Values(ids[:2]))
	p := client.NewMembersPaginator(c, "room:1", 1)
	var paged []string
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		paged = append(paged, page.ConnectionIDs...)
	}
	if pages != 2 || !slices.Equal(paged, want) {
		t.Fatalf("paginated members %v in %d pages, want %v in 2", paged, pages, want)
	}
	if all, err := c.AllMembers(ctx, "room:1"); err != nil || !slices.Equal(all, want) {
		t.Fatalf("all members %v, %v; want %v", all, err, want)
	}

	if err := c.Leave(ctx, "room:1", ids[0]); err != nil {
		t.Fatal(err)
	}
	if page, err := c.Members(ctx, "room:1", 0, ""); err != nil || !slices.Equal(page.ConnectionIDs, ids[1:2]) || page.NextToken != "" {
		t.Fatalf("members after leave: %+v, %v", page, err)
	}
}

// TestListConnections: every connection with identity and groups, paged.
func TestListConnections(t *testing.T) {
	g := clienttest.Start(t)
	c := newClient(t, g)
	ctx := context.Background()
	_, a := g.Dial(t, "agent-a")
	_, b := g.Dial(t, "agent-b")
	if err := c.Join(ctx, "g", a); err != nil {
		t.Fatal(err)
	}
	page, err := c.ListConnections(ctx, 1, "")
	if err != nil || len(page.Connections) != 1 || page.NextToken == "" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	all, err := c.AllConnections(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("all connections: %+v, %v", all, err)
	}
	byID := map[string]client.Connection{}
	for _, conn := range all {
		byID[conn.ConnectionID] = conn
	}
	ca, cb := byID[a], byID[b]
	if ca.Identity.UserAgent != "agent-a" || ca.Identity.SourceIP != "127.0.0.1" || !slices.Equal(ca.Groups, []string{"g"}) || ca.ConnectedAt.IsZero() {
		t.Fatalf("connection a: %+v", ca)
	}
	if cb.Identity.UserAgent != "agent-b" || len(cb.Groups) != 0 {
		t.Fatalf("connection b: %+v", cb)
	}
}

// TestErrors: the API's failures as *APIError and smithy.APIError inside
// a *smithy.OperationError naming the operation.
func TestErrors(t *testing.T) {
	g := clienttest.Start(t)
	c := newClient(t, g)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		op     string
		status int
		code   string
	}{
		{"join unknown id", func() error { return c.Join(ctx, "g", "AAAAAAAAAAAAAAA=") }, "JoinGroup", http.StatusGone, "GoneException"},
		{"bad group name", func() error { _, err := c.Publish(ctx, "no spaces", []byte("x")); return err }, "PublishToGroup", http.StatusBadRequest, "BadRequestException"},
		{"too large", func() error { _, err := c.Publish(ctx, "g", make([]byte, 131073)); return err }, "PublishToGroup", http.StatusRequestEntityTooLarge, "PayloadTooLargeException"},
		{"bad maxResults", func() error { _, err := c.ListConnections(ctx, 1001, ""); return err }, "ListConnections", http.StatusBadRequest, "BadRequestException"},
		{"bad token", func() error { _, err := c.Members(ctx, "g", 0, "!"); return err }, "GetGroupMembers", http.StatusBadRequest, "BadRequestException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.Code != tc.code || ae.Message == "" {
				t.Fatalf("got %v (%#v), want %d %s", err, ae, tc.status, tc.code)
			}
			var sae smithy.APIError
			if !errors.As(err, &sae) || sae.ErrorCode() != tc.code {
				t.Fatalf("not a smithy.APIError: %v", err)
			}
			var oe *smithy.OperationError
			if !errors.As(err, &oe) || oe.Operation() != tc.op || oe.Service() != client.ServiceID {
				t.Fatalf("operation error %+v, want %s", oe, tc.op)
			}
		})
	}

	bad, err := client.New(ctx, client.Options{EndpointURL: g.Endpoint, Region: clienttest.Region, Credentials: staticCreds("AKIDCLIENTTEST", "wrong")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Publish(ctx, "g", []byte("x"))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestManagement: the SDK client Management returns reaches the same
// gateway with the same credentials.
func TestManagement(t *testing.T) {
	g := clienttest.Start(t)
	c := newClient(t, g)
	ws, id := g.Dial(t, "")
	_, err := c.Management().PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("via sdk")})
	if err != nil {
		t.Fatal(err)
	}
	if got := clienttest.Read(t, ws); got != "via sdk" {
		t.Fatalf("got %q", got)
	}

	// The SDK drops GoneException's message; Management's client keeps it.
	gone := "AAAAAAAAAAAAAAA="
	_, err = c.Management().GetConnection(context.Background(), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &gone})
	var ge *types.GoneException
	var ae smithy.APIError
	if !errors.As(err, &ge) || !errors.As(err, &ae) || ae.ErrorCode() != "GoneException" || ae.ErrorMessage() != "The connection does not exist or is closed." {
		t.Fatalf("GetConnection of an unknown id: %v", err)
	}
	if !strings.HasSuffix(err.Error(), "GoneException: The connection does not exist or is closed.") {
		t.Fatalf("error text %q", err)
	}
}

func TestNewRejectsBadEndpoint(t *testing.T) {
	for _, ep := range []string{"", "ftp://x/dev", "http:///dev", "::"} {
		if _, err := client.New(context.Background(), client.Options{EndpointURL: ep, Credentials: clienttest.Credentials()}); !errors.Is(err, client.ErrInvalidEndpoint) {
			t.Errorf("New(%q): %v, want an endpoint error", ep, err)
		}
	}
}

func staticCreds(key, secret string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(key, secret, "")
}
