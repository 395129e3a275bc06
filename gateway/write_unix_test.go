//go:build unix

package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// loopbackPair is a connected TCP pair on 127.0.0.1.
func loopbackPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestWriteAllWritesEveryBuffer: more buffers than one writev takes, more
// bytes than the socket buffers hold, all arrive in order.
func TestWriteAllWritesEveryBuffer(t *testing.T) {
	c, s := loopbackPair(t)
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	var bufs net.Buffers
	for i := range 3*maxIOV + 7 {
		b := bytes.Repeat([]byte{byte(i)}, 1+i%700)
		want = append(want, b...)
		bufs = append(bufs, b)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(c, int64(len(want))))
		got <- b
	}()
	var iov iovecs
	n, err := writeAll(s, rc, &bufs, &iov)
	if err != nil || n != int64(len(want)) || len(bufs) != 0 {
		t.Fatalf("writeAll = %d, %v with %d buffers left; want %d, nil, 0", n, err, len(bufs), len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("read %d bytes, not the %d written in order", len(b), len(want))
	}
}

// TestWriteAllTimesOut: a peer that does not read makes writeAll return a
// timeout with what it wrote consumed from the buffers.
func TestWriteAllTimesOut(t *testing.T) {
	_, s := loopbackPair(t)
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var bufs net.Buffers
	total := 0
	for range 64 {
		b := make([]byte, 256<<10)
		bufs = append(bufs, b)
		total += len(b)
	}
	_ = s.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	var iov iovecs
	n, err := writeAll(s, rc, &bufs, &iov)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) {
		t.Fatalf("writeAll error = %v; want a timeout", err)
	}
	left := 0
	for _, b := range bufs {
		left += len(b)
	}
	if n <= 0 || int(n)+left != total {
		t.Fatalf("wrote %d with %d left of %d", n, left, total)
	}
}
