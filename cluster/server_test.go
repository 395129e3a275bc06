package cluster_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/gorilla/websocket"
	"sigs.k8s.io/yaml"

	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

const nodeConfig = `
listen: "127.0.0.1:0"
credentials: [{ accessKeyId: AKID, secretAccessKey: secret }]
admin: { listen: "127.0.0.1:0" }
routes:
  "$default": { integration: { type: mock } }
  whoami:
    integration:
      type: mock
      requestTemplates: { "$default": '{"statusCode": 200}' }
      integrationResponses: { "$default": { responseTemplates: { "$default": "$context.connectionId" } } }
    routeResponseSelectionExpression: "$default"
`

// serverConfig is a node's server config around its cluster block.
func serverConfig(t testing.TB, cc cluster.Config) server.Config {
	t.Helper()
	var cfg server.Config
	if err := yaml.UnmarshalStrict([]byte(nodeConfig), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Cluster = &cc
	cfg.StateDir = t.TempDir()
	return cfg
}

// startServers starts one wsgate server per cluster config, concurrently.
func startServers(t testing.TB, cfgs []cluster.Config) []*server.Server {
	t.Helper()
	return startServersWith(t, cfgs, nil)
}

// startServersWith is startServers with more config (streams) set by
// more, when not nil. A start that found its port taken starts them all
// again on other ports, as startHubs does.
func startServersWith(t testing.TB, cfgs []cluster.Config, more func(*server.Config)) []*server.Server {
	t.Helper()
	var srvs []*server.Server
	var errs []error
	for attempt := 0; ; attempt++ {
		srvs, errs = make([]*server.Server, len(cfgs)), make([]error, len(cfgs))
		scfgs := make([]server.Config, len(cfgs))
		for i, cc := range cfgs {
			scfgs[i] = serverConfig(t, cc)
			if more != nil {
				more(&scfgs[i])
			}
		}
		startTogether(cfgs, func(i int) error {
			var err error
			srvs[i], err = server.New(scfgs[i], testLogger())
			return err
		}, errs)
		if attempt == 3 || !rebind(t, cfgs, errs) {
			break
		}
		shutdownServers(srvs)
	}
	t.Cleanup(func() { shutdownServers(srvs) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	for _, s := range srvs {
		s.Start()
		testenv.Eventually(t, 20*time.Second, func() error {
			nodes, _ := s.Hub().Nodes(context.Background())
			if len(nodes) != len(srvs) || slices.ContainsFunc(nodes, func(n hub.Node) bool { return n.State != "up" }) {
				return fmt.Errorf("sees %+v", nodes)
			}
			return nil
		})
	}
	return srvs
}

// shutdownServers shuts the servers that started down, together, as
// closeHubs closes hubs.
func shutdownServers(srvs []*server.Server) {
	var wg sync.WaitGroup
	for _, s := range srvs {
		if s != nil {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = s.Shutdown(ctx)
			})
		}
	}
	wg.Wait()
}

func sdk(s *server.Server) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.ManagementEndpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
	})
}

func groupClient(t *testing.T, s *server.Server) *client.Client {
	c, err := client.New(context.Background(), client.Options{
		EndpointURL: s.ManagementEndpoint(),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dial connects a WebSocket client to s and returns it with its id, found
// in s's own registry.
func dial(t *testing.T, s *server.Server) (*websocket.Conn, string) {
	t.Helper()
	return dialWith(t, s, websocket.DefaultDialer)
}

// dialWith is dial through d.
func dialWith(t *testing.T, s *server.Server, d *websocket.Dialer) (*websocket.Conn, string) {
	t.Helper()
	before := map[string]bool{}
	s.Hub().Each(func(c hub.Conn) bool { before[c.ID()] = true; return true })
	ws, _, err := d.Dial(s.WebSocketURLs()[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var id string
	testenv.Eventually(t, 10*time.Second, func() error {
		s.Hub().Each(func(c hub.Conn) bool {
			if !before[c.ID()] {
				id = c.ID()
			}
			return id == ""
		})
		if id == "" {
			return errors.New("not registered yet")
		}
		return nil
	})
	return ws, id
}

func read(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func isGone(err error) bool {
	var g *types.GoneException
	return errors.As(err, &g)
}

// TestClusterCrossNodeCalls: every management call on a connection of
// node C works through A and B, with the real AWS SDK and wsgate's client.
func TestClusterCrossNodeCalls(t *testing.T) {
	parallel(t)
	srvs := startServers(t, embeddedConfigs(t, 3))
	a, b, c := srvs[0], srvs[1], srvs[2]
	ws, id := dial(t, c)
	ctx := context.Background()

	for i, s := range srvs {
		msg := fmt.Sprintf("post via %d", i)
		if _, err := sdk(s).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte(msg)}); err != nil {
			t.Fatalf("post via node %d: %v", i, err)
		}
		if got := read(t, ws); got != msg {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
	out, err := sdk(b).GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil || out.Identity == nil || aws.ToString(out.Identity.SourceIp) != "127.0.0.1" {
		t.Fatalf("get via B: %+v %v", out, err)
	}

	// Join through A, publish through B: the member on C gets it once.
	if err := groupClient(t, a).Join(ctx, "room.1", id); err != nil {
		t.Fatal(err)
	}
	wsA, idA := dial(t, a)
	if err := groupClient(t, c).Join(ctx, "room.1", idA); err != nil {
		t.Fatal(err)
	}
	d, err := groupClient(t, b).Publish(ctx, "room.1", []byte("to the room"))
	if err != nil || d.Delivered != 0 {
		t.Fatalf("publish via B (no members there) = %+v %v", d, err)
	}
	if got := read(t, ws); got != "to the room" {
		t.Fatalf("member on C got %q", got)
	}
	if got := read(t, wsA); got != "to the room" {
		t.Fatalf("member on A got %q", got)
	}
	members, err := groupClient(t, b).AllMembers(ctx, "room.1")
	want := []string{id, idA}
	slices.Sort(want)
	if err != nil || !slices.Equal(members, want) {
		t.Fatalf("members via B = %v %v, want %v", members, err, want)
	}

	// @cluster from any node: three nodes up, the connections counted.
	resp, body := signedGet(t, a, "/@cluster")
	if resp.StatusCode != 200 || strings.Count(body, `"state":"up"`) != 3 {
		t.Fatalf("@cluster: %d %s", resp.StatusCode, body)
	}

	// DELETE through A closes the client on C; then 410 from every node.
	if _, err := sdk(a).DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Fatalf("after DELETE: %v, want close 1000", err)
	}
	for i, s := range srvs {
		testenv.Eventually(t, 10*time.Second, func() error {
			_, err := sdk(s).GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
			if !isGone(err) {
				return fmt.Errorf("node %d: get of a deleted connection: %v", i, err)
			}
			return nil
		})
		for _, bad := range []string{"AAAAAAAAAAAAAAA=", hub.NewID(hub.NoNode), hub.NewID(c.Cluster().Self())} {
			_, err := sdk(s).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(bad), Data: []byte("x")})
			if !isGone(err) {
				t.Fatalf("node %d: post to %s: %v, want GoneException", i, bad, err)
			}
		}
	}
}

func signedGet(t *testing.T, s *server.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, body, err := signedRequest(s.ManagementEndpoint(), path)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// signedRequest sends a SigV4-signed GET to endpoint+path.
func signedRequest(endpoint, path string) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodGet, endpoint+path, nil)
	if err != nil {
		return nil, "", err
	}
	empty := sha256.Sum256(nil)
	creds := aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(empty[:]), "execute-api", "us-east-1", time.Now()); err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}
