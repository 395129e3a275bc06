package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// The PROXY protocol (HAProxy's, versions 1 and 2) puts the client's
// address in front of a connection a load balancer forwards. wsgate reads
// it only from trustedProxies peers, when proxyProtocol is on, and reads
// exactly the header's bytes: what follows (TLS, HTTP) stays unread on the
// socket, so the connection keeps its direct-write and MSG_PEEK paths.
// The parser is wsgate's own: github.com/pires/go-proxyproto is not among
// the modules this project takes from the module proxy, and it wraps each
// connection in a buffered reader, which would cost the gateway those
// paths (and a buffer per idle connection). Both versions are small.

// proxyV2Sig is the 12-byte signature of a version 2 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	proxyV1Max = 107 // the longest v1 line, CRLF included (the spec's bound)
	// proxyV2MaxTLV bounds the TLVs of a v2 header (the protocol allows
	// 65535 bytes); load balancers send a few dozen bytes (AWS's VPC
	// endpoint id, HAProxy's TLS details).
	proxyV2MaxTLV = 4096
)

var errNoPeek = errors.New("connection cannot be peeked")

// readProxyHeader reads the PROXY protocol header at the start of c and
// returns c with the client's address as its RemoteAddr. A header that
// names no address (v1 UNKNOWN, v2 LOCAL, a Unix socket) leaves c as it is.
// Anything that is not a valid header is an error: the caller closes c.
func readProxyHeader(c net.Conn) (net.Conn, error) {
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return nil, err
	}
	var (
		addr net.Addr
		err  error
	)
	switch first[0] {
	case 'P':
		addr, err = readProxyV1(c)
	case proxyV2Sig[0]:
		addr, err = readProxyV2(c)
	default:
		return nil, fmt.Errorf("no PROXY protocol header (first byte %#x)", first[0])
	}
	if err != nil || addr == nil {
		return c, err
	}
	if sc, ok := c.(socketConn); ok {
		return &proxiedTCPConn{socketConn: sc, remote: addr}, nil
	}
	return &proxiedConn{Conn: c, remote: addr}, nil
}

// readProxyV1 reads the rest of a v1 line ("PROXY TCP4 192.0.2.1
// 198.51.100.1 56324 443\r\n"), its "P" already read. It peeks for the
// line's end and reads exactly the line; where it cannot peek, it reads a
// byte at a time.
func readProxyV1(c net.Conn) (net.Addr, error) {
	buf := make([]byte, proxyV1Max-1)
	n, err := peek(c, buf)
	var line []byte
	if i := bytes.Index(buf[:n], []byte("\r\n")); err == nil && i >= 0 {
		line = buf[:i+2]
		if _, err := io.ReadFull(c, line); err != nil {
			return nil, err
		}
	} else {
		if line, err = readLine(c, proxyV1Max-1); err != nil {
			return nil, err
		}
	}
	return parseProxyV1("P" + string(line))
}

// readLine reads up to and including "\r\n", at most max bytes, one at a
// time (nothing past the line is consumed).
func readLine(c net.Conn, max int) ([]byte, error) {
	var line []byte
	var b [1]byte
	for len(line) < max {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return nil, err
		}
		line = append(line, b[0])
		if bytes.HasSuffix(line, []byte("\r\n")) {
			return line, nil
		}
	}
	return nil, errors.New("PROXY v1 line longer than 107 bytes")
}

