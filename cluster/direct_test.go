package cluster_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
)

// TestClusterDirectQueries: listings over 3 nodes go over the nodes'
// direct query links once their heartbeats gave the addresses (plain, with
// route TLS, with route authentication), return exactly the sorted union,
// and still do over NATS once a node's link is closed; the link refuses a
// first frame naming another incarnation or the wrong route password, and
// (with TLS) a client without a certificate of the cluster's CA.
func TestClusterDirectQueries(t *testing.T) {
	parallel(t)
	for _, mode := range []string{"plain", "tls", "auth"} {
		t.Run(mode, func(t *testing.T) {
			cfgs := embeddedConfigs(t, 3)
			ca := newCA(t)
			for i := range cfgs {
				switch mode {
				case "tls":
					cfgs[i].NATS.Embedded.ClusterTLS = &cluster.RouteTLS{TLSFiles: peerFiles(t, ca, cfgs[i].Node.Name)}
				case "auth":
					cfgs[i].NATS.Embedded.ClusterAuth = &cluster.RouteAuth{User: "wsg", Password: "s3cret"}
				}
				cfgs[i].SetDefaults()
			}
			hubs := startHubs(t, patient(cfgs))
			ctx := context.Background()
			var want []string
			for _, h := range hubs {
				if h.DirectAddr() == "" {
					t.Fatal("a node on 127.0.0.1 has no direct query address")
				}
				want = append(want, registerMembers(t, h, "g", 50)...)
			}
			slices.Sort(want)
			list := func() {
				t.Helper()
				var got []string
				after := ""
				for {
					ids, next, err := hubs[0].Members(ctx, "g", hub.Page{After: after, Limit: 40})
					if err != nil {
						t.Fatalf("listing: %v", err)
					}
					got = append(got, ids...)
					if next == "" {
						break
					}
					after = next
				}
				if !slices.Equal(got, want) {
					t.Fatalf("listing: %d ids, want the union's %d", len(got), len(want))
				}
			}
			// The addresses come with the heartbeats: list until both
			// others answered over their links.
			for end := time.Now().Add(30 * time.Second); hubs[1].DirectServed() == 0 || hubs[2].DirectServed() == 0; {
				if time.Now().After(end) {
					t.Fatalf("no query answered over the direct links (served %d, %d)", hubs[1].DirectServed(), hubs[2].DirectServed())
				}
				list()
				time.Sleep(20 * time.Millisecond)
			}
			before := hubs[1].DirectServed()
			list()
			if hubs[1].DirectServed() == before {
				t.Fatal("a listing after the links were up did not use node 1's")
			}

			// A stranger's first frame is refused.
			refused := func(c net.Conn, fields ...string) bool {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(cluster.DirectFrame(fields...)); err != nil {
					return true
				}
				var ans [5]byte
				if _, err := io.ReadFull(bufio.NewReader(c), ans[:]); err != nil {
					return true
				}
				return binary.BigEndian.Uint32(ans[:4]) != 1 || ans[4] != 0
			}
			dial := func() net.Conn {
				c, err := net.DialTimeout("tcp", hubs[1].DirectAddr(), 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				if mode == "tls" {
					f := peerFiles(t, ca, "visitor")
					cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
					if err != nil {
						t.Fatal(err)
					}
					return tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
				}
				return c
			}
			node := hub.NodeHex(hubs[1].Self())
			user, pass := "", ""
			if mode == "auth" {
				user, pass = "wsg", "s3cret"
			}
			if refused(dial(), "wsgate-q1", cfgs[1].Name, node, hubs[1].Incarnation(), user, pass) {
				t.Fatal("a right first frame was refused")
			}
			if !refused(dial(), "wsgate-q1", cfgs[1].Name, node, "0000000000000000", user, pass) {
				t.Fatal("a first frame naming another incarnation was accepted")
			}
			if mode == "auth" && !refused(dial(), "wsgate-q1", cfgs[1].Name, node, hubs[1].Incarnation(), "wsg", "wrong") {
				t.Fatal("a first frame with the wrong password was accepted")
			}
			if mode == "tls" {
				c, err := net.DialTimeout("tcp", hubs[1].DirectAddr(), 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				tc := tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
				if !refused(tc, "wsgate-q1", cfgs[1].Name, node, hubs[1].Incarnation(), "", "") {
					t.Fatal("a client without a certificate was served")
				}
			}

			if mode == "plain" {
				// An owner that answers after the call's budget: the
				// listing fails (500), it does not wait on the link for
				// ever; the next one is served again.
				var slow atomic.Bool
				slow.Store(true)
				release := make(chan struct{})
				hubs[2].SetQueryHook(func(string) {
					if slow.Load() {
						<-release
					}
				})
				served := hubs[2].DirectServed()
				short, cancel := context.WithTimeout(ctx, time.Second)
				_, _, err := hubs[0].Members(short, "g", hub.Page{Limit: 40})
				cancel()
				slow.Store(false)
				close(release)
				if !errors.Is(err, hub.ErrUnavailable) {
					t.Fatalf("listing through an owner that does not answer: %v, want ErrUnavailable", err)
				}
				for end := time.Now().Add(30 * time.Second); hubs[2].DirectServed() == served; {
					if time.Now().After(end) {
						t.Fatal("the held query was not asked over node 2's link")
					}
					time.Sleep(10 * time.Millisecond)
				}
				list()
			}

			// Node 1's link closed: its part comes over NATS.
			hubs[1].CloseDirect()
			served := hubs[1].DirectServed()
			list()
			list()
			if hubs[1].DirectServed() != served {
				t.Fatal("a closed link answered")
			}
		})
	}
}

// TestClusterQueryPort: queryPort -1 leaves a node without a direct link
// (it is asked over NATS), a fixed port is the one advertised, and a port
// out of range is refused by Validate.
func TestClusterQueryPort(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 3)
	port := freePorts(t, 1)[0]
	cfgs[0].NATS.Embedded.QueryPort = -1
	cfgs[1].NATS.Embedded.QueryPort = port
	hubs := startHubs(t, patient(cfgs))
	if a := hubs[0].DirectAddr(); a != "" {
		t.Fatalf("queryPort -1: direct address %q, want none", a)
	}
	if a, want := hubs[1].DirectAddr(), net.JoinHostPort("127.0.0.1", strconv.Itoa(port)); a != want {
		t.Fatalf("queryPort %d: direct address %q, want %q", port, a, want)
	}
	ctx := context.Background()
	var want []string
	for _, h := range hubs {
		want = append(want, registerMembers(t, h, "g", 20)...)
	}
	slices.Sort(want)
	// Listed from node 2: node 1 over its link once its heartbeat gave
	// the address, node 0 over NATS.
	for end := time.Now().Add(30 * time.Second); hubs[1].DirectServed() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("node 1 answered no query over its fixed port")
		}
		got, _, err := hubs[2].Members(ctx, "g", hub.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listing: %d ids, want %d", len(got), len(want))
		}
	}
	if n := hubs[0].DirectServed(); n != 0 {
		t.Fatalf("node 0 without a link served %d queries over one", n)
	}

	c := cfgs[2]
	c.NATS.Embedded = new(*cfgs[2].NATS.Embedded)
	c.NATS.Embedded.QueryPort = 70000
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "queryPort") {
		t.Fatalf("queryPort 70000: Validate %v, want an error naming queryPort", err)
	}
}

// registerMembers registers n connections of h's and joins each to group;
// their ids, in the order made.
func registerMembers(t *testing.T, h *cluster.Hub, group string, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		c := hubtest.NewConn(hub.NewID(h.Self()), false)
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
		if err := h.Join(context.Background(), group, c.ID()); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID())
	}
	return ids
}
