package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsgate/wsgate/sigv4"
)

// soakPlan is one worker's share of the soak load. Rates are per second
// for this worker.
type soakPlan struct {
	Members  int `json:"members"`  // join a group, read, are churned and sent to
	Never    int `json:"never"`    // join a group, are sent to and ping, never read
	Stallers int `json:"stallers"` // read, send to the stalled route
	Groups   int `json:"groups"`   // groups soak-0 … soak-(Groups-1)

	PostRate      float64 `json:"postRate"`      // signed POSTs to members
	NeverPostRate float64 `json:"neverPostRate"` // signed POSTs of NeverPad bytes to never-readers
	NeverPad      int     `json:"neverPad"`
	PingRate      float64 `json:"pingRate"`   // pings per never-reader
	PubRate       float64 `json:"pubRate"`    // signed group publishes
	SwitchRate    float64 `json:"switchRate"` // members leaving their group for another
	ChurnRate     float64 `json:"churnRate"`  // members closed and reconnected
	StallRate     float64 `json:"stallRate"`  // messages to the stalled route
}

// soakCounts are a worker's soak counters since soak-start, cumulative.
type soakCounts struct {
	Post2xx   int64 `json:"post2xx"`
	Post410   int64 `json:"post410"`
	Post429   int64 `json:"post429"`
	PostOther int64 `json:"postOther"` // other statuses and transport errors

	PubDelivered int64 `json:"pubDelivered"`
	PubSkipped   int64 `json:"pubSkipped"`
	PubErrors    int64 `json:"pubErrors"`

	JoinAcks int64 `json:"joinAcks"` // {"action":"subscribed"} frames received

	StallSent      int64 `json:"stallSent"`
	RouteTimeout   int64 `json:"routeTimeout"`   // "Endpoint request timed out" frames
	RouteThrottled int64 `json:"routeThrottled"` // throttling answers (see throttled)
	RouteOther     int64 `json:"routeOther"`     // any other error frame

	Reconnects        int64 `json:"reconnects"` // churned, dropped or closed connections replaced
	ReconnectFailures int64 `json:"reconnectFailures"`
	NeverCloses       int64 `json:"neverCloses"`  // never-readers found closed by the server
	HealthyDrops      int64 `json:"healthyDrops"` // reading connections the server closed
	Frames            int64 `json:"frames"`       // stamped frames (POSTs, publishes) received
	Pings             int64 `json:"pings"`
	Backlog           int64 `json:"backlog"` // scheduled sends dropped: every sender busy
	Open              int64 `json:"open"`    // connections open now

	FirstDrop  string `json:"firstDrop,omitempty"`  // why the first reading connection ended
	FirstNever string `json:"firstNever,omitempty"` // why the first never-reader ended
	FirstOther string `json:"firstOther,omitempty"` // the first POST/publish/reconnect error
}

type soakKind uint8

const (
	kindMember soakKind = iota
	kindNever
	kindStaller
)

// soakConn is one connection of a slot; a slot gets a new one when it is
// churned or replaced.
type soakConn struct {
	*clientConn
	wmu     sync.Mutex // one writer at a time
	closing atomic.Bool
	once    sync.Once
}

// write sends one masked client frame within 10 s.
func (sc *soakConn) write(op ws.OpCode, p []byte) error {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	_ = sc.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return wsutil.WriteClientMessage(sc.nc, op, p)
}

// soakSlot is a place for one connection of a kind.
type soakSlot struct {
	kind  soakKind
	mu    sync.Mutex // guards sc, group
	sc    *soakConn
	group string
}

func (sl *soakSlot) conn() *soakConn {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.sc
}

// soaker is a worker's soak load: its connections, load loops and counters.
type soaker struct {
	c       command
	plan    soakPlan
	members []*soakSlot
	never   []*soakSlot
	stall   []*soakSlot
	client  *http.Client
	ctx     context.Context
	stop    context.CancelFunc
	loops   sync.WaitGroup // load loops
	readers sync.WaitGroup // connection readers
	replace chan *soakSlot // reading slots whose connection ended

	mu sync.Mutex // guards n
	n  soakCounts
	// open counts connections whose socket is not closed yet.
	open atomic.Int64
}

func (s *soaker) count(f func(n *soakCounts)) {
	s.mu.Lock()
	f(&s.n)
	s.mu.Unlock()
}

func (s *soaker) counts() soakCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.n
	n.Open = s.open.Load()
	return n
}

