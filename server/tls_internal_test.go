package server

import (
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/gateway"
)

// TestProxyHeaderKeepsPlainSockets: a connection whose PROXY header was
// read is still the socket underneath (proxiedTCPConn, a syscall.Conn with
// nothing buffered), with the client's address and the bytes after the
// header unread; where the connection cannot be peeked (a pipe), the
// header is read a byte at a time and nothing past it is consumed.
func TestProxyHeaderKeepsPlainSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	proxies, _ := gateway.ParseProxies([]string{"127.0.0.1"})
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Write([]byte("PROXY TCP4 203.0.113.7 192.0.2.1 50123 443\r\nGET")); err != nil {
		t.Fatal(err)
	}
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	_ = accepted.SetReadDeadline(time.Now().Add(10 * time.Second))
	c, err := prepareProxy(proxies, slog.New(slog.DiscardHandler), accepted)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*proxiedTCPConn); !ok {
		t.Fatalf("connection is %T, want *proxiedTCPConn", c)
	}
	if _, ok := c.(syscall.Conn); !ok {
		t.Fatal("the socket is hidden")
	}
	if got := c.RemoteAddr().String(); got != "203.0.113.7:50123" {
		t.Fatalf("RemoteAddr %s", got)
	}
	b := make([]byte, 3)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "GET" {
		t.Fatalf("read %q, %v", b, err)
	}

	a, z := net.Pipe()
	defer a.Close()
	go func() { _, _ = z.Write([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\nrest")) }()
	pc, err := readProxyHeader(a)
	if err != nil || pc.RemoteAddr().String() != "[2001:db8::1]:1" {
		t.Fatalf("readProxyHeader over a pipe: %v, %v", pc, err)
	}
	b = make([]byte, 4)
	if _, err := io.ReadFull(pc, b); err != nil || string(b) != "rest" {
		t.Fatalf("after the header read %q, %v", b, err)
	}
}
