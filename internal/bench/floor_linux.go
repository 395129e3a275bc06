//go:build linux

package bench

import (
	"bytes"
	"errors"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/rawsys"
	"github.com/wsgate/wsgate/sigv4"
)

// Bounds of the raw floor loop.
const (
	floorMaxPending  = 64 << 10 // bytes a connection may leave unparsed
	floorMaxBackends = 256      // $connect backend connections
	floorReadBuf     = 16 << 10
)

// rawConn is one socket of the raw floor loop: a client's (WebSocket or
// HTTP) or, with $connect, a backend connection.
type rawConn struct {
	fd      int
	buf     []byte // bytes read and not yet parsed (nil when none)
	ws      bool   // upgraded: what arrives is frames
	backend bool   // a $connect backend connection
	closed  bool
	// $connect: the backend connection waiting for this client's answer,
	// or the client a backend connection serves.
	peer *rawConn
	key  [24]byte // the client's Sec-WebSocket-Key while $connect runs
	id   string   // post floor: the WebSocket connection's id

	// post floor, HTTP connections: the request being verified, reused.
	req  http.Request
	url  url.URL
	hdr  http.Header
	vals []string
	body floorBody
}

// floorBody is a request body over bytes already read.
type floorBody struct{ bytes.Reader }

func (*floorBody) Close() error { return nil }

// rawLoop is the raw floor: one goroutine on one epoll set.
type rawLoop struct {
	post     bool
	call     *connectCall
	callAddr syscall.SockaddrInet4
	ep, lfd  int
	conns    []*rawConn // by descriptor
	idle     []*rawConn // backend connections free for a $connect
	backends int
	waiting  []*rawConn // handshakes waiting for a backend connection
	byID     map[string]*rawConn
	nextID   int
	verifier *sigv4.Verifier
	names    map[string]string // canonical header names seen
	rbuf     []byte
	out      []byte
	date     []byte // the Date header's value, for dateSec
	dateSec  int64

	ops, syscalls atomic.Int64
}

// rawFloor starts floor hs-raw (post false) or post and returns its
// address and statistics.
func rawFloor(post bool, call *connectCall) (string, func() floorStats, error) {
	l := &rawLoop{post: post, call: call, byID: map[string]*rawConn{}, names: map[string]string{},
		rbuf: make([]byte, floorReadBuf),
		verifier: &sigv4.Verifier{
			Store:   sigv4.StaticCredentials{benchKey: {AccessKeyID: benchKey, SecretAccessKey: benchSecret}},
			Service: "execute-api", Region: benchRegion,
		}}
	if call != nil {
		ap, err := netip.ParseAddrPort(call.host)
		if err != nil || !ap.Addr().Is4() {
			return "", nil, errors.New("-connect: want an IPv4 host:port")
		}
		l.callAddr = syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	var err error
	if l.lfd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0); err != nil {
		return "", nil, err
	}
	// The kernel hands over a connection once its first bytes arrived (the
	// client speaks first), so the head is read right after accept4, with
	// no epoll_wait between.
	if err := syscall.SetsockoptInt(l.lfd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1); err != nil {
		return "", nil, err
	}
	if err := syscall.Bind(l.lfd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return "", nil, err
	}
	if err := syscall.Listen(l.lfd, 4096); err != nil {
		return "", nil, err
	}
	sa, err := syscall.Getsockname(l.lfd)
	if err != nil {
		return "", nil, err
	}
	if l.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return "", nil, err
	}
	if err := rawsys.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, l.lfd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.lfd)}); err != nil {
		return "", nil, err
	}
	go l.run()
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	return addr, func() floorStats { return floorStats{Ops: l.ops.Load(), Syscalls: l.syscalls.Load()} }, nil
}