// soakStart dials the plan's connections (c.Conc at a time) and returns
// when all are open or failed; the load starts with soak-run.
func (w *worker) soakStart(c command) reply {
	if w.soak != nil || c.Soak == nil || c.Soak.Groups < 1 {
		return reply{Err: "soak-start: already started or no plan"}
	}
	p := *c.Soak
	nd := srcDialer(c.Src[0])
	tr := &http.Transport{DialContext: nd.DialContext, MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32, DisableCompression: true}
	s := &soaker{c: c, plan: p, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	s.ctx, s.stop = context.WithCancel(context.Background())
	for range p.Members {
		s.members = append(s.members, &soakSlot{kind: kindMember})
	}
	for range p.Never {
		s.never = append(s.never, &soakSlot{kind: kindNever})
	}
	for range p.Stallers {
		s.stall = append(s.stall, &soakSlot{kind: kindStaller})
	}
	all := append(append(append([]*soakSlot(nil), s.members...), s.never...), s.stall...)
	s.replace = make(chan *soakSlot, len(all))
	w.soak = s

	start := time.Now()
	var next atomic.Int64
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range max(c.Conc, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(all) {
					return
				}
				if err := s.connect(all[i], i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					s.replace <- all[i]
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	r := reply{Elapsed: int64(time.Since(start)), OK: ok.Load(), Errors: failed.Load()}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstEr = e
	}
	return r
}

// connect opens a connection for slot sl: members and never-readers learn
// their id and join a group (the i-th group when i >= 0, else a random
// one); readers start reading.
func (s *soaker) connect(sl *soakSlot, i int) error {
	cmd := command{Addr: s.c.Addr, Path: s.c.Path, Whoami: sl.kind != kindStaller}
	cc, err := dialOne(cmd, 0, s.c.Src[rand.IntN(len(s.c.Src))])
	if err != nil {
		return err
	}
	sc := &soakConn{clientConn: cc}
	s.open.Add(1)
	if strings.HasPrefix(cc.id, "{") { // an error frame (throttled, timed out), not an id
		s.closeConn(sc)
		return fmt.Errorf("whoami answered %.120s", cc.id)
	}
	var group string
	if sl.kind != kindStaller {
		if i < 0 {
			i = rand.IntN(s.plan.Groups)
		}
		group = fmt.Sprintf("soak-%d", i%s.plan.Groups)
		// The answer is counted by the reader; a publish may come first.
		if err := sc.write(ws.OpText, []byte(`{"action":"join","group":"`+group+`"}`)); err != nil {
			s.closeConn(sc)
			return fmt.Errorf("join: %w", err)
		}
	}
	sl.mu.Lock()
	sl.sc, sl.group = sc, group
	sl.mu.Unlock()
	if sl.kind != kindNever {
		s.readers.Add(1)
		go s.read(sl, sc)
	}
	return nil
}

func (s *soaker) closeConn(sc *soakConn) {
	sc.once.Do(func() {
		sc.nc.Close()
		s.open.Add(-1)
	})
}

// throttled reports whether an error frame is a throttling answer: AWS's
// {"message": "Too Many Requests", ...} or a LimitExceeded wording.
func throttled(p []byte) bool {
	l := bytes.ToLower(p)
	for _, w := range []string{"too many requests", "limitexceeded", "limit exceeded", "throttl", "rate exceeded"} {
		if bytes.Contains(l, []byte(w)) {
			return true
		}
	}
	return false
}

// read counts and classifies what one connection receives until it ends;
// an end it did not ask for (closing unset) is a drop, and the slot is
// queued for a new connection.
func (s *soaker) read(sl *soakSlot, sc *soakConn) {
	defer s.readers.Done()
	defer s.closeConn(sc)
	var err error
	buf := make([]byte, 0, 512)
	for {
		var h ws.Header
		if h, err = ws.ReadHeader(sc.br); err != nil {
			break
		}
		if h.Length > 1<<20 {
			err = fmt.Errorf("frame of %d bytes", h.Length)
			break
		}
		if int64(cap(buf)) < h.Length {
			buf = make([]byte, h.Length)
		}
		p := buf[:h.Length]
		if _, err = io.ReadFull(sc.br, p); err != nil {
			break
		}
		switch {
		case h.OpCode == ws.OpClose:
			err = fmt.Errorf("close frame %q", p)
		case h.OpCode == ws.OpPing:
			_ = sc.write(ws.OpPong, p)
			continue
		case h.OpCode.IsControl():
			continue
		case bytes.HasPrefix(p, []byte(`{"t":`)):
			s.count(func(n *soakCounts) { n.Frames++ })
		case bytes.Contains(p, []byte(`"subscribed"`)):
			s.count(func(n *soakCounts) { n.JoinAcks++ })
		case bytes.Contains(p, []byte("Endpoint request timed out")):
			s.count(func(n *soakCounts) { n.RouteTimeout++ })
		case throttled(p):
			s.count(func(n *soakCounts) { n.RouteThrottled++ })
		default:
			s.count(func(n *soakCounts) { n.RouteOther++ })
		}
		if err != nil {
			break
		}
	}
	if sc.closing.Load() {
		return
	}
	s.count(func(n *soakCounts) {
		n.HealthyDrops++
		if n.FirstDrop == "" {
			n.FirstDrop = err.Error()
		}
	})
	sl.mu.Lock()
	if sl.sc == sc {
		sl.sc = nil
	}
	sl.mu.Unlock()
	if s.ctx.Err() == nil {
		select {
		case s.replace <- sl:
		default:
		}
	}
}

// soakRun starts the load loops and returns at once.
func (w *worker) soakRun() reply {
	s := w.soak
	if s == nil {
		return reply{Err: "soak-run before soak-start"}
	}
	p := s.plan
	s.pace(p.PostRate, 16, func() { s.post(s.members, 64) })
	s.pace(p.NeverPostRate, 4, func() { s.post(s.never, p.NeverPad) })
	s.pace(p.PubRate, 4, s.publish)
	s.pace(p.SwitchRate, 1, s.switchGroup)
	s.pace(p.ChurnRate, 4, s.churn)
	s.pace(p.StallRate, 1, s.stallOne)
	for _, sl := range s.never {
		s.pace(p.PingRate, 1, func() { s.ping(sl) })
	}
	s.loops.Go(s.replaceLoop)
	return reply{}
}

// pace runs job about rate times a second on conc goroutines until the
// soak stops. A tick that finds every goroutine busy is dropped and
// counted (Backlog), so a slow server cannot pile work up in the client.
func (s *soaker) pace(rate float64, conc int, job func()) {
	if rate <= 0 {
		return
	}
	jobs := make(chan struct{}, conc)
	for range conc {
		s.loops.Go(func() {
			for {
				select {
				case <-s.ctx.Done():
					return
				case <-jobs:
					job()
				}
			}
		})
	}
	s.loops.Go(func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				select {
				case jobs <- struct{}{}:
				default:
					s.count(func(n *soakCounts) { n.Backlog++ })
				}
			}
		}
	})
}