// parseProxyV1 parses a whole v1 line.
func parseProxyV1(line string) (net.Addr, error) {
	body, ok := strings.CutSuffix(line, "\r\n")
	f := strings.Split(body, " ")
	if !ok || len(f) < 2 || f[0] != "PROXY" {
		return nil, fmt.Errorf("bad PROXY v1 line %q", line)
	}
	switch f[1] {
	case "UNKNOWN":
		return nil, nil // the peer's own address stands
	case "TCP4", "TCP6":
	default:
		return nil, fmt.Errorf("bad PROXY v1 protocol %q", f[1])
	}
	if len(f) != 6 {
		return nil, fmt.Errorf("bad PROXY v1 line %q", line)
	}
	src, err := netip.ParseAddr(f[2])
	if err != nil || src.Is4() != (f[1] == "TCP4") || src.Zone() != "" {
		return nil, fmt.Errorf("bad PROXY v1 source address %q", f[2])
	}
	if _, err := netip.ParseAddr(f[3]); err != nil {
		return nil, fmt.Errorf("bad PROXY v1 destination address %q", f[3])
	}
	port, err := parsePort(f[4])
	if err != nil {
		return nil, err
	}
	if _, err := parsePort(f[5]); err != nil {
		return nil, err
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, port)), nil
}

// parsePort reads a v1 port: decimal, no leading zero, 0 to 65535.
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("bad PROXY v1 port %q", s)
	}
	return uint16(n), nil
}

// readProxyV2 reads the rest of a v2 header, its first byte already read:
// the signature, version and command, family, length, then exactly length
// bytes of addresses and TLVs.
func readProxyV2(c net.Conn) (net.Addr, error) {
	var hdr [15]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	if !bytes.Equal(hdr[:11], proxyV2Sig[1:]) {
		return nil, errors.New("bad PROXY v2 signature")
	}
	verCmd, fam := hdr[11], hdr[12]
	n := int(binary.BigEndian.Uint16(hdr[13:15]))
	if verCmd>>4 != 2 {
		return nil, fmt.Errorf("bad PROXY v2 version %d", verCmd>>4)
	}
	if n > 216+proxyV2MaxTLV { // 216: two Unix socket paths
		return nil, fmt.Errorf("PROXY v2 header of %d bytes, over wsgate's bound of %d", n, 216+proxyV2MaxTLV)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	switch verCmd & 0xf {
	case 0: // LOCAL: the proxy's own connection (a health check)
		return nil, nil
	case 1: // PROXY
	default:
		return nil, fmt.Errorf("bad PROXY v2 command %d", verCmd&0xf)
	}
	var src netip.Addr
	var port uint16
	switch fam >> 4 {
	case 0: // AF_UNSPEC
		return nil, nil
	case 1: // AF_INET: src, dst, sport, dport
		if n < 12 {
			return nil, errors.New("PROXY v2 IPv4 address block too short")
		}
		src = netip.AddrFrom4([4]byte(body[0:4]))
		port = binary.BigEndian.Uint16(body[8:10])
	case 2: // AF_INET6
		if n < 36 {
			return nil, errors.New("PROXY v2 IPv6 address block too short")
		}
		src = netip.AddrFrom16([16]byte(body[0:16]))
		port = binary.BigEndian.Uint16(body[32:34])
	case 3: // AF_UNIX: no address to report
		return nil, nil
	default:
		return nil, fmt.Errorf("bad PROXY v2 address family %#x", fam)
	}
	switch fam & 0xf {
	case 1, 2: // STREAM, DGRAM
	default:
		return nil, fmt.Errorf("bad PROXY v2 transport %#x", fam)
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(src.Unmap(), port)), nil
}

// socketConn is an accepted TCP socket with nothing buffered in front of
// it: a *net.TCPConn, or the front's own accepted socket (httpfront).
type socketConn interface {
	net.Conn
	syscall.Conn
	SetWriteBuffer(bytes int) error
	CloseWrite() error
}

// proxiedTCPConn is an accepted socket whose client a PROXY header named.
// It is still the socket underneath (nothing buffered), so the gateway
// writes to and peeks at the socket directly.
type proxiedTCPConn struct {
	socketConn
	remote net.Addr
}

func (c *proxiedTCPConn) RemoteAddr() net.Addr { return c.remote }

// proxiedConn is the same for a connection that is not a TCP socket.
type proxiedConn struct {
	net.Conn
	remote net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }
