package bench

import (
	"bufio"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/httpread"
	"github.com/wsgate/wsgate/internal/sigwire"
	"github.com/wsgate/wsgate/internal/uuid"
	"github.com/wsgate/wsgate/sigv4"
)

// The POST generator (op "post") costs the client as little as it can,
// since on a 2-core machine every microsecond it spends is taken from the
// server or shows up as queueing in the latency it measures:
//
//   - each request goes out as one write(2) of bytes signed beforehand and
//     its answer is read by a parser that allocates nothing (no net/http
//     client: its connection goroutines, header maps and allocations cost
//     more CPU per POST than the server's whole handler);
//   - at a fixed rate every request is signed before the measured window
//     (op "post-sign"), with its scheduled send time already in the body; in
//     the closed loop each is signed when sent. Signing is sigv4.Sign, which derives the signing
//     key once per secret, day, region and service as the SDKs do, so the
//     server verifies exactly what an SDK would send.

// postBody is a POST's payload, stamped with t.
func postBody(t int64) []byte {
	b := append(make([]byte, 0, 128), `{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	return append(b, `,"pad":"0123456789012345678901234567890123456789012345678901234567890123456789"}`...)
}

// httpConn is one keep-alive HTTP/1.1 connection of the generator. It is
// used by one goroutine at a time and dialed again after an error.
type httpConn struct {
	dial func() (net.Conn, error)
	nc   net.Conn
	br   *bufio.Reader
}

// roundTrip writes one whole request and reads the status of its answer.
func (h *httpConn) roundTrip(wire []byte) (int, error) {
	if h.nc == nil {
		nc, err := h.dial()
		if err != nil {
			return 0, err
		}
		h.nc = nc
		h.br = bufio.NewReaderSize(nc, 4096)
	}
	_ = h.nc.SetDeadline(time.Now().Add(10 * time.Second))
	status, err := h.write(wire)
	if err != nil {
		h.nc.Close()
		h.nc = nil
	}
	return status, err
}

func (h *httpConn) write(wire []byte) (int, error) {
	if _, err := h.nc.Write(wire); err != nil {
		return 0, err
	}
	return httpread.Answer(h.br)
}

func (h *httpConn) close() {
	if h.nc != nil {
		h.nc.Close()
	}
}

// postURLs are the @connections URLs of this worker's connections, each
// at the node a management call on it enters.
func (w *worker) postURLs(c command) (urls, entries []string) {
	ids, entries := w.targets(c)
	urls = make([]string, len(ids))
	for k := range ids {
		urls[k] = "http://" + entries[k] + "/" + c.Stage + "/@connections/" + ids[k]
	}
	return urls, entries
}

// postWire is POST i, stamped t, signed now; with c.InvocationID it
// carries its own signed Amz-Sdk-Invocation-Id, as every AWS SDK call
// does (a cluster's dedupe key).
func postWire(c command, urls []string, i int, t int64) ([]byte, error) {
	creds := sigv4.Credentials{AccessKeyID: c.Key, SecretAccessKey: c.Secret}
	var header map[string]string
	if c.InvocationID {
		header = map[string]string{"Amz-Sdk-Invocation-Id": invocationID()}
	}
	return sigwire.RequestHeader(http.MethodPost, urls[i%len(urls)], postBody(t), header, creds, c.Region, time.Now())
}

// invocationID is a random UUID (version 4, variant 1) as the AWS SDKs'
// invocation ids are, from math/rand/v2's per-thread generator: a few
// nanoseconds, nothing beside the signing.
func invocationID() string {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	return uuid.V4(u)
}

// postPlan is a fixed-rate POST load signed ahead: wires[i] is POST i,
// stamped with its scheduled time start+i/rate. The first warm of them
// are the warm-up (command.Warm), the rest the measured window.
type postPlan struct {
	start time.Time
	wires [][]byte
	warm  int
}

// postSign signs the POSTs of a fixed-rate post command (same fields)
// before its window, which starts c.Lead seconds from now, its warm-up
// (c.Warm seconds) first; it answers that start (the orchestrator signs again with a longer lead if some worker's
// start passed before all were signed).
func (w *worker) postSign(c command) reply {
	urls, _ := w.postURLs(c)
	if len(urls) == 0 || c.Rate <= 0 {
		return reply{Err: "post-sign: no connection ids, or no rate"}
	}
	warm := min(int(c.Rate*max(c.Warm, 0)), c.Max)
	total := warm + min(int(c.Rate*c.Duration), c.Max)
	interval := time.Duration(float64(time.Second) / c.Rate)
	start := time.Now().Add(time.Duration(c.Lead * float64(time.Second)))
	w.plan = nil
	wires := make([][]byte, total)
	for i := range wires {
		wire, err := postWire(c, urls, i, start.Add(time.Duration(i)*interval).UnixNano())
		if err != nil {
			return reply{Err: err.Error()}
		}
		wires[i] = wire
	}
	w.plan = &postPlan{start: start, wires: wires, warm: warm}
	return reply{Start: start.UnixNano()}
}

// entryPools makes a connPool for each entry node's address, dialing from
// src.
func entryPools(src string, entries []string) map[string]*connPool {
	nd := srcDialer(src)
	pools := map[string]*connPool{}
	for _, addr := range entries {
		if pools[addr] == nil {
			pools[addr] = &connPool{dial: func() (net.Conn, error) { return nd.Dial("tcp", addr) }}
		}
	}
	return pools
}

// closePools closes every pool's idle connections.
func closePools(pools map[string]*connPool) {
	for _, p := range pools {
		p.close()
	}
}

// connPool holds a node's idle generator connections, last in first out.
type connPool struct {
	dial func() (net.Conn, error)
	mu   sync.Mutex
	idle []*httpConn
}

func (p *connPool) get() *httpConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		h := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return h
	}
	return &httpConn{dial: p.dial}
}

func (p *connPool) put(h *httpConn) {
	p.mu.Lock()
	p.idle = append(p.idle, h)
	p.mu.Unlock()
}

func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.idle {
		h.close()
	}
	p.idle = nil
}

// post sends signed @connections POSTs to this worker's own connections,
// each carrying {"t":<scheduled send time>}: latency is measured by the
// readers. With c.Samples each POST's queueing (sent after its scheduled
// time) and answer time (from the scheduled time) are recorded too.
func (w *worker) post(c command) reply {
	if c.Lean {
		return w.postLean(c)
	}
	urls, entries := w.postURLs(c)
	if len(urls) == 0 {
		return reply{Err: "no connection ids (dial with whoami)"}
	}
	// Keep-alive connections to each entry node, dialed when none is idle
	// (at most c.Conc: one per sending goroutine) and reused most recently
	// idle first, as the SDKs' pools do: at a fixed rate a few connections
	// carry the load and the server's others stay parked.
	pools := entryPools(c.Src[0], entries)
	defer closePools(pools)

	var ok, errs atomic.Int64
	var firstErr atomic.Value
	fail := func(err string) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	var mu sync.Mutex
	var queued, answered []int64
	wireFor := func(i int, t int64) ([]byte, error) { return postWire(c, urls, i, t) }

	start := time.Now()
	var wires [][]byte
	if w.plan != nil {
		start, wires, w.plan = w.plan.start, w.plan.wires, nil
	}
	one := func(i int, t int64) {
		if c.Samples {
			q := time.Now().UnixNano() - t
			mu.Lock()
			queued = append(queued, q)
			mu.Unlock()
		}
		var wire []byte
		if i < len(wires) {
			wire = wires[i]
		} else {
			var err error
			if wire, err = wireFor(i, t); err != nil {
				fail(err.Error())
				return
			}
		}
		pool := pools[entries[i%len(entries)]]
		h := pool.get()
		status, err := h.roundTrip(wire)
		pool.put(h)
		switch {
		case err != nil:
			fail(err.Error())
			return
		case status/100 != 2:
			fail("POST " + strconv.Itoa(status))
			return
		}
		if c.Samples {
			a := time.Now().UnixNano() - t
			mu.Lock()
			answered = append(answered, a)
			mu.Unlock()
		}
		ok.Add(1)
	}
	r := runLoad(c, start, one)
	r.OK, r.Errors, r.Lat, r.Queued = ok.Load(), errs.Load(), answered, queued
	if e, ok := firstErr.Load().(string); ok {
		r.FirstEr = e
	}
	return r
}