func (l *rawLoop) run() {
	evs := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(l.ep, evs, -1) // blocks: through the scheduler
		l.syscalls.Add(1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for _, ev := range evs[:n] {
			fd := int(ev.Fd)
			switch {
			case fd == l.lfd:
				l.accept()
			case fd < len(l.conns) && l.conns[fd] != nil:
				l.readable(l.conns[fd])
			}
		}
	}
}

// accept takes one connection per readiness (the set is level-triggered:
// another pending one wakes the next wait), so no accept4 ends in EAGAIN
// while connections arrive one at a time, and reads its head at once
// (TCP_DEFER_ACCEPT: it has arrived), before registering it.
func (l *rawLoop) accept() {
	fd, _, err := rawsys.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
	l.syscalls.Add(1)
	if err != nil {
		if err == syscall.EMFILE || err == syscall.ENFILE {
			time.Sleep(10 * time.Millisecond)
		}
		return
	}
	c := &rawConn{fd: fd}
	l.put(c)
	l.readable(c)
	if !c.closed {
		l.register(c)
	}
}

// put makes c the connection of its descriptor.
func (l *rawLoop) put(c *rawConn) {
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*rawConn, len(l.conns)+64)...)
	}
	l.conns[c.fd] = c
}

// register adds c to the epoll set (level-triggered: bytes that arrived
// before are reported at the next wait).
func (l *rawLoop) register(c *rawConn) {
	err := rawsys.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, c.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)})
	l.syscalls.Add(1)
	if err != nil {
		l.close(c)
	}
}

func (l *rawLoop) close(c *rawConn) {
	if c.closed {
		return
	}
	c.closed = true
	_ = syscall.Close(c.fd) // leaves the epoll set too
	l.syscalls.Add(1)
	l.conns[c.fd] = nil
	if c.id != "" {
		delete(l.byID, c.id)
	}
	if p := c.peer; p != nil {
		p.peer, c.peer = nil, nil
		if c.backend {
			l.close(p) // its client gets no answer
		}
	}
	if c.backend {
		l.backends--
	}
}

// write writes b whole in one call, or closes c.
func (l *rawLoop) write(c *rawConn, b []byte) bool {
	n, _, err := rawsys.WriteNB(c.fd, b, rawsys.Raw)
	l.syscalls.Add(1)
	if err != nil || n != len(b) { // a socket that takes nothing (again) too
		l.close(c)
		return false
	}
	return true
}

// readable reads what arrived on c, once (the set is level-triggered),
// and serves every whole request or frame in it.
func (l *rawLoop) readable(c *rawConn) {
	n, again, err := rawsys.ReadNB(c.fd, l.rbuf)
	l.syscalls.Add(1)
	if again {
		return
	}
	if err != nil { // io.EOF included
		l.close(c)
		return
	}
	data := l.rbuf[:n]
	if len(c.buf) > 0 {
		c.buf = append(c.buf, data...)
		data = c.buf
	}
	var used int
	if c.backend {
		used = l.connectAnswer(c, data)
	} else {
		used = l.serve(c, data)
	}
	if used < 0 || len(data)-used > floorMaxPending {
		l.close(c)
		return
	}
	if used == len(data) {
		c.buf = c.buf[:0]
		return
	}
	c.buf = append(c.buf[:0], data[used:]...)
}

// serve handles the heads, requests and frames at the start of p and
// returns how many bytes they took, or -1 to close c.
func (l *rawLoop) serve(c *rawConn, p []byte) int {
	used := 0
	for used < len(p) && c.peer == nil {
		q := p[used:]
		var k int
		switch {
		case c.ws:
			k = l.frame(c, q)
		case l.post && !bytes.HasPrefix(q, []byte("GET ")):
			k = l.serveHTTP(c, q)
		default:
			k = l.upgrade(c, q)
		}
		if k <= 0 {
			if k < 0 {
				return -1
			}
			return used
		}
		used += k
	}
	return used
}

// upgrade answers the upgrade head at the start of p (after the $connect
// round trip when there is one).
func (l *rawLoop) upgrade(c *rawConn, p []byte) int {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return 0
	}
	key, ok := upgradeHead(p[:end])
	if !ok {
		return -1
	}
	c.ws = true
	if l.call != nil {
		copy(c.key[:], key)
		l.connect(c)
		return end + 4
	}
	if !l.switching(c, key) {
		return -1
	}
	return end + 4
}

// switching writes the 101; the post floor gives the connection its id.
func (l *rawLoop) switching(c *rawConn, key []byte) bool {
	l.out = appendSwitching(l.out[:0], key)
	if !l.write(c, l.out) {
		return false
	}
	if l.post {
		l.nextID++
		c.id = "floor" + strconv.Itoa(l.nextID)
		l.byID[c.id] = c
	} else {
		l.ops.Add(1)
	}
	return true
}

// frame handles one masked client frame at the start of p: the post floor
// answers a whoami with the connection's id, the handshake floors drop
// it. It returns the frame's length, 0 when incomplete, -1 to close.
func (l *rawLoop) frame(c *rawConn, p []byte) int {
	if len(p) < 2 {
		return 0
	}
	if p[1]&0x80 == 0 {
		return -1 // a client's frame must be masked
	}
	size, hdr := int(p[1]&0x7f), 2
	switch size {
	case 126:
		if len(p) < 4 {
			return 0
		}
		size, hdr = int(p[2])<<8|int(p[3]), 4
	case 127:
		return -1 // a floor takes no 64 KiB frames
	}
	total := hdr + 4 + size
	if len(p) < total {
		return 0
	}
	if p[0]&0x0f == 0x8 {
		return -1 // close: the floor closes without the close handshake
	}
	if l.post {
		mask, payload := p[hdr:hdr+4], p[hdr+4:total]
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
		if bytes.Contains(payload, []byte(`"whoami"`)) {
			l.out = appendTextFrame(l.out[:0], []byte(c.id))
			if !l.write(c, l.out) {
				return -1
			}
		}
	}
	return total
}

// appendTextFrame appends an unmasked text frame of payload.
func appendTextFrame(b, payload []byte) []byte {
	if len(payload) < 126 {
		b = append(b, 0x81, byte(len(payload)))
	} else {
		b = append(b, 0x81, 126, byte(len(payload)>>8), byte(len(payload)))
	}
	return append(b, payload...)
}

// connect starts client c's $connect round trip, or queues c until a
// backend connection is free.
func (l *rawLoop) connect(c *rawConn) {
	b := l.takeBackend()
	if b == nil {
		l.waiting = append(l.waiting, c)
		c.peer = c // parked: serve reads nothing more until the answer
		return
	}
	b.peer, c.peer = c, b
	l.write(b, l.call.req)
}

// takeBackend returns an idle backend connection, dialing one (a blocking
// connect on loopback, then non-blocking) when none is idle and fewer than
// floorMaxBackends exist; nil when none can be had now.
func (l *rawLoop) takeBackend() *rawConn {
	if n := len(l.idle); n > 0 {
		b := l.idle[n-1]
		l.idle = l.idle[:n-1]
		return b
	}
	if l.backends >= floorMaxBackends {
		return nil
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	l.syscalls.Add(3)
	if syscall.Connect(fd, &l.callAddr) != nil || syscall.SetNonblock(fd, true) != nil {
		_ = syscall.Close(fd)
		return nil
	}
	l.backends++
	b := &rawConn{fd: fd, backend: true}
	l.put(b)
	l.register(b)
	if b.closed {
		return nil
	}
	return b
}

// connectAnswer reads the backend's answer at the start of p, writes the
// 101 to its client on a 200 (else closes the client) and gives the
// backend connection to the next waiting handshake.
func (l *rawLoop) connectAnswer(b *rawConn, p []byte) int {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return 0
	}
	if len(p) < 12 || !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return -1
	}
	length := 0
	for _, line := range bytes.Split(p[:end], []byte("\r\n"))[1:] {
		name, value, _ := bytes.Cut(line, []byte(":"))
		if bytes.EqualFold(name, []byte("Content-Length")) {
			var err error
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return -1
			}
		}
	}
	total := end + 4 + length
	if len(p) < total {
		return 0
	}
	c := b.peer
	b.peer = nil
	if c != nil {
		c.peer = nil
		if string(p[9:12]) == "200" {
			l.switching(c, c.key[:])
		} else {
			l.close(c)
		}
	}
	for len(l.waiting) > 0 {
		w := l.waiting[0]
		l.waiting = l.waiting[1:]
		if !w.closed {
			b.peer, w.peer = w, b
			if l.write(b, l.call.req) {
				return total
			}
			return -1
		}
	}
	l.idle = append(l.idle, b)
	return total
}

// serveHTTP serves the POST at the start of p: it returns the bytes the
// request took, 0 when it is incomplete, -1 to close c.
func (l *rawLoop) serveHTTP(c *rawConn, p []byte) int {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return 0
	}
	line, rest, _ := bytes.Cut(p[:end], []byte("\r\n"))
	method, line, _ := bytes.Cut(line, []byte(" "))
	target, proto, _ := bytes.Cut(line, []byte(" "))
	if string(method) != http.MethodPost || string(proto) != "HTTP/1.1" {
		return -1
	}
	if c.hdr == nil {
		c.hdr = http.Header{}
	}
	clear(c.hdr)
	c.vals = c.vals[:0]
	length, host := -1, ""
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return -1
		}
		key := l.canonical(name)
		v := string(bytes.TrimSpace(value))
		c.vals = append(c.vals, v)
		c.hdr[key] = c.vals[len(c.vals)-1 : len(c.vals) : len(c.vals)]
		switch key {
		case "Content-Length":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > floorMaxPending {
				return -1
			}
			length = n
		case "Host":
			host = v
		}
	}
	if length < 0 {
		return -1 // the generator always sends a length
	}
	total := end + 4 + length
	if len(p) < total {
		return 0
	}
	uri := string(target)
	c.url = url.URL{Path: uri}
	c.body.Reset(p[end+4 : total])
	c.req = http.Request{Method: http.MethodPost, URL: &c.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: c.hdr, Host: host, RequestURI: uri, ContentLength: int64(length), Body: &c.body}
	var who sigv4.Identity
	if err := l.verifier.Check(&c.req, &who); err != nil {
		return l.answer(c, "403 Forbidden", total)
	}
	id, ok := strings.CutPrefix(uri, "/"+stage+"/@connections/")
	dst := l.byID[id]
	if !ok || dst == nil {
		return l.answer(c, "410 Gone", total)
	}
	body, _ := sigv4.Body(&c.req)
	l.out = appendTextFrame(l.out[:0], body)
	if !l.write(dst, l.out) {
		return l.answer(c, "410 Gone", total)
	}
	l.ops.Add(1)
	return l.answer(c, "200 OK", total)
}

// answer writes an empty answer with status and returns n, or -1 when the
// write failed.
func (l *rawLoop) answer(c *rawConn, status string, n int) int {
	now := time.Now()
	if s := now.Unix(); s != l.dateSec {
		l.dateSec, l.date = s, now.UTC().AppendFormat(l.date[:0], http.TimeFormat)
	}
	b := append(l.out[:0], "HTTP/1.1 "...)
	b = append(b, status...)
	b = append(b, "\r\nDate: "...)
	b = append(b, l.date...)
	l.out = append(b, "\r\nContent-Length: 0\r\n\r\n"...)
	if !l.write(c, l.out) {
		return -1
	}
	return n
}

// canonical returns name's canonical form, remembered for the next
// request (up to 64 names).
func (l *rawLoop) canonical(name []byte) string {
	if k, ok := l.names[string(name)]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(string(name))
	if len(l.names) < 64 {
		l.names[string(name)] = k
	}
	return k
}
