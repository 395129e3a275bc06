package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsgate/wsgate/internal/sigwire"
	"github.com/wsgate/wsgate/sigv4"
)

// command is one instruction from the orchestrator to a worker.
type command struct {
	Op string `json:"op"` // dial, join, collect, post-sign, post, publish, joinleave, echo, soak-start, soak-run, soak-tally, soak-stop

	Addr string `json:"addr,omitempty"` // server host:port
	// Addrs are a cluster's nodes: connection Base+i dials node
	// (Base+i) mod len(Addrs), and management calls pick their entry node
	// (Entry) from them. Empty: Addr.
	Addrs []string `json:"addrs,omitempty"`
	Base  int      `json:"base,omitempty"`
	Path  string   `json:"path,omitempty"` // WebSocket path, e.g. /dev
	Src   []string `json:"src,omitempty"`  // source addresses, used round-robin

	// dial
	N    int    `json:"n,omitempty"`
	Conc int    `json:"conc,omitempty"`
	Join string `json:"join,omitempty"` // group to join after connecting
	// JoinEvery > 0 makes the group Join-k with k = (Base+i)/JoinEvery:
	// every JoinEvery consecutive connections share one group.
	JoinEvery int  `json:"joinEvery,omitempty"`
	Whoami    bool `json:"whoami,omitempty"` // learn each connection's id
	Read      bool `json:"read,omitempty"`   // start a reader per connection
	Slow      int  `json:"slow,omitempty"`   // this many connections never read

	// collect
	Expect  int64   `json:"expect,omitempty"`
	Timeout float64 `json:"timeout,omitempty"` // seconds
	Samples bool    `json:"samples,omitempty"`

	// post, publish, joinleave and echo
	Entry    string  `json:"entry,omitempty"`    // post, joinleave: "other" sends to a node that does not own the connection
	Groups   int     `json:"groups,omitempty"`   // publish: to groups Join-0 … Join-(Groups-1), round-robin
	Pad      int     `json:"pad,omitempty"`      // publish: payload padding
	Batch    int     `json:"batch,omitempty"`    // publish: > 0 sends this many messages per call (POST @groups), groups in turn
	Rate     float64 `json:"rate,omitempty"`     // per second for this worker; 0: closed loop
	Duration float64 `json:"duration,omitempty"` // seconds
	Max      int     `json:"max,omitempty"`      // bound on requests/messages
	Key      string  `json:"key,omitempty"`
	Secret   string  `json:"secret,omitempty"`
	Region   string  `json:"region,omitempty"`
	Stage    string  `json:"stage,omitempty"`
	Lead     float64 `json:"lead,omitempty"` // post-sign: seconds from now to the window's start
	// Warm, for post-sign and the lean post: seconds of POSTs at Rate
	// before the measured window (Duration), on the same schedule; their
	// samples are reported apart (reply.Warm).
	Warm float64 `json:"warm,omitempty"`
	// post at a rate: the lean client (postloop_linux.go) on connections
	// dialed without readers, instead of a goroutine per request and reader.
	Lean bool `json:"lean,omitempty"`
	// post, post-sign: each POST carries its own signed
	// Amz-Sdk-Invocation-Id (Options.PostInvocationID).
	InvocationID bool `json:"invocationId,omitempty"`

	// soak-start
	Soak *soakPlan `json:"soak,omitempty"`
}

// pubStat is what one timestamp's deliveries looked like at a worker.
type pubStat struct {
	Count int64 `json:"count"`
	Last  int64 `json:"last"` // wall-clock ns of the last delivery
}

