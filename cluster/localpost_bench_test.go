package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/sigv4"
)

// BenchmarkLocalPost is C3 without the harness's processes: one signed
// PostToConnection at a time on a keep-alive socket, through the whole
// server (front, gateway, hub), to a connection of the node the request
// entered, then the frame read by that connection's client; the server
// is a single node (hub.Memory) or node 1 of a cluster of 1 or 3 (real
// embedded NATS, in this process). Each request is signed as an AWS SDK
// signs it (the id's '=' as "%3D", Amz-Sdk-Request signed): "sdk" with
// its own Amz-Sdk-Invocation-Id signed (a cluster's dedupe key), "plain"
// without one. cpu-µs/op is the process's CPU (clients, servers, NATS)
// per POST. Run with a fixed count (-benchtime 20000x): every request is
// signed before the timer starts.
func BenchmarkLocalPost(b *testing.B) {
	for _, nodes := range []int{0, 1, 3} {
		for _, sdkKey := range []bool{false, true} {
			name := map[bool]string{false: "plain", true: "sdk"}[sdkKey]
			b.Run(fmt.Sprintf("%s/%s", map[int]string{0: "single", 1: "cluster1", 3: "cluster3"}[nodes], name), func(b *testing.B) {
				srv := localPostServer(b, nodes)
				benchLocalPost(b, srv, sdkKey)
			})
		}
	}
}

// localPostServer starts a single node (nodes 0) or a cluster of nodes
// and returns node 1.
func localPostServer(b *testing.B, nodes int) *server.Server {
	if nodes > 0 {
		return startServers(b, embeddedConfigs(b, nodes))[0]
	}
	cfg := serverConfig(b, cluster.Config{})
	cfg.Cluster = nil
	srv, err := server.New(cfg, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	b.Cleanup(func() { shutdownServers([]*server.Server{srv}) })
	return srv
}

// BenchmarkLocalPostAB is BenchmarkLocalPost with the single node and
// node 1 of a cluster (1 or 3 nodes) in one process at once, taking turns
// in blocks of 500 POSTs (ABBA), so both sides meet the same machine: on
// 2 shared cores a side's CPU per POST moves with the load of the moment
// more than by what cluster mode adds. It reports each side's process CPU
// per POST over its blocks and their ratio (cluster/single).
func BenchmarkLocalPostAB(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, sdkKey := range []bool{false, true} {
			name := map[bool]string{false: "plain", true: "sdk"}[sdkKey]
			b.Run(fmt.Sprintf("cluster%d/%s", nodes, name), func(b *testing.B) {
				sides := []*postSide{newPostSide(b, localPostServer(b, 0), sdkKey), newPostSide(b, localPostServer(b, nodes), sdkKey)}
				const block = 500
				b.ReportAllocs()
				b.ResetTimer()
				for done, turn := 0, 0; done < b.N; turn++ {
					n := min(block, b.N-done)
					for k := range 2 {
						side := sides[k^(turn&1)] // ABBA: each side first every other turn
						side.run(b, n)
					}
					done += n
				}
				b.StopTimer()
				single, clustered := sides[0].cpuPerPost(), sides[1].cpuPerPost()
				b.ReportMetric(single, "single-cpu-µs/op")
				b.ReportMetric(clustered, "cluster-cpu-µs/op")
				b.ReportMetric(clustered/single, "cluster/single")
			})
		}
	}
}

// postSide is one server of BenchmarkLocalPostAB with its clients and
// its requests, each signed once.
type postSide struct {
	*testenv.Poster // dialed by the first run: the other side's start and signing may outlast a keep-alive's idle timeout
	addr            string
	ws              net.Conn
	frameLen        int
	wires           [][]byte
	next            int
	cpu             time.Duration
}

func newPostSide(b *testing.B, srv *server.Server, sdkKey bool) *postSide {
	ws := rawWebSocket(b, srv.Addr())
	var id string
	for id == "" {
		srv.Hub().Each(func(c hub.Conn) bool { id = c.ID(); return false })
	}
	if node, _ := hub.NodeOf(id); srv.Cluster() != nil && node != srv.Cluster().Self() {
		b.Fatalf("connection %s is not node 1's", id)
	}
	body := []byte(`{"action":"message","data":"hello from the backend"}`)
	target := srv.ManagementEndpoint() + "/@connections/" + strings.ReplaceAll(url.PathEscape(id), "=", "%3D")
	p := &postSide{addr: srv.Addr(), ws: ws, frameLen: 2 + len(body), wires: make([][]byte, b.N)}
	now := time.Now()
	for i := range p.wires {
		p.wires[i] = sdkSignedPost(b, target, body, sdkKey, i, now)
	}
	return p
}

