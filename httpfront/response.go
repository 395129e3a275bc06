package httpfront

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// maxBuffered is how much of a response body the front holds to write
// with its head in one write; a longer body (or a Flush) is sent chunked
// from there on.
const maxBuffered = 64 << 10

// response is the http.ResponseWriter of one request: it collects the
// status, headers and body and writes them in one write when the handler
// returns (Content-Length, Date and a sniffed Content-Type added as
// net/http adds them).
type response struct {
	c           *conn
	req         *http.Request
	header      http.Header // kept between a connection's requests, cleared
	status      int
	wroteHeader bool
	hijacked    bool
	inline      bool // served on an accept loop (ServedInline)
	chunking    bool // the head is out: the rest goes as chunks
	closing     bool // decided when the head went out early
	body        []byte
	err         error // a failed write: the connection closes
	// finished is when finish wrote the whole response (its Date), zero
	// when the head went out earlier (chunks).
	finished time.Time
}

func (w *response) reset(c *conn, r *http.Request) {
	h := w.header
	clear(h)
	b := w.body[:0]
	if cap(b) > bufSize {
		b = nil // a large answer's buffer is not kept by an idle connection
	}
	*w = response{c: c, req: r, header: h, body: b}
}

// ServedInline reports whether w is the front's writer of a request
// served on an accept loop (Server.Inline claimed it): a handler that
// finds it must wait on something other than the CPU (a backend call)
// should answer at once instead, since its loop accepts nothing while
// it waits. A writer wrapped by middleware is not the front's: false.
func ServedInline(w http.ResponseWriter) bool {
	rw, ok := w.(*response)
	return ok && rw.inline
}

// SetBodyTimeout is http.NewResponseController(w).SetReadDeadline of
// time.Now().Add(d) for the front's writer, or one wrapping it (Unwrap,
// as http.ResponseController follows), with d > 0; but the clock is read
// when the request's body first reads the socket, which is also when the
// front applies a deadline: a body that came with its head (every small
// POST) costs no clock read. It reports false, and does nothing, for any
// other writer or a d that is not positive: the caller then sets the
// deadline itself.
func SetBodyTimeout(w http.ResponseWriter, d time.Duration) bool {
	if d <= 0 {
		return false
	}
	rw, ok := front(w)
	if !ok {
		return false
	}
	rw.c.readDeadline, rw.c.readTimeout, rw.c.readDeadlineSet = time.Time{}, d, true
	return true
}

// front returns the front's writer that w is or wraps (Unwrap).
func front(w http.ResponseWriter) (*response, bool) {
	for {
		switch x := w.(type) {
		case *response:
			return x, true
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil, false
		}
	}
}

// ReleaseHead tells the front that nothing the handler got from the
// request's head (method, target, Host, header names and values, and
// strings cut from them) is kept after the handler returns, by it or a
// goroutine it started: the connection's next request head may then be
// read into the same memory, which those strings point into, instead of
// new memory. A handler that keeps any of them must not call it. w is
// the front's writer or one wrapping it (Unwrap); for any other, or when
// the server's ReleaseHeads does not allow it, it does nothing.
func ReleaseHead(w http.ResponseWriter) {
	x, ok := front(w)
	if !ok {
		return
	}
	c := x.c
	if box := c.rq; box != nil && x.req == &box.req && c.srv.ReleaseHeads != nil && c.srv.ReleaseHeads(x.req) {
		box.released = true
	}
}

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header, 4)
	}
	return w.header
}

func (w *response) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("httpfront: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// An interim response goes out at once, as net/http sends it.
		b := appendStatus(nil, code)
		b = appendHeader(b, w.header)
		b = append(b, "\r\n"...)
		w.write(b)
		return
	}
	w.wroteHeader, w.status = true, code
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.chunking {
		w.writeChunk(p)
		return len(p), w.err
	}
	w.body = append(w.body, p...)
	if len(w.body) > maxBuffered {
		w.startChunking()
	}
	return len(p), w.err
}

// WriteString lets io.WriteString skip a conversion.
func (w *response) WriteString(s string) (int, error) {
	if !w.chunking && !w.hijacked && w.err == nil && len(w.body)+len(s) <= maxBuffered && (w.wroteHeader && bodyAllowed(w.status) || !w.wroteHeader) {
		if !w.wroteHeader {
			w.WriteHeader(http.StatusOK)
		}
		w.body = append(w.body, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// Flush sends what is buffered, chunked.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error (http.ResponseController).
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.chunking {
		w.startChunking()
	}
	return w.err
}

// SetReadDeadline sets the deadline of the request body's reads
// (http.ResponseController); it is applied when the body next reads the
// socket, so a body that came with its head costs no deadline change.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.readDeadline, w.c.readTimeout, w.c.readDeadlineSet = t, 0, true
	return nil
}

// SetWriteDeadline sets the socket's write deadline.
func (w *response) SetWriteDeadline(t time.Time) error {
	return w.c.nc.SetWriteDeadline(t)
}

// Hijack is http.Hijacker's: the socket and a reader holding what the
// client sent past the request.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, rest, err := w.HijackBuffered()
	if err != nil {
		return nil, nil, err
	}
	return nc, bufio.NewReadWriter(newBufioReader(nc, rest), bufio.NewWriterSize(nc, 16)), nil
}

// HijackBuffered is Hijack without bufio: the socket (deadlines cleared)
// and the bytes the client sent past the request, nil when none. The
// gateway's upgrade takes it when offered.
func (w *response) HijackBuffered() (net.Conn, []byte, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.chunking {
		return nil, nil, errors.New("httpfront: hijack after the response began")
	}
	w.hijacked = true
	nc, rest := w.c.hijack()
	return nc, rest, nil
}

// closeAfter reports whether the handler asked for the connection to
// close (Connection: close).
func (w *response) closeAfter() bool {
	return w.closing || hasHeaderToken(w.header, "Connection", "close")
}

// finish writes the response (or ends the chunked one).
func (w *response) finish(closing bool) error {
	if w.err != nil {
		return w.err
	}
	if w.chunking {
		w.write([]byte("0\r\n\r\n"))
		return w.err
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.closing = closing
	// One clock read for the Date and the connection's idle deadline.
	w.finished = time.Now()
	// Head and body in one write, the body copied behind the head: as
	// net.Buffers on the front's own socket (fdConn, no writev) they went
	// out as two writes, and a body under the MSS (64 KB on loopback)
	// waited in the kernel behind the unacknowledged head until the
	// client's delayed ACK, 40 ms (a cluster's page of 1,000 members,
	// 19 KB: 44 ms instead of 1 ms, for whole runs at a time).
	head := w.appendHead(w.c.headBuf(), false, w.finished)
	w.write(append(head, w.body...))
	w.c.keepHeadBuf(head)
	return w.err
}

// startChunking sends the head and what is buffered as the first chunk.
func (w *response) startChunking() {
	w.chunking = true
	// Unread body left: the connection cannot be reused (net/http closes
	// then too).
	if w.req.ContentLength > 0 && w.c.body.left > 0 {
		w.closing = true
	}
	w.closing = w.closing || w.req.Close || w.c.srv.closing.Load()
	b := w.appendHead(nil, true, time.Now())
	w.write(b)
	if len(w.body) > 0 {
		w.writeChunk(w.body)
	}
	w.body = nil
}

func (w *response) writeChunk(p []byte) {
	if len(p) == 0 {
		return
	}
	b := strconv.AppendInt(make([]byte, 0, len(p)+20), int64(len(p)), 16)
	b = append(b, "\r\n"...)
	b = append(b, p...)
	b = append(b, "\r\n"...)
	w.write(b)
}

func (w *response) write(b []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.c.nc.Write(b); err != nil {
		w.err = err
	}
}

// appendHead appends the status line and headers.
func (w *response) appendHead(b []byte, chunked bool, now time.Time) []byte {
	b = appendStatus(b, w.status)
	h := w.header
	b = appendHeader(b, h)
	if _, ok := h["Date"]; !ok {
		b = append(b, "Date: "...)
		b = appendDate(b, now)
		b = append(b, "\r\n"...)
	}
	if bodyAllowed(w.status) {
		if _, ok := h["Content-Type"]; !ok && len(w.body) > 0 {
			b = append(b, "Content-Type: "...)
			b = append(b, http.DetectContentType(w.body)...)
			b = append(b, "\r\n"...)
		}
		switch _, haveLen := h["Content-Length"]; {
		case chunked:
			b = append(b, "Transfer-Encoding: chunked\r\n"...)
		case !haveLen:
			b = append(b, "Content-Length: "...)
			b = strconv.AppendInt(b, int64(len(w.body)), 10)
			b = append(b, "\r\n"...)
		}
	}
	if w.closing {
		if _, ok := h["Connection"]; !ok {
			b = append(b, "Connection: close\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

func appendStatus(b []byte, code int) []byte {
	// A signed POST's and DELETE's answers, as the general case spells
	// them, without formatting the number.
	switch code {
	case http.StatusOK:
		return append(b, "HTTP/1.1 200 OK\r\n"...)
	case http.StatusNoContent:
		return append(b, "HTTP/1.1 204 No Content\r\n"...)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if t := http.StatusText(code); t != "" {
		return append(append(b, t...), "\r\n"...)
	}
	b = append(b, "status code "...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, "\r\n"...)
}

// appendHeader appends h's fields sorted by name, as net/http writes
// them: names that are not tokens are dropped, line breaks in values
// become spaces.
func appendHeader(b []byte, h http.Header) []byte {
	var arr [16]string
	keys := arr[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !validName(k) {
			continue
		}
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			start := len(b)
			b = append(b, trimOWS(v)...)
			for i := start; i < len(b); i++ {
				if b[i] == '\r' || b[i] == '\n' {
					b[i] = ' '
				}
			}
			b = append(b, "\r\n"...)
		}
	}
	return b
}

func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !tokenByte(k[i]) {
			return false
		}
	}
	return true
}

func hasHeaderToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}

// bodyAllowed is net/http's bodyAllowedForStatus.
func bodyAllowed(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

// dateCache is the Date header of the current second.
var dateCache atomic.Pointer[dateEntry]

type dateEntry struct {
	sec int64
	b   []byte
}

func appendDate(b []byte, now time.Time) []byte {
	sec := now.Unix()
	if e := dateCache.Load(); e != nil && e.sec == sec {
		return append(b, e.b...)
	}
	e := &dateEntry{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(e)
	return append(b, e.b...)
}

// headBuf is the connection's buffer for a response head, kept between
// its requests.
func (c *conn) headBuf() []byte { return c.head[:0] }

func (c *conn) keepHeadBuf(b []byte) {
	if cap(b) <= bufSize {
		c.head = b[:0]
	}
}