type reply struct {
	Err     string  `json:"err,omitempty"`
	Elapsed int64   `json:"elapsed,omitempty"` // ns
	OK      int64   `json:"ok,omitempty"`
	Errors  int64   `json:"errors,omitempty"`
	FirstEr string  `json:"firstErr,omitempty"`
	Count   int64   `json:"count,omitempty"`
	Lat     []int64 `json:"lat,omitempty"` // ns
	// Queued: how long after its scheduled time each POST was sent
	// (post with Samples), ns.
	Queued []int64           `json:"queued,omitempty"`
	Pubs   map[int64]pubStat `json:"pubs,omitempty"`
	Ended  int64             `json:"ended,omitempty"` // readers that stopped
	EndErr string            `json:"endErr,omitempty"`
	Soak   *soakCounts       `json:"soak,omitempty"`
	Start  int64             `json:"start,omitempty"` // post-sign: the window's start, unix ns
	// Lean post: POST→frame from each POST's scheduled time (Frames) and
	// from its write (FromSend), ns; Count is the frames received.
	// AtSocket: from the scheduled time to the kernel's receive timestamp
	// of the frame at the client's socket; ReadDelay: from that timestamp
	// to the client's read.
	Frames    []int64 `json:"frames,omitempty"`
	FromSend  []int64 `json:"fromSend,omitempty"`
	AtSocket  []int64 `json:"atSocket,omitempty"`
	ReadDelay []int64 `json:"readDelay,omitempty"`
	// Lean post: HTTP connections dialed, and POSTs in flight at most.
	Dials    int64 `json:"dials,omitempty"`
	InFlight int64 `json:"inFlight,omitempty"`
	Realtime bool  `json:"realtime,omitempty"` // lean post: the thread ran SCHED_FIFO
	// Lean post: how late the thread woke from each wait that timed out, ns.
	WakeLate []int64 `json:"wakeLate,omitempty"`
	// Lean post: the window's POSTs whose frame came over slowFrame after
	// their scheduled time: that time in ns since the window's start, and
	// the delay, ns (at most maxSlow of them): where in the window the
	// tail was.
	Slow [][3]int64 `json:"slow,omitempty"`
	// Lean post: the window's start (unix ns) and when each connection
	// dialed for the window's POSTs came into the loop (ns since that
	// start).
	WindowStart int64   `json:"windowStart,omitempty"`
	DialAt      []int64 `json:"dialAt,omitempty"`
	// Lean post with a warm-up (command.Warm): the warm-up's POSTs'
	// samples, kept out of the fields above, which are the window's.
	Warm *warmSamples `json:"warm,omitempty"`
}

// warmSamples are the lean client's figures of a warm-up: POST→frame
// from the scheduled time (Frames) and from the write (FromSend), sent
// after schedule (Queued), answered (Lat), ns; the HTTP connections
// dialed for it (Dials, the ones dialed before it included) and the
// POSTs in flight at most (InFlight).
type warmSamples struct {
	Frames   []int64 `json:"frames,omitempty"`
	FromSend []int64 `json:"fromSend,omitempty"`
	Queued   []int64 `json:"queued,omitempty"`
	Lat      []int64 `json:"lat,omitempty"`
	Dials    int64   `json:"dials,omitempty"`
	InFlight int64   `json:"inFlight,omitempty"`
}

type clientConn struct {
	nc   net.Conn
	br   *bufio.Reader
	id   string
	slow bool
	node int // index in the dial command's Addrs
}

// worker holds client connections and what their readers received.
type worker struct {
	conns []*clientConn

	mu     sync.Mutex
	ended  int64  // readers that stopped
	endErr string // why the first one stopped
	count  int64
	want   int64         // what the armed collect waits for
	reach  chan struct{} // closed when count reaches want; nil when not armed
	lat    []int64
	pubs   map[int64]pubStat

	soak *soaker   // between soak-start and soak-stop
	plan *postPlan // between post-sign and post
}

func workerRole() error {
	w := &worker{pubs: map[int64]pubStat{}}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var c command
		var r reply
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			r.Err = err.Error()
		} else {
			r = w.do(c)
		}
		printJSON(r)
	}
	return nil
}

func (w *worker) do(c command) reply {
	switch c.Op {
	case "dial":
		return w.dial(c)
	case "join":
		return w.join(c)
	case "arm":
		w.arm(c.Expect)
		return reply{}
	case "collect":
		return w.collect(c)
	case "post-sign":
		return w.postSign(c)
	case "post":
		return w.post(c)
	case "publish":
		return w.publish(c)
	case "joinleave":
		return w.joinLeave(c)
	case "echo":
		return w.echo(c)
	case "soak-start":
		return w.soakStart(c)
	case "soak-run":
		return w.soakRun()
	case "soak-tally":
		if w.soak == nil {
			return reply{Err: "soak-tally before soak-start"}
		}
		n := w.soak.counts()
		return reply{Soak: &n}
	case "soak-stop":
		return w.soakStop()
	}
	return reply{Err: "unknown op " + c.Op}
}

