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

	"github.com/wsgate/wsgate/sigv4"
)

// command is one instruction from the orchestrator to a worker.
type command struct {
	Op string `json:"op"` // dial, collect, post, echo, soak-start, soak-run, soak-tally, soak-stop

	Addr string   `json:"addr,omitempty"` // server host:port
	Path string   `json:"path,omitempty"` // WebSocket path, e.g. /dev
	Src  []string `json:"src,omitempty"`  // source addresses, used round-robin

	// dial
	N      int    `json:"n,omitempty"`
	Conc   int    `json:"conc,omitempty"`
	Join   string `json:"join,omitempty"`   // group to join after connecting
	Whoami bool   `json:"whoami,omitempty"` // learn each connection's id
	Read   bool   `json:"read,omitempty"`   // start a reader per connection
	Slow   int    `json:"slow,omitempty"`   // this many connections never read

	// collect
	Expect  int64   `json:"expect,omitempty"`
	Timeout float64 `json:"timeout,omitempty"` // seconds
	Samples bool    `json:"samples,omitempty"`

	// post and echo
	Rate     float64 `json:"rate,omitempty"`     // per second for this worker; 0: closed loop
	Duration float64 `json:"duration,omitempty"` // seconds
	Max      int     `json:"max,omitempty"`      // bound on requests/messages
	Key      string  `json:"key,omitempty"`
	Secret   string  `json:"secret,omitempty"`
	Region   string  `json:"region,omitempty"`
	Stage    string  `json:"stage,omitempty"`

	// soak-start
	Soak *soakPlan `json:"soak,omitempty"`
}

// pubStat is what one timestamp's deliveries looked like at a worker.
type pubStat struct {
	Count int64 `json:"count"`
	Last  int64 `json:"last"` // wall-clock ns of the last delivery
}

type reply struct {
	Err     string            `json:"err,omitempty"`
	Elapsed int64             `json:"elapsed,omitempty"` // ns
	OK      int64             `json:"ok,omitempty"`
	Errors  int64             `json:"errors,omitempty"`
	FirstEr string            `json:"firstErr,omitempty"`
	Count   int64             `json:"count,omitempty"`
	Lat     []int64           `json:"lat,omitempty"` // ns
	Pubs    map[int64]pubStat `json:"pubs,omitempty"`
	Ended   int64             `json:"ended,omitempty"` // readers that stopped
	EndErr  string            `json:"endErr,omitempty"`
	Soak    *soakCounts       `json:"soak,omitempty"`
}

type clientConn struct {
	nc   net.Conn
	br   *bufio.Reader
	id   string
	slow bool
}

// worker holds client connections and what their readers received.
type worker struct {
	conns []*clientConn

	mu     sync.Mutex
	ended  int64  // readers that stopped
	endErr string // why the first one stopped
	count  int64
	lat    []int64
	pubs   map[int64]pubStat

	soak *soaker // between soak-start and soak-stop
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
	case "collect":
		return w.collect(c)
	case "post":
		return w.post(c)
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
				cc, err := dialOne(c, c.Src[i%len(c.Src)])
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

func dialOne(c command, src string) (*clientConn, error) {
	nd := srcDialer(src)
	d := ws.Dialer{
		Timeout: 10 * time.Second,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nd.DialContext(ctx, network, addr)
		},
	}
	nc, br, _, err := d.Dial(context.Background(), "ws://"+c.Addr+c.Path)
	if err != nil {
		return nil, err
	}
	cc := &clientConn{nc: nc, br: br}
	if cc.br == nil {
		cc.br = bufio.NewReaderSize(nc, 2048)
	}
	if c.Join != "" {
		if err := wsutil.WriteClientText(nc, []byte(`{"action":"join","group":"`+c.Join+`"}`)); err != nil {
			nc.Close()
			return nil, err
		}
		if _, err := readText(cc); err != nil {
			nc.Close()
			return nil, fmt.Errorf("join: %w", err)
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

// collect waits until the readers have received c.Expect frames in all
// (or c.Timeout passes), then returns and clears what they recorded.
func (w *worker) collect(c command) reply {
	deadline := time.Now().Add(time.Duration(c.Timeout * float64(time.Second)))
	for {
		w.mu.Lock()
		n := w.count
		w.mu.Unlock()
		if n >= c.Expect || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := reply{Count: w.count, Pubs: w.pubs, Ended: w.ended, EndErr: w.endErr}
	if c.Samples {
		r.Lat = w.lat
	}
	w.count, w.lat, w.pubs = 0, nil, map[int64]pubStat{}
	return r
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// post sends signed @connections POSTs to this worker's own connections:
// closed loop with c.Conc clients, or open loop at c.Rate per second. Every
// request is signed when sent (sigv4.Sign), carrying {"t":<send time>}.
func (w *worker) post(c command) reply {
	var ids []string
	for _, cc := range w.conns {
		if cc.id != "" {
			ids = append(ids, cc.id)
		}
	}
	if len(ids) == 0 {
		return reply{Err: "no connection ids (dial with whoami)"}
	}
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
	base := "http://" + c.Addr + "/" + c.Stage + "/@connections/"

	var ok, errs atomic.Int64
	var firstErr atomic.Value
	one := func(i int, t int64) {
		body := strconv.AppendInt([]byte(`{"t":`), t, 10)
		body = append(body, `,"pad":"0123456789012345678901234567890123456789012345678901234567890123456789"}`...)
		req, _ := http.NewRequest(http.MethodPost, base+url.PathEscape(ids[i%len(ids)]), bytes.NewReader(body))
		if err := sigv4.Sign(req, creds, "execute-api", c.Region, time.Now(), sha256Hex(body)); err != nil {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, resp.Status)
			return
		}
		ok.Add(1)
	}
	r := runLoad(c, one)
	r.OK, r.Errors = ok.Load(), errs.Load()
	if e, ok := firstErr.Load().(string); ok {
		r.FirstEr = e
	}
	return r
}

// runLoad calls one(i, t) up to c.Max times within c.Duration: closed loop
// from c.Conc goroutines when c.Rate is 0, else open loop at c.Rate with t
// the scheduled send time (so queueing in the client counts as latency).
func runLoad(c command, one func(i int, t int64)) reply {
	dur := time.Duration(c.Duration * float64(time.Second))
	start := time.Now()
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
	total := min(int(c.Rate*dur.Seconds()), c.Max)
	jobs := make(chan [2]int64, 4096)
	for range max(c.Conc, 1) {
		wg.Go(func() {
			for j := range jobs {
				one(int(j[0]), j[1])
			}
		})
	}
	interval := time.Duration(float64(time.Second) / c.Rate)
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if time.Now().After(deadline.Add(5 * time.Second)) {
			break
		}
		jobs <- [2]int64{int64(i), at.UnixNano()}
	}
	close(jobs)
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