// run sends the side's next n requests, one at a time, and adds the
// process's CPU over them.
func (p *postSide) run(b *testing.B, n int) {
	if p.Poster == nil {
		p.Poster = testenv.NewPoster(b, p.addr, p.ws, p.frameLen)
	}
	cpu0 := testenv.ProcessCPU()
	for range n {
		p.Post(b, p.wires[p.next])
		p.next++
	}
	p.cpu += testenv.ProcessCPU() - cpu0
}

func (p *postSide) cpuPerPost() float64 { return float64(p.cpu.Nanoseconds()) / 1e3 / float64(p.next) }

func benchLocalPost(b *testing.B, srv *server.Server, sdkKey bool) {
	p := newPostSide(b, srv, sdkKey)
	b.ReportAllocs()
	b.ResetTimer()
	p.run(b, b.N)
	b.StopTimer()
	b.ReportMetric(p.cpuPerPost(), "cpu-µs/op")
}

// sdkSignedPost is request i signed as the AWS SDK for Go v2 signs a
// PostToConnection: with its own invocation id when withKey.
func sdkSignedPost(b *testing.B, target string, body []byte, withKey bool, i int, now time.Time) []byte {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.32.0 ua/2.1 os/linux lang/go#1.25 md/GOOS#linux md/GOARCH#amd64 api/apigatewaymanagementapi#1.24.0")
	if withKey {
		req.Header.Set("Amz-Sdk-Invocation-Id", fmt.Sprintf("3b3a4c7e-5d4f-4a8e-9a3e-%012x", i))
	}
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	sum := sha256.Sum256(body)
	creds := sigv4.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	if err := sigv4.Sign(req, creds, "execute-api", "us-east-1", now, hex.EncodeToString(sum[:])); err != nil {
		b.Fatal(err)
	}
	if withKey && !strings.Contains(req.Header.Get("Authorization"), "amz-sdk-invocation-id") {
		b.Fatalf("invocation id not signed: %s", req.Header.Get("Authorization"))
	}
	var w bytes.Buffer
	if err := req.Write(&w); err != nil {
		b.Fatal(err)
	}
	return w.Bytes()
}

// rawWebSocket is a bare WebSocket client of addr's stage dev: the socket
// after the 101, read directly.
func rawWebSocket(b *testing.B, addr string) net.Conn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	if _, err := fmt.Fprintf(nc, "GET /dev HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr); err != nil {
		b.Fatal(err)
	}
	// Read the 101's head byte by byte: nothing past it is consumed.
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := nc.Read(one); err != nil {
			b.Fatal(err)
		}
		head = append(head, one[0])
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		b.Fatalf("handshake: %q", head)
	}
	return nc
}

// BenchmarkLocalLookup: what a cluster hub adds to the gateway's lookup
// of a connection of its own node (hub.Local's LookupLocal, the route
// and dedupe-key checks), against the node's own hub.Memory, and a keyed
// SendLocalOnce (a new key each time: run with a fixed count, every key is
// made before the timer starts) with a send that does nothing; parallel
// on 2 cores, as POSTs come.
func BenchmarkLocalLookup(b *testing.B) {
	h := startHubs(b, embeddedConfigs(b, 1))[0]
	mem := hub.NewMemory(hub.Limits{})
	c := hubtest.NewConn(hub.NewID(h.Self()), false)
	if err := h.Register(c); err != nil {
		b.Fatal(err)
	}
	if err := mem.Register(c); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	id := c.ID()
	for _, l := range []struct {
		name string
		hub  hub.Local
	}{{"memory", mem}, {"cluster", h}} {
		b.Run(l.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if got, err := l.hub.LookupLocal(ctx, id); got != c || err != nil {
						b.Fatal(got, err)
					}
				}
			})
		})
	}
	b.Run("cluster-once", func(b *testing.B) {
		keys := make([]hub.CallKey, b.N)
		for i := range keys {
			keys[i] = hub.CallKey{"sdk:", "AKID", ":", fmt.Sprintf("3b3a4c7e-5d4f-4a8e-9a3e-%012x", i)}
		}
		var next atomic.Int64
		send := func(hub.Conn, []byte) error { return nil }
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k := keys[next.Add(1)-1]
				if local, err := h.SendLocalOnce(k, id, nil, send); !local || err != nil {
					b.Fatal(local, err)
				}
			}
		})
	})
}
