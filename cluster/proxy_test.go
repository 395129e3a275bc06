package cluster_test

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/cluster"
)

// proxy forwards TCP connections to target(), the address of the moment
// (a node's route port, taken at its start; "": refused). Blackholed, it forwards
// nothing in either direction and closes nothing: bytes are read and
// dropped, as on a network that loses every packet, and connections
// accepted meanwhile are held unanswered. heal closes every connection
// that lived through the blackhole (the peers' TCP would have given up on
// it) and forwards again.
type proxy struct {
	ln     net.Listener
	target func() string

	mu    sync.Mutex
	holed bool
	conns map[net.Conn]struct{}

	// Paused, it holds what it reads, per destination, and resume writes
	// it on in order: a route that is slow, not lost.
	wmu    sync.Mutex
	paused bool
	held   map[net.Conn][]byte
}

func newProxy(t testing.TB, target func() string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *proxy) handle(c net.Conn) {
	if !p.track(c) {
		return
	}
	if p.blackholed() {
		p.drop(c)
		return
	}
	to := p.target()
	for wait := time.Now(); to == "" && time.Since(wait) < 10*time.Second; to = p.target() {
		// The node is starting: hold the connection until its route
		// port is known, as a port whose listener is still opening.
		time.Sleep(10 * time.Millisecond)
	}
	if to == "" {
		p.untrack(c)
		return
	}
	d, err := net.Dial("tcp", to)
	if err != nil {
		p.untrack(c)
		return
	}
	if !p.track(d) {
		p.untrack(c)
		return
	}
	go p.pipe(c, d)
	p.pipe(d, c)
}

// pipe copies src to dst while not blackholed, drops what it reads while
// blackholed, and passes a close on only while not blackholed.
func (p *proxy) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.blackholed() {
			if werr := p.forward(dst, buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if !p.blackholed() {
				p.untrack(src)
				p.untrack(dst)
			}
			return
		}
	}
}

// forward writes b to dst, or holds it while the proxy is paused.
func (p *proxy) forward(dst net.Conn, b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.paused {
		if p.held == nil {
			p.held = map[net.Conn][]byte{}
		}
		p.held[dst] = append(p.held[dst], b...)
		return nil
	}
	_, err := dst.Write(b)
	return err
}

func (p *proxy) pause() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.paused = true
}

// resume writes on what was held, each destination's bytes in order, and
// forwards again.
func (p *proxy) resume() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.paused = false
	for dst, b := range p.held {
		_, _ = dst.Write(b)
	}
	p.held = nil
}

// holds reports whether the bytes held contain s.
func (p *proxy) holds(s string) bool {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	for _, b := range p.held {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// drop reads and discards c until it closes (or heal closes it).
func (p *proxy) drop(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Close()
	delete(p.conns, c)
}

func (p *proxy) blackholed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holed
}

func (p *proxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holed = true
}

func (p *proxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holed = false
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// network is the links of an embedded cluster, one proxy per ordered
// pair of nodes: links[i][j] carries the routes node i dials to node j,
// query[i][j] the direct query connections node i opens to node j (its
// advertised address is dialed through it). What cuts, mends, pauses or
// resumes the routes between two nodes does the same to their direct
// link: a partition stops both.
type network struct{ links, query [][]*proxy }

// cut blackholes every link to and from node k: its host is lost
// (or on the minority side of a partition) while its own NATS server,
// its clients and its HTTP listener stay up.
func (n *network) cut(k int) { n.each(k, (*proxy).blackhole) }

// mend heals node k's links; the NATS servers reconnect their routes and
// the nodes open their direct links again.
func (n *network) mend(k int) { n.each(k, (*proxy).heal) }

// between calls f on the links between nodes i and j, both ways.
func (n *network) between(i, j int, f func(*proxy)) {
	for _, m := range [][][]*proxy{n.links, n.query} {
		f(m[i][j])
		f(m[j][i])
	}
}

func (n *network) each(k int, f func(*proxy)) {
	for _, m := range [][][]*proxy{n.links, n.query} {
		for i, row := range m {
			for j, p := range row {
				if p != nil && (i == k || j == k) {
					f(p)
				}
			}
		}
	}
}

// closedPorts are n loopback ports held for the test by listeners that
// close every connection they accept: a route dialed there fails, as to a
// closed port. Ports found free and then closed (freePorts) were handed
// out again by the kernel (an embedded server's client port took one, and
// a route learned by gossip reached it: "Client parser ERROR" on "RS+"
// in TestClusterHostLoss's log), so an advertised address could lead
// somewhere that answers, and around the proxies.
func closedPorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// proxiedConfigs are embeddedConfigs whose routes pass through a network
// of proxies. Each server takes its route port with port 0 (the proxies
// forward to the port it took, routeAddr, also after a restart: no port
// is let go before a server binds it) and advertises a closed port, so a
// route learned by gossip (which would bypass the proxies) is refused and
// only the configured, proxied routes exist.
func proxiedConfigs(t testing.TB, n int) ([]cluster.Config, *network) {
	cfgs := embeddedConfigs(t, n)
	closed := closedPorts(t, n)
	nw := &network{links: make([][]*proxy, n), query: make([][]*proxy, n)}
	to := func(j int) func() string { return func() string { return routeAddr(&cfgs[j]) } }
	toQuery := func(j int) func() string { return func() string { return queryAddr(&cfgs[j]) } }
	for i := range n {
		nw.links[i] = make([]*proxy, n)
		nw.query[i] = make([]*proxy, n)
		for j := range n {
			if i != j {
				nw.links[i][j] = newProxy(t, to(j))
				nw.query[i][j] = newProxy(t, toQuery(j))
			}
		}
	}
	// Node i dials node j's advertised query address through query[i][j]
	// (an address of no node of the cluster, such as one a restarted node
	// left, as advertised).
	name := cfgs[0].Name
	queryVia.Store(name, func(node, addr string) string {
		i := slices.IndexFunc(cfgs, func(c cluster.Config) bool { return c.Node.Name == node })
		for j := range cfgs {
			if i >= 0 && j != i && addr == queryAddr(&cfgs[j]) {
				return nw.query[i][j].addr()
			}
		}
		return addr
	})
	t.Cleanup(func() { queryVia.Delete(name) })
	for i := range cfgs {
		e := cfgs[i].NATS.Embedded
		e.ClusterListen = "127.0.0.1:0"
		e.Advertise = fmt.Sprintf("127.0.0.1:%d", closed[i])
		// Its own route, through a proxy of its own (outside the
		// network): ignored by NATS (a route to itself), counted for
		// replicas.
		e.Routes = []string{"nats://" + newProxy(t, to(i)).addr()}
		for j, p := range nw.links[i] {
			if j != i {
				e.Routes = append(e.Routes, "nats://"+p.addr())
			}
		}
	}
	return cfgs, nw
}