func srcDialer(src string) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return d
}

// dial opens c.N connections, c.Conc at a time.
func (w *worker) dial(c command) reply {
	conns := make([]*clientConn, c.N)
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	conc := max(c.Conc, 1)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= c.N {
					return
				}
				cc, err := dialOne(c, i, c.Src[i%len(c.Src)])
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = cc
			}
		})
	}
	wg.Wait()
	r := reply{Elapsed: int64(time.Since(start)), Errors: errs.Load()}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstEr = e
	}
	for i, cc := range conns {
		if cc == nil {
			continue
		}
		cc.slow = i >= c.N-c.Slow
		w.conns = append(w.conns, cc)
		r.OK++
		if c.Read && !cc.slow {
			go w.readLoop(cc)
		}
	}
	return r
}

// node returns the index in c.Addrs of connection i's node and its address.
func (c command) node(i int) (int, string) {
	if len(c.Addrs) == 0 {
		return 0, c.Addr
	}
	k := (c.Base + i) % len(c.Addrs)
	return k, c.Addrs[k]
}

// group returns the group connection i joins ("" for none).
func (c command) group(i int) string {
	if c.JoinEvery > 0 {
		return c.Join + "-" + strconv.Itoa((c.Base+i)/c.JoinEvery)
	}
	return c.Join
}

func dialOne(c command, i int, src string) (*clientConn, error) {
	nd := srcDialer(src)
	node, addr := c.node(i)
	d := ws.Dialer{
		Timeout: 10 * time.Second,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nd.DialContext(ctx, network, addr)
		},
	}
	nc, br, _, err := d.Dial(context.Background(), "ws://"+addr+c.Path)
	if err != nil {
		return nil, err
	}
	cc := &clientConn{nc: nc, br: br, node: node}
	if cc.br == nil {
		cc.br = bufio.NewReaderSize(nc, 2048)
	}
	if g := c.group(i); g != "" {
		if err := joinGroup(cc, g); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if c.Whoami {
		if err := wsutil.WriteClientText(nc, []byte(`{"action":"whoami"}`)); err != nil {
			nc.Close()
			return nil, err
		}
		id, err := readText(cc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("whoami: %w", err)
		}
		cc.id = string(id)
	}
	return cc, nil
}

// joinGroup joins g through the join route and waits for its answer.
func joinGroup(cc *clientConn, g string) error {
	if err := wsutil.WriteClientText(cc.nc, []byte(`{"action":"join","group":"`+g+`"}`)); err != nil {
		return err
	}
	if _, err := readText(cc); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	return nil
}

// join has every connection (dialed without readers) join its group,
// c.Conc at a time; connection i of this worker joins c.group(i).
func (w *worker) join(c command) reply {
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range max(c.Conc, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(w.conns) {
					return
				}
				if err := joinGroup(w.conns[i], c.group(i)); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	r := reply{Elapsed: int64(time.Since(start)), OK: int64(len(w.conns)) - errs.Load(), Errors: errs.Load()}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstEr = e
	}
	return r
}

