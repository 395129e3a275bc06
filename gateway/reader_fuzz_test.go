package gateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"unicode/utf8"
)

// fuzzGateways are gateways with no routes (every message is answered with
// the Forbidden frame), one per binaryFrames policy, shared by the fuzz
// iterations of a process.
var fuzzGateways = sync.OnceValues(func() (*Gateway, *Gateway) {
	mk := func(binary string) *Gateway {
		g, err := New(Config{BinaryFrames: binary}, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			panic(err)
		}
		return g
	}
	return mk("reject"), mk("base64")
})

// maskedFrame encodes a client frame (masked, key 1 2 3 4).
func maskedFrame(first byte, payload []byte) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

func cat(frames ...[]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	return b
}

// FuzzReader feeds any byte stream to a connection's reader, as a client
// on a real loopback socket would, and checks that the reader never
// panics, allocates within the message limits whatever lengths the
// headers claim, sends only valid frames (text frames in UTF-8), and
// closes with the code RFC 6455 and API Gateway's limits call for (1002,
// 1003, 1007, 1009, or the echo of the client's close), or not at all when
// the stream ends first.
func FuzzReader(f *testing.F) {
	big := make([]byte, 32*1024)
	for i := range big {
		big[i] = 'a'
	}
	seeds := [][]byte{
		nil,
		maskedFrame(0x81, []byte(`{"action":"x"}`)),
		cat(maskedFrame(0x89, []byte("ping")), maskedFrame(0x8a, nil), maskedFrame(0x88, []byte{0x03, 0xe8, 'b', 'y', 'e'})),
		cat(maskedFrame(0x01, []byte("frag")), maskedFrame(0x89, nil), maskedFrame(0x80, []byte("ment"))),
		maskedFrame(0x81, []byte{0xff, 0xfe}),
		maskedFrame(0x82, []byte{0, 1, 2}),
		maskedFrame(0x8b, nil),
		maskedFrame(0x83, []byte("x")),
		maskedFrame(0xc1, []byte("x")),
		{0x81, 0x01, 'x'},
		{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
		{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4},
		maskedFrame(0x81, append(big, 'b')),
		cat(maskedFrame(0x01, big), maskedFrame(0x00, big), maskedFrame(0x00, big), maskedFrame(0x00, big), maskedFrame(0x80, []byte("c"))),
		maskedFrame(0x88, []byte{0x03}),
		maskedFrame(0x88, []byte{0x03, 0xe7}),
		maskedFrame(0x88, nil),
		maskedFrame(0x09, nil),
	}
	for _, s := range seeds {
		f.Add(s, false)
	}
	f.Add(maskedFrame(0x82, []byte{0, 1, 2}), true)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = ln.Close() })

	f.Fuzz(func(t *testing.T, stream []byte, base64 bool) {
		reject, b64 := fuzzGateways()
		g := reject
		if base64 {
			g = b64
		}
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}

		var before runtime.MemStats
		runtime.ReadMemStats(&before)

		c := g.newConn(server, session{connectionID: newID(g.node), connectedAt: stamp()})
		if err := g.hub.Register(c); err != nil {
			t.Fatal(err)
		}
		g.conns.Add(1)
		g.connWG.Add(1)
		done := make(chan struct{})
		go func() { defer close(done); c.readLoop() }()

		out := make(chan []byte, 1)
		go func() { b, _ := io.ReadAll(client); out <- b }()
		_, _ = client.Write(stream) // the server may close first
		_ = client.(*net.TCPConn).CloseWrite()
		<-done
		got := <-out

		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		// Each frame costs a little (a message's goroutine, its answer);
		// nothing may be sized by a length a header claims.
		if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20+uint64(64*len(stream)) {
			t.Fatalf("%d bytes allocated for a %d-byte stream", n, len(stream))
		}

		code := serverClose(t, got)
		if want := expectClose(stream, base64); code != want {
			t.Fatalf("server closed with %d, want %d; stream of %d bytes starts % x", code, want, len(stream), stream[:min(len(stream), 64)])
		}
	})
}

