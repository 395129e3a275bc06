//go:build linux

package rawsys

import (
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestAcceptReadWrite: a connection accepted with Accept4 reports the
// client's address and port (IPv4 and IPv6), and ReadNB, WriteNB and
// WritevNB (both paths) and PeekEmpty work on it; ReadNB reports again on
// an empty socket and io.EOF once the client has closed.
func TestAcceptReadWrite(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v (skipped)", addr, err)
			continue
		}
		defer ln.Close()
		cl, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var (
			fd  int
			sa  syscall.Sockaddr
			aer error
		)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if err := rc.Control(func(lfd uintptr) {
				fd, sa, aer = Accept4(int(lfd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			}); err != nil {
				t.Fatal(err)
			}
			if aer != syscall.EAGAIN || time.Now().After(deadline) {
				break
			}
		}
		if aer != nil {
			t.Fatal(aer)
		}
		defer syscall.Close(fd)
		want := netip.MustParseAddrPort(cl.LocalAddr().String())
		var got netip.AddrPort
		switch sa := sa.(type) {
		case *syscall.SockaddrInet4:
			got = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
		case *syscall.SockaddrInet6:
			got = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
		}
		if got != want {
			t.Errorf("%s: Accept4 gave %v, want %v", addr, got, want)
		}
		if !PeekEmpty(fd) {
			t.Errorf("%s: PeekEmpty false on a socket with nothing to read", addr)
		}
		var b [16]byte
		if n, again, err := ReadNB(fd, b[:]); n != 0 || !again || err != nil {
			t.Errorf("%s: ReadNB of an empty socket = %d, %v, %v; want 0, again", addr, n, again, err)
		}
		if _, err := cl.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		n := 0
		for deadline := time.Now().Add(10 * time.Second); n == 0 && time.Now().Before(deadline); {
			m, again, err := ReadNB(fd, b[:])
			if again {
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			n = m
		}
		if string(b[:n]) != "ping" {
			t.Errorf("%s: ReadNB gave %q", addr, b[:n])
		}
		for _, path := range []Path{Raw, Sys} {
			if n, again, err := WriteNB(fd, []byte("po"), path); n != 2 || again || err != nil {
				t.Fatalf("%s: WriteNB(%v) = %d, %v, %v", addr, path, n, again, err)
			}
			iov := []syscall.Iovec{{Base: &[]byte("n")[0]}, {Base: &[]byte("g")[0]}}
			iov[0].SetLen(1)
			iov[1].SetLen(1)
			if n, again, err := WritevNB(fd, iov, path); n != 2 || again || err != nil {
				t.Fatalf("%s: WritevNB(%v) = %d, %v, %v", addr, path, n, again, err)
			}
		}
		_ = cl.SetReadDeadline(time.Now().Add(10 * time.Second))
		got4 := make([]byte, 0, 8)
		for len(got4) < 8 {
			m, err := cl.Read(b[:])
			if err != nil {
				t.Fatal(err)
			}
			got4 = append(got4, b[:m]...)
		}
		if string(got4) != "pongpong" {
			t.Errorf("%s: the client read %q", addr, got4)
		}
		_ = cl.Close()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			_, again, err := ReadNB(fd, b[:])
			if again && time.Now().Before(deadline) {
				continue
			}
			if err != io.EOF {
				t.Errorf("%s: ReadNB after the client closed: %v, want io.EOF", addr, err)
			}
			break
		}
	}
}
