package cluster_test

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
)

// answerDrop is a TCP proxy between NATS clients and their server that
// loses the answers to chosen requests, and only those: everything else
// flows both ways (heartbeats, calls, other requests' answers). Its rules
// apply one after the other: the first waits for a publish on its subject
// (after letting skip of them through), notes the request's reply
// subject and drops the server's message to it; then the next rule
// waits. A request so dropped reached the server, which applied it: its
// answer is lost on the way, as when a JetStream leader answers too late.
type answerDrop struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	rules   []dropRule
	reply   []byte // the reply subject whose message is dropped next
	dropped int    // answers dropped
	pubs    map[string]int
}

// dropRule drops the answer to a publish on subject, after skip of them.
type dropRule struct {
	subject string
	skip    int
}

func newAnswerDrop(t *testing.T, target string) *answerDrop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &answerDrop{ln: ln, target: target, pubs: map[string]int{}}
	servePairs(t, ln, target, func(c, d net.Conn) {
		go p.up(c, d)
		go p.down(d, c)
	})
	return p
}

// servePairs accepts connections on ln, dials target for each and hands
// both to start; the test's end closes ln and every pair.
func servePairs(t *testing.T, ln net.Listener, target string, start func(client, server net.Conn)) {
	var conns sync.Map
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			conns.Store(c, d)
			start(c, d)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(c, d any) bool {
			c.(net.Conn).Close()
			d.(net.Conn).Close()
			return true
		})
	})
}

func (p *answerDrop) url() string { return "nats://" + p.ln.Addr().String() }

// arm adds rules, applied after those already there.
func (p *answerDrop) arm(rules ...dropRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, rules...)
}

// count is how many answers were dropped.
func (p *answerDrop) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// published is how many requests the clients published on subject.
func (p *answerDrop) published(subject string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pubs[subject]
}

// up copies the client's bytes to the server, line by line as far as the
// control lines go, noting the reply subject of a publish a rule matches
// before the publish goes out.
func (p *answerDrop) up(c, d net.Conn) {
	defer d.Close()
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := c.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			end := frameEnd(buf, "PUB ", "HPUB ")
			if end < 0 {
				break
			}
			p.watch(buf[:end])
			if _, werr := d.Write(buf[:end]); werr != nil {
				return
			}
			buf = buf[end:]
		}
		if err != nil {
			return
		}
	}
}

// watch looks at one client frame: a publish the first rule matches has
// its reply subject noted.
func (p *answerDrop) watch(frame []byte) {
	line, _, _ := bytes.Cut(frame, []byte("\r\n"))
	f := bytes.Fields(line)
	if len(f) < 4 || !(string(f[0]) == "PUB" || string(f[0]) == "HPUB") {
		return
	}
	if string(f[0]) == "HPUB" && len(f) < 5 {
		return // no reply subject
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pubs[string(f[1])]++
	if len(p.rules) == 0 || p.reply != nil || string(f[1]) != p.rules[0].subject {
		return
	}
	if p.rules[0].skip > 0 {
		p.rules[0].skip--
		return
	}
	p.reply = bytes.Clone(f[2])
	p.rules = p.rules[1:]
}

// down copies the server's bytes to the client, frame by frame, leaving
// out the message to the reply subject noted.
func (p *answerDrop) down(d, c net.Conn) { filterFrames(d, c, p.drop, "MSG ", "HMSG ") }

// filterFrames copies from's bytes to to, frame by frame as far as the
// ops named go (those whose payload frameEnd counts), leaving out the
// frames drop reports; it closes to when from ends.
func filterFrames(from, to net.Conn, drop func(frame []byte) bool, ops ...string) {
	defer to.Close()
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := from.Read(chunk)
		buf = append(buf, chunk[:n]...)
		var out []byte
		for {
			end := frameEnd(buf, ops...)
			if end < 0 {
				break
			}
			if !drop(buf[:end]) {
				out = append(out, buf[:end]...)
			}
			buf = buf[end:]
		}
		if len(out) > 0 {
			if _, werr := to.Write(out); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// drop reports whether the server's frame is the message to the reply
// subject noted (and forgets it: one answer per rule).
func (p *answerDrop) drop(frame []byte) bool {
	line, _, _ := bytes.Cut(frame, []byte("\r\n"))
	f := bytes.Fields(line)
	if len(f) < 3 || !(string(f[0]) == "MSG" || string(f[0]) == "HMSG") {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reply == nil || !bytes.Equal(f[1], p.reply) {
		return false
	}
	p.reply = nil
	p.dropped++
	return true
}

// frameEnd is the length of the first whole NATS protocol frame in buf,
// or -1: a control line, and for the ops named (those that carry a
// payload: "PUB ", "HPUB " from a client, "MSG ", "HMSG " from a server)
// the payload its last field counts and its CRLF.
func frameEnd(buf []byte, ops ...string) int {
	i := bytes.Index(buf, []byte("\r\n"))
	if i < 0 {
		return -1
	}
	end := i + 2
	for _, op := range ops {
		if !bytes.HasPrefix(buf, []byte(op)) {
			continue
		}
		f := bytes.Fields(buf[:i])
		size, err := strconv.Atoi(string(f[len(f)-1]))
		if err != nil {
			return end // not NATS as expected: passed on as a line
		}
		end += size + 2
		if end > len(buf) {
			return -1
		}
	}
	return end
}