// readText reads one data frame (server frames are not masked).
func readText(cc *clientConn) ([]byte, error) {
	_ = cc.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer cc.nc.SetReadDeadline(time.Time{})
	for {
		h, err := ws.ReadHeader(cc.br)
		if err != nil {
			return nil, err
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(cc.br, p); err != nil {
			return nil, err
		}
		switch h.OpCode {
		case ws.OpClose:
			return nil, errors.New("server closed the connection")
		case ws.OpText, ws.OpBinary:
			return p, nil
		}
	}
}

// readLoop records every frame a connection receives.
func (w *worker) readLoop(cc *clientConn) {
	buf := make([]byte, 0, 512)
	var err error
	defer func() {
		w.mu.Lock()
		w.ended++
		if w.endErr == "" {
			w.endErr = err.Error()
		}
		w.mu.Unlock()
	}()
	for {
		var h ws.Header
		h, err = ws.ReadHeader(cc.br)
		if err != nil {
			return
		}
		if h.Length > 1<<20 || h.Masked || h.Rsv != 0 {
			err = fmt.Errorf("bad frame header %+v", h)
			return
		}
		if int64(cap(buf)) < h.Length {
			buf = make([]byte, h.Length)
		}
		p := buf[:h.Length]
		if _, err = io.ReadFull(cc.br, p); err != nil {
			return
		}
		if h.OpCode == ws.OpClose {
			err = fmt.Errorf("close frame %q", p)
			return
		}
		now := time.Now().UnixNano()
		t := parseT(p)
		w.mu.Lock()
		w.count++
		if w.reach != nil && w.count >= w.want {
			close(w.reach)
			w.reach = nil
		}
		if t > 0 {
			w.lat = append(w.lat, now-t)
			ps := w.pubs[t]
			ps.Count++
			ps.Last = max(ps.Last, now)
			w.pubs[t] = ps
		}
		w.mu.Unlock()
	}
}

// arm has the readers signal when they have received expect frames in
// all, so collect waits without polling: the bench arms before the window
// it measures opens, and nothing of its own then runs in the client
// processes until the last frame (a 2 ms poll did, but only in the windows
// of servers that answer a publish before writing it: wsgate's).
// It returns the channel closed then, or nil when they already have.
func (w *worker) arm(expect int64) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reach != nil && w.want == expect {
		return w.reach
	}
	if w.count >= expect {
		w.reach = nil
		return nil
	}
	w.want, w.reach = expect, make(chan struct{})
	return w.reach
}

