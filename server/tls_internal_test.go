package server

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/wsgate/wsgate/tlsca"
)

// TestSniffListenerKeepsPlainSockets: plaintext connections come out of
// the sniffer as the accepted *net.TCPConn, with their first byte still
// unread (the gateway's direct-write and MSG_PEEK paths need the socket),
// and TLS ones as *tls.Conn.
func TestSniffListenerKeepsPlainSockets(t *testing.T) {
	ca, err := tlsca.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := ca.Leaves([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newSniffListener(inner, &tls.Config{GetCertificate: leaves.GetCertificate})
	defer ln.Close()

	plain, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*net.TCPConn); !ok {
		t.Fatalf("plaintext connection is %T, want *net.TCPConn", c)
	}
	b := make([]byte, 3)
	if _, err := c.Read(b); err != nil || string(b) != "GET" {
		t.Fatalf("read %q, %v: the sniffed byte was consumed", b, err)
	}
	c.Close()

	go func() {
		tc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool()})
		if err == nil {
			tc.Close()
		}
	}()
	c, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*tls.Conn); !ok {
		t.Fatalf("TLS connection is %T, want *tls.Conn", c)
	}
	ln.Close()
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}
