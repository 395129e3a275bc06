//go:build linux

package rawsys

import (
	"net/netip"
	"syscall"
	"unsafe"
)

// EpollCtl is epoll_ctl(2).
func EpollCtl(epfd, op, fd int, ev *syscall.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// EpollWaitNow is epoll_wait(2) with a zero timeout.
func EpollWaitNow(epfd int, events []syscall.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Accept4 is accept4(2); the address is nil for a family other than
// IPv4 and IPv6.
func Accept4(fd, flags int) (int, syscall.Sockaddr, error) {
	nfd, peer, zone, err := Accept4Peer(fd, flags)
	switch {
	case err != nil || !peer.IsValid():
		return nfd, nil, err
	case peer.Addr().Is4():
		return nfd, &syscall.SockaddrInet4{Port: int(peer.Port()), Addr: peer.Addr().As4()}, nil
	}
	return nfd, &syscall.SockaddrInet6{Port: int(peer.Port()), ZoneId: zone, Addr: peer.Addr().As16()}, nil
}

// Accept4Peer is accept4(2) with the peer's address as a value, without
// an allocation: its IPv6 scope id in zone, and the zero AddrPort for a
// family other than IPv4 and IPv6.
func Accept4Peer(fd, flags int) (nfd int, peer netip.AddrPort, zone uint32, err error) {
	if raceEnabled {
		nfd, sa, err := syscall.Accept4(fd, flags)
		switch sa := sa.(type) {
		case *syscall.SockaddrInet4:
			peer = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
		case *syscall.SockaddrInet6:
			peer, zone = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), sa.ZoneId
		}
		return nfd, peer, zone, err
	}
	var rsa syscall.RawSockaddrAny
	l := uint32(syscall.SizeofSockaddrAny)
	r, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)), uintptr(flags), 0, 0)
	if e != 0 {
		return -1, peer, 0, e
	}
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		peer = netip.AddrPortFrom(netip.AddrFrom4(p.Addr), uint16(port(p.Port)))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		peer, zone = netip.AddrPortFrom(netip.AddrFrom16(p.Addr), uint16(port(p.Port))), p.Scope_id
	}
	return int(r), peer, zone, nil
}

// port reads a port in network byte order.
func port(p uint16) int {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return int(b[0])<<8 | int(b[1])
}

// PeekEmpty reports whether a socket has nothing to read and no error
// (a MSG_PEEK|MSG_DONTWAIT recv that would block).
func PeekEmpty(fd int) bool {
	var b [1]byte
	if raceEnabled {
		_, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err == syscall.EAGAIN
	}
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e == syscall.EAGAIN
}