// serverClose parses what the server sent (unmasked frames) and returns
// the code of its close frame: 1005 for one without a code, 0 for none.
func serverClose(t *testing.T, b []byte) int {
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("truncated frame header % x", b)
		}
		op, n, hl := b[0]&0x0f, int(b[1]&0x7f), 2
		if b[0]&0x70 != 0 || b[0]&0x80 == 0 || b[1]&0x80 != 0 {
			t.Fatalf("bad server frame header % x", b[:2])
		}
		switch n {
		case 126:
			n, hl = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, hl = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if len(b) < hl+n {
			t.Fatalf("truncated server frame")
		}
		p := b[hl : hl+n]
		b = b[hl+n:]
		switch op {
		case 0x1:
			if !utf8.Valid(p) {
				t.Fatalf("text frame with invalid UTF-8")
			}
		case 0xa: // pong
		case 0x8:
			if len(b) > 0 {
				t.Fatalf("%d bytes after the close frame", len(b))
			}
			if len(p) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(p))
		default:
			t.Fatalf("server sent opcode %#x", op)
		}
	}
	return 0
}

// expectClose walks a client stream as RFC 6455 and API Gateway's limits
// read it, independently of the reader, and returns the close code the
// server must send: 0 when the stream ends before anything calls for one.
func expectClose(s []byte, base64 bool) int {
	inMsg, text := false, false
	var msg []byte
	for {
		if len(s) < 2 {
			return 0
		}
		fin, rsv, op, masked := s[0]&0x80 != 0, s[0]&0x70, s[0]&0x0f, s[1]&0x80 != 0
		n, hl := uint64(s[1]&0x7f), 2
		switch n {
		case 126:
			hl = 4
		case 127:
			hl = 10
		}
		if masked {
			hl += 4
		}
		if len(s) < hl {
			return 0
		}
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(s[2:]))
		case 127:
			n = binary.BigEndian.Uint64(s[2:])
			if n>>63 != 0 {
				return 1002
			}
		}
		if rsv != 0 || !masked {
			return 1002
		}
		mask := s[hl-4 : hl]
		s = s[hl:]
		control := op >= 0x8
		switch {
		case op == 0x8 || op == 0x9 || op == 0xa:
			if !fin || n > 125 {
				return 1002
			}
		case op == 0x0:
			if !inMsg {
				return 1002
			}
		case op == 0x1 || op == 0x2:
			if inMsg {
				return 1002
			}
			if op == 0x2 && !base64 {
				return 1003
			}
		default:
			return 1002
		}
		if !control && (n > 32*1024 || uint64(len(msg))+n > 128*1024) {
			return 1009
		}
		if uint64(len(s)) < n {
			return 0
		}
		p := make([]byte, n)
		for i := range p {
			p[i] = s[i] ^ mask[i%4]
		}
		s = s[n:]
		switch op {
		case 0x8:
			switch {
			case len(p) == 0:
				return 1005
			case len(p) == 1:
				return 1002
			}
			code := int(binary.BigEndian.Uint16(p))
			if !utf8.Valid(p[2:]) || !validCloseCode(code) {
				return 1002
			}
			return code
		case 0x9, 0xa:
			continue
		case 0x1, 0x2:
			inMsg, text, msg = true, op == 0x1, nil
		}
		msg = append(msg, p...)
		if fin {
			if text && !utf8.Valid(msg) {
				return 1007
			}
			inMsg = false
		}
	}
}

// BenchmarkReadHeader: parsing a client frame header from the pooled
// reader, which must not allocate.
func BenchmarkReadHeader(b *testing.B) {
	frame := maskedFrame(0x81, bytes.Repeat([]byte("x"), 200))
	r := bytes.NewReader(frame)
	br := bufio.NewReaderSize(r, readBufferSize)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(frame)
		br.Reset(r)
		if _, err := readHeader(br); err != nil {
			b.Fatal(err)
		}
	}
}