func (s *soaker) firstOther(err string) {
	s.count(func(n *soakCounts) {
		if n.FirstOther == "" {
			n.FirstOther = err
		}
	})
}

// signed sends a signed POST of body to path (after /{stage}/) and returns
// the status and answer; status 0 is a transport error.
func (s *soaker) signed(path string, body []byte) (int, []byte) {
	req, _ := http.NewRequestWithContext(s.ctx, http.MethodPost, "http://"+s.c.Addr+"/"+s.c.Stage+"/"+path, bytes.NewReader(body))
	creds := sigv4.Credentials{AccessKeyID: s.c.Key, SecretAccessKey: s.c.Secret}
	if err := sigv4.Sign(req, creds, "execute-api", s.c.Region, time.Now(), sha256Hex(body)); err != nil {
		s.firstOther(err.Error())
		return 0, nil
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if s.ctx.Err() == nil {
			s.firstOther(err.Error())
		}
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, b
}

// post sends one stamped POST of pad bytes to a random slot's connection.
func (s *soaker) post(slots []*soakSlot, pad int) {
	if len(slots) == 0 {
		return
	}
	sc := slots[rand.IntN(len(slots))].conn()
	if sc == nil {
		return // being replaced
	}
	status, b := s.signed("@connections/"+url.PathEscape(sc.id), stampedBody(time.Now().UnixNano(), pad))
	if s.ctx.Err() != nil {
		return
	}
	s.count(func(n *soakCounts) {
		switch {
		case status >= 200 && status < 300:
			n.Post2xx++
		case status == http.StatusGone:
			n.Post410++
		case status == http.StatusTooManyRequests:
			n.Post429++
		default:
			n.PostOther++
			if status != 0 && n.FirstOther == "" {
				n.FirstOther = fmt.Sprintf("POST %d: %s", status, b)
			}
		}
	})
}

// publish sends one stamped publish to a random group.
func (s *soaker) publish() {
	g := rand.IntN(s.plan.Groups)
	status, b := s.signed(fmt.Sprintf("@groups/soak-%d", g), stampedBody(time.Now().UnixNano(), 64))
	if s.ctx.Err() != nil {
		return
	}
	var out struct{ Delivered, Skipped int64 }
	err := json.Unmarshal(b, &out)
	s.count(func(n *soakCounts) {
		if status != http.StatusOK || err != nil {
			n.PubErrors++
			if status != 0 && n.FirstOther == "" {
				n.FirstOther = fmt.Sprintf("publish %d: %s", status, b)
			}
			return
		}
		n.PubDelivered += out.Delivered
		n.PubSkipped += out.Skipped
	})
}

// switchGroup moves a random member from its group to another.
func (s *soaker) switchGroup() {
	if len(s.members) == 0 {
		return
	}
	sl := s.members[rand.IntN(len(s.members))]
	sl.mu.Lock()
	sc, old := sl.sc, sl.group
	next := fmt.Sprintf("soak-%d", rand.IntN(s.plan.Groups))
	if sc != nil {
		sl.group = next
	}
	sl.mu.Unlock()
	if sc == nil {
		return
	}
	// Write errors show as the reader's drop.
	if sc.write(ws.OpText, []byte(`{"action":"leave","group":"`+old+`"}`)) == nil {
		_ = sc.write(ws.OpText, []byte(`{"action":"join","group":"`+next+`"}`))
	}
}

// churn closes a random member with a close handshake and opens another.
func (s *soaker) churn() {
	if len(s.members) == 0 {
		return
	}
	sl := s.members[rand.IntN(len(s.members))]
	sl.mu.Lock()
	sc := sl.sc
	sl.sc = nil
	sl.mu.Unlock()
	if sc == nil {
		return // being replaced
	}
	s.closeGracefully(sc)
	s.reconnect(sl)
}

// closeGracefully sends a close frame; the reader ends on the server's
// echo (or within 3 s) and closes the socket.
func (s *soaker) closeGracefully(sc *soakConn) {
	sc.closing.Store(true)
	_ = sc.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	_ = sc.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
}

func (s *soaker) reconnect(sl *soakSlot) bool {
	err := s.connect(sl, -1)
	if s.ctx.Err() != nil {
		return true
	}
	s.count(func(n *soakCounts) {
		if err != nil {
			n.ReconnectFailures++
			if n.FirstOther == "" {
				n.FirstOther = "reconnect: " + err.Error()
			}
			return
		}
		n.Reconnects++
	})
	if err != nil {
		select {
		case s.replace <- sl:
		default:
		}
	}
	return err == nil
}

// replaceLoop reconnects slots whose connection the server ended or
// whose dial failed, one at a time, pausing a second after a failure.
func (s *soaker) replaceLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case sl := <-s.replace:
			if !s.reconnect(sl) {
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
	}
}

