package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestClusterDirectHostileClients: connections that never authenticate do
// not keep the peers off the direct query links. Before node 0 opened any
// link, nodes 1 and 2 are sent, from the peers' own address, 40
// connections each that send nothing, half a frame or a frame too long,
// and held open; and (where other loopback addresses can be bound) a
// flood from 8 other addresses, 40 connections each, every one opened
// again as soon as the node closes it (320 at a time per node: more than
// the whole served bound). Listings from node 0 are still answered over
// both links, opened meanwhile, and go on being while the flood runs; the
// closes past the bounds are counted (DirectClosed).
func TestClusterDirectHostileClients(t *testing.T) {
	heavy(t)
	cfgs := embeddedConfigs(t, 3)
	hubs := startHubs(t, patient(cfgs))
	var want []string
	for _, h := range hubs {
		want = append(want, registerMembers(t, h, "g", 10)...)
	}
	slices.Sort(want)
	targets := []*cluster.Hub{hubs[1], hubs[2]}

	flood, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() }) // before the hubs close

	// From 127.0.0.1, the peers' address: opened at once, held.
	for _, h := range targets {
		for i := range 40 {
			c, err := net.Dial("tcp", h.DirectAddr())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			switch i % 3 {
			case 1:
				_, _ = c.Write([]byte{0, 0, 0, 100, 9, 'w', 's'}) // half a frame
			case 2:
				_, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xff, 'x'}) // too long
			}
		}
	}

	for _, h := range targets {
		testenv.Eventually(t, 60*time.Second, func() error {
			if closed := h.DirectClosed(); closed["source"] == 0 || closed["first_frame"] == 0 {
				return fmt.Errorf("closed connections not counted: %v", closed)
			}
			return nil
		})
	}

	// From 127.0.0.2-9: a flood.
	sources := 0
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
		ln.Close()
		sources = 8
	} else {
		t.Logf("no flood from other loopback addresses: %v", err)
	}
	var opened sync.Map // by target: connections the flood opened
	for s := range sources {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+s))}}
		for _, h := range targets {
			addr := h.DirectAddr()
			for range 40 {
				wg.Go(func() {
					for flood.Err() == nil {
						c, err := d.DialContext(flood, "tcp", addr)
						if err != nil { // the end, or no source port free: a pause
							select {
							case <-flood.Done():
							case <-time.After(10 * time.Millisecond):
							}
							continue
						}
						n, _ := opened.LoadOrStore(addr, new(atomic.Int64))
						n.(*atomic.Int64).Add(1)
						// Held until the node closes it, then opened again.
						done := context.AfterFunc(flood, func() { _ = c.Close() })
						_, _ = c.Read(make([]byte, 1))
						done()
						_ = c.Close()
					}
				})
			}
		}
	}

	list := func() error {
		got, next, err := hubs[0].Members(context.Background(), "g", hub.Page{Limit: 100})
		if err != nil {
			return err
		}
		if next != "" || !slices.Equal(got, want) {
			return fmt.Errorf("listing: %d ids (next %q), want %d", len(got), next, len(want))
		}
		return nil
	}
	viaLinks := func() {
		t.Helper()
		s1, s2 := hubs[1].DirectServed(), hubs[2].DirectServed()
		testenv.Eventually(t, 60*time.Second, func() error {
			if err := list(); err != nil {
				t.Fatal(err)
			}
			if hubs[1].DirectServed() == s1 || hubs[2].DirectServed() == s2 {
				return fmt.Errorf("node 1 or 2 answered no listing over its link (served %d, %d)", hubs[1].DirectServed(), hubs[2].DirectServed())
			}
			return nil
		})
	}
	for _, h := range targets {
		testenv.Eventually(t, 60*time.Second, func() error {
			if sources == 0 {
				return nil
			}
			if closed := h.DirectClosed(); closed["unauthenticated"] == 0 {
				return fmt.Errorf("no connection closed at the bound of those not authenticated: %v", closed)
			}
			if n, _ := opened.Load(h.DirectAddr()); n == nil || n.(*atomic.Int64).Load() < 320 {
				return errors.New("the flood has not opened its 320 connections yet")
			}
			return nil
		})
	}
	// The flood at full strength: node 0 opens its links and lists over
	// them, again and again.
	viaLinks()
	viaLinks()
	for _, h := range targets {
		t.Logf("node %s closed %v", hub.NodeHex(h.Self()), h.DirectClosed())
	}
}