// collect waits until the readers have received c.Expect frames in all
// (or c.Timeout passes), then returns and clears what they recorded.
func (w *worker) collect(c command) reply {
	if reach := w.arm(c.Expect); reach != nil {
		t := time.NewTimer(time.Duration(c.Timeout * float64(time.Second)))
		select {
		case <-reach:
		case <-t.C:
		}
		t.Stop()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := reply{Count: w.count, Pubs: w.pubs, Ended: w.ended, EndErr: w.endErr}
	if c.Samples {
		r.Lat = w.lat
	}
	w.count, w.lat, w.pubs = 0, nil, map[int64]pubStat{}
	w.reach = nil
	return r
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// call is one management API request.
type call struct {
	method, url string
	body        []byte
}

// signedLoad sends the calls calls(i, t) returns, in order, signed when
// sent (sigv4.Sign), as a closed loop with c.Conc clients or an open loop
// at c.Rate (runLoad). An i counts as OK when every call answered 2xx. With
// c.Samples each call's latency is recorded: the first's from t (its
// scheduled time, so client queueing counts), the others' from their send.
func (w *worker) signedLoad(c command, calls func(i int, t int64) []call) reply {
	nd := srcDialer(c.Src[0])
	tr := &http.Transport{
		DialContext:         nd.DialContext,
		MaxIdleConnsPerHost: c.Conc,
		MaxConnsPerHost:     c.Conc,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	creds := sigv4.Credentials{AccessKeyID: c.Key, SecretAccessKey: c.Secret}

	var ok, errs atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	var lat []int64
	fail := func(err string) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	send := func(k call) bool {
		req, _ := http.NewRequest(k.method, k.url, bytes.NewReader(k.body))
		if err := sigv4.Sign(req, creds, "execute-api", c.Region, time.Now(), sha256Hex(k.body)); err != nil {
			fail(err.Error())
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			fail(err.Error())
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			fail(k.method + " " + resp.Status)
			return false
		}
		return true
	}
	one := func(i int, t int64) {
		from := t
		for _, k := range calls(i, t) {
			if !send(k) {
				return
			}
			if c.Samples {
				now := time.Now().UnixNano()
				mu.Lock()
				lat = append(lat, now-from)
				mu.Unlock()
				from = now
			}
		}
		ok.Add(1)
	}
	r := runLoad(c, time.Now(), one)
	r.OK, r.Errors, r.Lat = ok.Load(), errs.Load(), lat
	if e, ok := firstErr.Load().(string); ok {
		r.FirstEr = e
	}
	return r
}

// targets are this worker's connections with ids, each with the address
// of the node a management call on it enters: its own node, or with
// c.Entry "other" the next node of c.Addrs.
func (w *worker) targets(c command) (ids, entries []string) {
	for _, cc := range w.conns {
		if cc.id == "" {
			continue
		}
		ids = append(ids, url.PathEscape(cc.id))
		switch {
		case len(c.Addrs) == 0:
			entries = append(entries, c.Addr)
		case c.Entry == "other":
			entries = append(entries, c.Addrs[(cc.node+1)%len(c.Addrs)])
		default:
			entries = append(entries, c.Addrs[cc.node])
		}
	}
	return ids, entries
}

// joinLeave adds one of this worker's connections to group c.Join and
// removes it again (PUT then DELETE @groups/{g}/@connections/{id}); an
// operation is the pair. The client is the POST generator's (postgen.go):
// each connection's PUT and DELETE are signed once, before the load (the
// signature stays valid for minutes), and each call is one write(2) and a
// read of its answer on a keep-alive connection, with no net/http client
// in between (its connection goroutines wake twice more per call, which
// at a fixed rate counted in the latency measured). With c.Samples each
// pair's first call records how long after its scheduled time it was
// sent (Queued), and each call its latency (Lat: the first from the
// scheduled time, the second from the first's answer) and its time from
// its own send (FromSend).
func (w *worker) joinLeave(c command) reply {
	ids, entries := w.targets(c)
	if len(ids) == 0 {
		return reply{Err: "no connection ids (dial with whoami)"}
	}
	creds := sigv4.Credentials{AccessKeyID: c.Key, SecretAccessKey: c.Secret}
	wires := make([][2][]byte, len(ids))
	now := time.Now()
	for k := range ids {
		u := "http://" + entries[k] + "/" + c.Stage + "/@groups/" + c.Join + "/@connections/" + ids[k]
		for j, m := range [2]string{http.MethodPut, http.MethodDelete} {
			wire, err := sigwire.Request(m, u, nil, creds, c.Region, now)
			if err != nil {
				return reply{Err: err.Error()}
			}
			wires[k][j] = wire
		}
	}
	pools := entryPools(c.Src[0], entries)
	defer closePools(pools)
	if c.Rate > 0 {
		// A few keep-alive connections per entry node before the window:
		// a call that dials pays a connect and the server's accept, in
		// its latency (about 1 % of the calls at 1,000/s otherwise).
		for _, p := range pools {
			for range 4 {
				nc, err := p.dial()
				if err != nil {
					return reply{Err: err.Error()}
				}
				p.put(&httpConn{dial: p.dial, nc: nc, br: bufio.NewReaderSize(nc, 4096)})
			}
		}
	}
	var ok, errs atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	var lat, queued, fromSend []int64
	one := func(i int, t int64) {
		k := i % len(ids)
		pool, from := pools[entries[k]], t
		for j, wire := range wires[k] {
			sent := time.Now().UnixNano()
			if c.Samples && j == 0 {
				mu.Lock()
				queued = append(queued, sent-t)
				mu.Unlock()
			}
			h := pool.get()
			status, err := h.roundTrip(wire)
			pool.put(h)
			if err == nil && status/100 != 2 {
				err = fmt.Errorf("%s %d", [2]string{http.MethodPut, http.MethodDelete}[j], status)
			}
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			if c.Samples {
				now := time.Now().UnixNano()
				mu.Lock()
				lat, fromSend = append(lat, now-from), append(fromSend, now-sent)
				mu.Unlock()
				from = now
			}
		}
		ok.Add(1)
	}
	r := runLoad(c, time.Now(), one)
	r.OK, r.Errors, r.Lat, r.Queued, r.FromSend = ok.Load(), errs.Load(), lat, queued, fromSend
	if e, ok := firstErr.Load().(string); ok {
		r.FirstEr = e
	}
	return r
}

// publish sends stamped group publishes to groups Join-0 … Join-(Groups-1)
// in turn, entering at the nodes of c.Addrs in turn.
func (w *worker) publish(c command) reply {
	addrs := c.Addrs
	if len(addrs) == 0 {
		addrs = []string{c.Addr}
	}
	groups := max(c.Groups, 1)
	return w.signedLoad(c, func(i int, t int64) []call {
		if c.Batch > 0 {
			// One call: message k to group (i·Batch + k) mod Groups.
			u := "http://" + addrs[i%len(addrs)] + "/" + c.Stage + "/@groups"
			b := []byte(`{"messages":[`)
			for k := range c.Batch {
				if k > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"group":"`...)
				b = append(b, c.Join+"-"+strconv.Itoa((i*c.Batch+k)%groups)...)
				b = append(b, `","data":`...)
				b = strconv.AppendQuote(b, string(stampedBody(t, c.Pad)))
				b = append(b, '}')
			}
			return []call{{http.MethodPost, u, append(b, "]}"...)}}
		}
		u := "http://" + addrs[i%len(addrs)] + "/" + c.Stage + "/@groups/" + c.Join + "-" + strconv.Itoa(i%groups)
		return []call{{http.MethodPost, u, stampedBody(t, c.Pad)}}
	})
}

// runLoad calls one(i, t) up to c.Max times within c.Duration from start
// (now or later): closed loop from c.Conc goroutines when c.Rate is 0, else
// open loop at c.Rate with t the scheduled send time, start+i/c.Rate (so
// queueing in the client counts as latency).
func runLoad(c command, start time.Time, one func(i int, t int64)) reply {
	dur := time.Duration(c.Duration * float64(time.Second))
	deadline := start.Add(dur)
	var n atomic.Int64
	var wg sync.WaitGroup
	if c.Rate <= 0 {
		for range max(c.Conc, 1) {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					i := n.Add(1) - 1
					if i >= int64(c.Max) {
						return
					}
					one(int(i), time.Now().UnixNano())
				}
			})
		}
		wg.Wait()
		return reply{Elapsed: int64(time.Since(start))}
	}
	// Open loop: the goroutine that sends call i is the one that slept
	// until its time, holding the turn (mu) meanwhile, so one thread
	// sleeps at a time and no hand-off (a channel to a worker goroutine,
	// which a spinning thread had to steal from the sleeper's processor)
	// lies between the wake-up and the send.
	total := min(int(c.Rate*dur.Seconds()), c.Max)
	interval := time.Duration(float64(time.Second) / c.Rate)
	var mu sync.Mutex
	next := 0
	for range max(c.Conc, 1) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				if i >= total {
					mu.Unlock()
					return
				}
				next++
				at := start.Add(time.Duration(i) * interval)
				sleepUntil(at)
				if time.Now().After(deadline.Add(5 * time.Second)) {
					next = total
					mu.Unlock()
					return
				}
				mu.Unlock()
				one(i, at.UnixNano())
			}
		})
	}
	wg.Wait()
	return reply{Elapsed: int64(time.Since(start))}
}

// echo sends {"t":..,"action":"echo"} on every connection and waits for
// the two-way route's answer before the next (one in flight per
// connection); at c.Rate (per second, all connections together) the sends
// are paced. Latency is measured here, send to answer.
func (w *worker) echo(c command) reply {
	dur := time.Duration(c.Duration * float64(time.Second))
	start := time.Now()
	deadline := start.Add(dur)
	var (
		mu       sync.Mutex
		lat      []int64
		ok, errs atomic.Int64
		sent     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	var interval time.Duration
	if c.Rate > 0 {
		interval = time.Duration(float64(len(w.conns)) / c.Rate * float64(time.Second))
	}
	for k, cc := range w.conns {
		wg.Go(func() {
			next := start.Add(interval * time.Duration(k) / time.Duration(len(w.conns)))
			local := make([]int64, 0, 1024)
			defer func() { mu.Lock(); lat = append(lat, local...); mu.Unlock() }()
			_ = cc.nc.SetDeadline(deadline.Add(10 * time.Second))
			for {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					next = next.Add(interval)
				}
				if time.Now().After(deadline) || sent.Add(1) > int64(c.Max) {
					return
				}
				t := time.Now().UnixNano()
				msg := strconv.AppendInt([]byte(`{"t":`), t, 10)
				msg = append(msg, `,"action":"echo"}`...)
				if err := wsutil.WriteClientText(cc.nc, msg); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				p, err := readText(cc)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				if parseT(p) != t {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, "unexpected answer "+string(p))
					continue
				}
				local = append(local, time.Now().UnixNano()-t)
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	r := reply{Elapsed: int64(time.Since(start)), OK: ok.Load(), Errors: errs.Load(), Lat: lat}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstEr = e
	}
	return r
}
