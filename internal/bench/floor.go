package bench

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// The machine floors of the handshake and the signed POST (role "floor",
// -kind hs-go, hs-raw or post). Each does the work the target
// counts for one operation and nothing else, so wsgate's figure beside it
// says how far wsgate is from what a Go server can do on this machine:
//
//   - hs-go, the idiomatic floor: net.Listener, a goroutine per
//     connection, gobwas/ws.Upgrade (reads the head, checks it, computes
//     Sec-WebSocket-Accept, writes the 101), then that goroutine stays
//     parked in Read, so a frame would be noticed (the descriptor sits in
//     Go's poller from the accept on).
//   - hs-raw, the least a Go program can do: one goroutine on one epoll,
//     a listener with TCP_DEFER_ACCEPT (accept wakes when the head is
//     there); accept4 (non-blocking), read of the head, the same checks and
//     the accept key, one write of the 101, epoll_ctl ADD; the connection
//     stays in the epoll set, its bytes read and dropped.
//   - post: the hs-raw loop serving both WebSocket connections (answering
//     {"action":"whoami"} with the connection's id) and keep-alive HTTP/1.1
//     POST /{stage}/@connections/{id}: parse the head and body, verify the
//     SigV4 signature with the repository's sigv4.Verifier, write one text
//     frame to the connection and the 200 answer (Date, Content-Length: 0,
//     as wsgate's), each with one write.
//
// With -connect URI (the handshake floors), each handshake first makes one
// HTTP/1.1 keep-alive round trip, POST URI with a fixed $connect-sized JSON
// body, to the bench's backend, and writes the 101 only on a 200.
//
// What the floors leave out, that wsgate does: routing, the connection
// registry (ids, groups) beyond a map from id to socket, access logs and
// metrics, timeouts and idle closes, building the $connect event (the
// floors send a fixed body) and parsing the integration's answer beyond its
// status, outbound queues and slow-consumer handling (a floor's write that
// does not complete closes the connection), frame validation beyond the
// header (the handshake floors drop whatever a client sends), ping/pong and
// close handshakes. What they keep is what the wire needs: a valid 101 for
// a valid upgrade only, a verified signature before any frame goes out, a
// frame written whole, and an answer per request.

// floorStats is what a floor's side port reports at /stats: its
// operations and, for the raw loop, the system calls it made.
type floorStats struct {
	Ops      int64 `json:"ops"` // handshakes completed (101 written) or POSTs answered 200
	Syscalls int64 `json:"syscalls"`
}

// connectBody is the body the floors POST to the $connect backend: about
// the size of the event wsgate sends (the event's JSON is not built).
var connectBody = []byte(`{"headers":{"Host":"127.0.0.1","Upgrade":"websocket","Connection":"Upgrade","Sec-WebSocket-Key":"dGhlIHNhbXBsZSBub25jZQ==","Sec-WebSocket-Version":"13"},"requestContext":{"routeKey":"$connect","eventType":"CONNECT","connectionId":"AAAAAAAAAAAAAAAA","stage":"dev","requestTimeEpoch":0,"identity":{"sourceIp":"127.0.0.1"}},"isBase64Encoded":false}`)

// connectCall is the $connect round trip of a handshake floor: the whole
// keep-alive request, sent to the backend at host:port.
type connectCall struct {
	req  []byte
	host string
}

// newConnectCall builds the call to uri (http://host:port/path).
func newConnectCall(uri string) (*connectCall, error) {
	rest, ok := strings.CutPrefix(uri, "http://")
	if !ok {
		return nil, fmt.Errorf("-connect %q: want http://host:port/path", uri)
	}
	host, path, _ := strings.Cut(rest, "/")
	b := fmt.Appendf(nil, "POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, host, len(connectBody))
	return &connectCall{req: append(b, connectBody...), host: host}, nil
}

// floorRole runs a floor until stdin closes. It announces its address and
// a side port with /stats and net/http/pprof.
func floorRole(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	kind := fs.String("kind", "hs-raw", "hs-go, hs-raw or post")
	connect := fs.String("connect", "", "handshakes: POST here before each 101 (the bench backend's /connect)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var call *connectCall
	if *connect != "" {
		var err error
		if call, err = newConnectCall(*connect); err != nil {
			return err
		}
	}
	var (
		addr  string
		stats func() floorStats
		err   error
	)
	switch *kind {
	case "hs-go":
		addr, stats, err = goHandshakeFloor(call)
	case "hs-raw", "post":
		addr, stats, err = rawFloor(*kind == "post", call)
	default:
		err = fmt.Errorf("unknown floor kind %q", *kind)
	}
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(stats()) })
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(sln, mux) }()
	printJSON(announce{Addr: addr, Debug: sln.Addr().String()})
	waitStdin()
	return nil
}

// goHandshakeFloor is floor hs-go; call is the $connect round trip or nil.
func goHandshakeFloor(call *connectCall) (string, func() floorStats, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var ops atomic.Int64
	var pool *connPool
	if call != nil {
		pool = &connPool{dial: func() (net.Conn, error) { return net.DialTimeout("tcp", call.host, 10*time.Second) }}
	}
	u := ws.Upgrader{}
	if pool != nil {
		u.OnBeforeUpgrade = func() (ws.HandshakeHeader, error) {
			h := pool.get()
			status, err := h.roundTrip(call.req)
			pool.put(h)
			if err == nil && status != http.StatusOK {
				err = errors.New("$connect answered " + strconv.Itoa(status))
			}
			return nil, err
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond) // EMFILE: wait for a close
				continue
			}
			go func() {
				defer c.Close()
				if _, err := u.Upgrade(c); err != nil {
					return
				}
				ops.Add(1)
				var b [128]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() floorStats { return floorStats{Ops: ops.Load()} }, nil
}

// wsGUID is the key suffix of RFC 6455, section 1.3.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgradeHead checks an upgrade request head (request line and header
// lines, CRLF ends, without the blank line) as RFC 6455 section 4.2.1
// requires, and returns the client's key.
func upgradeHead(head []byte) (key []byte, ok bool) {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if !bytes.HasPrefix(line, []byte("GET ")) || !bytes.HasSuffix(line, []byte(" HTTP/1.1")) {
		return nil, false
	}
	var upgrade, connection, version, host bool
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return nil, false
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			host = true
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(value, []byte("websocket"))
		case bytes.EqualFold(name, []byte("Connection")):
			connection = bytes.Contains(bytes.ToLower(value), []byte("upgrade"))
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Version")):
			version = string(value) == "13"
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Key")):
			key = value
		}
	}
	return key, host && upgrade && connection && version && len(key) == 24
}

// appendSwitching appends the 101 answer to key.
func appendSwitching(b, key []byte) []byte {
	var in [24 + len(wsGUID)]byte
	copy(in[copy(in[:], key):], wsGUID)
	sum := sha1.Sum(in[:])
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = base64.StdEncoding.AppendEncode(b, sum[:])
	return append(b, "\r\n\r\n"...)
}

// statsOf reads a floor's /stats at its side port.
func statsOf(side string) (floorStats, error) {
	resp, err := http.Get("http://" + side + "/stats")
	if err != nil {
		return floorStats{}, err
	}
	defer resp.Body.Close()
	var s floorStats
	return s, json.NewDecoder(resp.Body).Decode(&s)
}