// TestClusterDirectRetryAfterHeal: node 0's direct link to node 2 is
// blackholed (the routes are not: node 2 stays up and is asked over
// NATS). The connection held there fails its listing at the call's
// budget; node 0's dials to node 2 then fail and are tried again while
// listings want node 2 (at least twice: the first retry comes after 1 s),
// none of it answered over the link. Healed, node 0's listings use node
// 2's link again.
func TestClusterDirectRetryAfterHeal(t *testing.T) {
	parallel(t)
	cfgs, nw := proxiedConfigs(t, 3)
	for i := range cfgs {
		cfgs[i].RequestTimeoutMillis = 1000 // the held connection's listing fails sooner
	}
	hubs := startHubs(t, cfgs)
	a, c := hubs[0], hubs[2]
	var want []string
	for _, h := range hubs {
		want = append(want, registerMembers(t, h, "g", 5)...)
	}
	slices.Sort(want)
	list := func() error {
		got, _, err := a.Members(context.Background(), "g", hub.Page{Limit: 100})
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listing: %d ids, want %d", len(got), len(want))
		}
		return nil
	}
	viaLink := func() {
		t.Helper()
		served := c.DirectServed()
		testenv.Eventually(t, 60*time.Second, func() error {
			if err := list(); err != nil {
				return err
			}
			if c.DirectServed() == served {
				return errors.New("node 2 answered no listing over its link yet")
			}
			return nil
		})
	}
	viaLink()

	p := nw.query[0][2]
	p.blackhole()
	cut := time.Now()
	served, failed := c.DirectServed(), a.DirectDialsFailed()
	unavailable := 0
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := list(); errors.Is(err, hub.ErrUnavailable) {
			unavailable++ // the connection held by the blackhole, at the budget
		} else if err != nil {
			t.Fatal(err)
		}
		if n := a.DirectDialsFailed() - failed; n < 2 {
			return fmt.Errorf("%d dials to node 2 failed, want 2", n)
		}
		return nil
	})
	if n := c.DirectServed(); n != served {
		t.Fatalf("node 2 answered %d queries over a blackholed link", n-served)
	}
	p.heal()
	healed := time.Now()
	viaLink()
	t.Logf("%d listings failed at the budget; %d dials failed in %v; node 2's link answered again %v after the heal",
		unavailable, a.DirectDialsFailed()-failed, healed.Sub(cut).Round(time.Millisecond), time.Since(healed).Round(time.Millisecond))
}

// TestClusterDirectServedBound: a node serves at most 256 authenticated
// connections; a first frame past them is answered refused and counted
// ("served"), and the connections already served, node 0's among them,
// go on answering.
func TestClusterDirectServedBound(t *testing.T) {
	parallel(t)
	cfgs := embeddedConfigs(t, 2)
	hubs := startHubs(t, patient(cfgs))
	want := registerMembers(t, hubs[1], "g", 5)
	slices.Sort(want)
	b := hubs[1]
	viaLink := func() {
		t.Helper()
		served := b.DirectServed()
		testenv.Eventually(t, 60*time.Second, func() error {
			got, _, err := hubs[0].Members(context.Background(), "g", hub.Page{Limit: 100})
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				t.Fatalf("listing: %d ids, want %d", len(got), len(want))
			}
			if b.DirectServed() == served {
				return errors.New("node 1 answered no listing over its link yet")
			}
			return nil
		})
	}
	viaLink()
	hello := cluster.DirectFrame("wsgate-q1", cfgs[1].Name, hub.NodeHex(b.Self()), b.Incarnation(), "", "")
	refused := 0
	for i := 0; refused == 0; i++ {
		if i > 300 {
			t.Fatal("300 authenticated connections served: no bound")
		}
		c, err := net.Dial("tcp", b.DirectAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		var ans [5]byte
		if _, err := io.ReadFull(c, ans[:]); err != nil {
			t.Fatal(err)
		}
		if ans[4] != 0 {
			refused++
			if i < 256-8 { // node 0 holds at most 8 of the 256
				t.Fatalf("refused after %d connections", i)
			}
		}
	}
	if n := b.DirectClosed()["served"]; n != 1 {
		t.Fatalf("served bound closes counted: %d, want 1", n)
	}
	viaLink()
}