// stallOne sends a message to the stalled route from a random staller.
func (s *soaker) stallOne() {
	if len(s.stall) == 0 {
		return
	}
	sc := s.stall[rand.IntN(len(s.stall))].conn()
	if sc == nil {
		return
	}
	msg := strconv.AppendInt([]byte(`{"action":"stall","t":`), time.Now().UnixNano(), 10)
	if sc.write(ws.OpText, append(msg, '}')) == nil {
		s.count(func(n *soakCounts) { n.StallSent++ })
	}
}

// ping sends a ping from a never-reader; a failed write means the server
// ended the connection (or stopped reading it for 10 s): the slot gets a
// new never-reader.
func (s *soaker) ping(sl *soakSlot) {
	sc := sl.conn()
	if sc == nil {
		if s.connect(sl, -1) == nil {
			s.count(func(n *soakCounts) { n.Reconnects++ })
		} else {
			s.count(func(n *soakCounts) { n.ReconnectFailures++ })
		}
		return
	}
	err := sc.write(ws.OpPing, bytes.Repeat([]byte{'p'}, 125))
	if err == nil {
		s.count(func(n *soakCounts) { n.Pings++ })
		return
	}
	if s.ctx.Err() != nil {
		return
	}
	s.closeConn(sc)
	sl.mu.Lock()
	sl.sc = nil
	sl.mu.Unlock()
	s.count(func(n *soakCounts) {
		n.NeverCloses++
		if n.FirstNever == "" {
			n.FirstNever = err.Error()
		}
	})
}

// soakStop ends the load, closes every connection (readers with a close
// handshake, bounded by 10 s) and the HTTP client's connections, and
// returns the final counters.
func (w *worker) soakStop() reply {
	s := w.soak
	if s == nil {
		return reply{Err: "soak-stop before soak-start"}
	}
	s.stop()
	s.loops.Wait()
	for _, slots := range [][]*soakSlot{s.members, s.never, s.stall} {
		for _, sl := range slots {
			sl.mu.Lock()
			sc := sl.sc
			sl.sc = nil
			sl.mu.Unlock()
			switch {
			case sc == nil:
			case sl.kind == kindNever:
				// Its socket is full of unread frames: a close frame may
				// never get through, so just close.
				s.closeConn(sc)
			default:
				s.closeGracefully(sc)
			}
		}
	}
	done := make(chan struct{})
	go func() { s.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	s.client.CloseIdleConnections()
	n := s.counts()
	w.soak = nil
	return reply{Soak: &n}
}
