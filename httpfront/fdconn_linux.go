//go:build linux

package httpfront

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/mono"
	"github.com/wsgate/wsgate/internal/rawsys"
)

// fdConn is an accepted socket the front took with its own accept4: a
// non-blocking descriptor that is not in the runtime's poller. Accepting
// through net.Listener costs, besides accept4, an epoll_ctl (the
// runtime's poller), a getsockname (the local address) and a setsockopt
// (TCP_NODELAY) per connection, and an epoll_ctl again at close; a
// handshake whose head is there when it is read, answered and moved to
// the gateway's poller never needs any of them.
//
// Every operation first tries the socket directly. Only one that has to
// wait (a read with nothing to read, a write the socket does not take
// whole) puts the descriptor into the runtime's poller, once, by making
// it an *os.File (promote): from then on every operation is the file's,
// with the runtime's waiting and deadlines. Until then deadlines are only
// recorded (no operation waits) and applied when it promotes; one already
// past fails an operation as it would on a net.Conn.
//
// The descriptor is closed only when no direct operation is using it
// (refs), so it cannot be reused under one: Close during a direct
// operation leaves the close to that operation's end.
type fdConn struct {
	fd int
	// peer is accept4's address (zone: its IPv6 scope id).
	peer netip.AddrPort
	zone uint32

	refs   int32 // direct operations in progress (under mu)
	mu     sync.Mutex
	closed bool // Close was called
	// noWait: the keep-alive waits' duplicate (wait_linux.go) could not
	// be made, the connection waits without until a later wait makes one
	// (the connection's owner's).
	noWait bool
	file   *os.File // set by promote; owns fd from then on
	// rd and wd are the deadlines recorded before promotion, in
	// nanoseconds since mono.Start (0: none; see deadlineNanos).
	rd, wd int64
	// more holds what few connections need (a promoted socket's RawConn,
	// the net.Addrs, the keep-alive waits' duplicate): nil until the
	// first needs it, set once under mu. A held WebSocket connection
	// keeps its fdConn for its lifetime, so this is 96 bytes, not 192.
	more atomic.Pointer[fdMore]
}

// fdMore is the part of an fdConn most connections never use.
type fdMore struct {
	frc syscall.RawConn // the file's, set by promote
	// remote is the net.Addr made of peer on the first RemoteAddr (under
	// mu); local, LocalAddr's.
	remote, local net.Addr
	// wait is the duplicate keep-alive waits use (wait_linux.go), nil
	// until the first; its read deadline follows the socket's.
	wait *waiter
}

// ext returns c.more, made on the first call. Called under c.mu.
func (c *fdConn) ext() *fdMore {
	m := c.more.Load()
	if m == nil {
		m = new(fdMore)
		c.more.Store(m)
	}
	return m
}

// waiter is c's keep-alive waits' duplicate, or nil. Called under c.mu.
func (c *fdConn) waiter() *waiter {
	if m := c.more.Load(); m != nil {
		return m.wait
	}
	return nil
}

// deadlineNanos is a deadline as fdConn records it: nanoseconds since
// mono.Start, on the monotonic clock when t has a reading of it (as the
// runtime's own deadlines: time.Now().Add(d) does), 0 for none; t.Sub
// saturates, so a deadline centuries away is as good as none and one
// before the process started has passed.
func deadlineNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(int64(t.Sub(mono.Start)), 1)
}

// deadlineTime is deadlineNanos's inverse (zero time for none), with a
// monotonic reading.
func deadlineTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return mono.Start.Add(time.Duration(ns))
}

// newFDConn wraps an accepted non-blocking socket; peer and zone are
// accept4's address.
func newFDConn(fd int, peer netip.AddrPort, zone uint32) *fdConn {
	return &fdConn{fd: fd, peer: peer, zone: zone}
}

// peerString is RemoteAddr().String(), made in one allocation where the
// address has no zone.
func (c *fdConn) peerString() string {
	if !c.peer.IsValid() || c.zone != 0 {
		return c.RemoteAddr().String()
	}
	// net.IP prints an IPv4-mapped address as IPv4.
	return netip.AddrPortFrom(c.peer.Addr().Unmap(), c.peer.Port()).String()
}

func sockaddrToTCP(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrInet6:
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return &net.TCPAddr{}
}

// acquire takes a reference for a direct operation; once promoted it
// returns the file instead (and no reference).
func (c *fdConn) acquire() (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, net.ErrClosed
	}
	if c.file != nil {
		return c.file, nil
	}
	c.refs++
	return nil, nil
}

// releaseRef ends a direct operation; the last one after Close closes the
// descriptor.
func (c *fdConn) releaseRef() {
	c.mu.Lock()
	c.refs--
	closeNow := c.refs == 0 && c.closed
	f := c.file
	c.mu.Unlock()
	if closeNow {
		c.closeFD(f)
	}
}

func (c *fdConn) closeFD(f *os.File) {
	if f != nil {
		_ = f.Close()
		return
	}
	_ = syscall.Close(c.fd)
}

// promote puts the socket into the runtime's poller (as an *os.File) and
// applies the recorded deadlines. It is called holding a reference.
func (c *fdConn) promote() (*os.File, syscall.RawConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == nil {
		f := os.NewFile(uintptr(c.fd), "tcp")
		rc, err := f.SyscallConn()
		if err != nil {
			// Never for a socket; the descriptor stays ours.
			return nil, nil, err
		}
		c.ext().frc = rc
		c.file = f // after frc: a reader that sees file reads frc unlocked
		if c.rd != 0 {
			_ = f.SetReadDeadline(deadlineTime(c.rd))
		}
		if c.wd != 0 {
			_ = f.SetWriteDeadline(deadlineTime(c.wd))
		}
	}
	return c.file, c.more.Load().frc, nil
}

// passed reports whether a recorded deadline is over.
func passed(d int64) bool { return d != 0 && int64(mono.Since()) >= d }

func (c *fdConn) deadlines() (rd, wd int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rd, c.wd
}

func (c *fdConn) Read(p []byte) (int, error) {
	f, err := c.acquire()
	if err != nil {
		return 0, c.opError("read", err)
	}
	if f == nil {
		n, err, done := c.readDirect(p)
		if done {
			c.releaseRef()
			return n, err
		}
		f, _, err = c.promote()
		c.releaseRef()
		if err != nil {
			return 0, c.opError("read", err)
		}
	}
	n, err := f.Read(p)
	return n, c.fileError("read", err)
}

// readDirect is one read(2); done is false when the socket has nothing
// yet (the caller waits).
func (c *fdConn) readDirect(p []byte) (int, error, bool) {
	if rd, _ := c.deadlines(); passed(rd) {
		return 0, c.opError("read", os.ErrDeadlineExceeded), true
	}
	if len(p) == 0 {
		return 0, nil, true
	}
	n, again, err := rawsys.ReadNB(c.fd, p)
	if err != nil && err != io.EOF {
		err = c.opError("read", os.NewSyscallError("read", err))
	}
	return n, err, !again
}

func (c *fdConn) Write(p []byte) (int, error) {
	f, err := c.acquire()
	if err != nil {
		return 0, c.opError("write", err)
	}
	written := 0
	if f == nil {
		if _, wd := c.deadlines(); passed(wd) {
			c.releaseRef()
			return 0, c.opError("write", os.ErrDeadlineExceeded)
		}
		for written < len(p) {
			n, again, err := rawsys.WriteNB(c.fd, p[written:], rawsys.Raw)
			if again {
				break
			}
			if err != nil {
				c.releaseRef()
				return written, c.opError("write", os.NewSyscallError("write", err))
			}
			written += n
		}
		if written == len(p) {
			c.releaseRef()
			return written, nil
		}
		f, _, err = c.promote()
		c.releaseRef()
		if err != nil {
			return written, c.opError("write", err)
		}
	}
	n, err := f.Write(p[written:])
	return written + n, c.fileError("write", err)
}

// Close closes the socket, at once unless a direct operation is using it
// (then when it ends).
func (c *fdConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	closeNow := c.refs == 0
	f := c.file
	var w *waiter
	if m := c.more.Load(); m != nil && m.wait != nil && !m.wait.inUse {
		w, m.wait = m.wait, nil
	}
	c.mu.Unlock()
	if closeNow {
		c.closeFD(f)
	}
	w.close()
	return nil
}

// CloseWrite shuts the writing side (net/http's close after a refusal).
func (c *fdConn) CloseWrite() error {
	return c.control(func(fd int) error { return syscall.Shutdown(fd, syscall.SHUT_WR) })
}

// SetWriteBuffer sets SO_SNDBUF, as (*net.TCPConn).SetWriteBuffer.
func (c *fdConn) SetWriteBuffer(bytes int) error {
	return c.control(func(fd int) error {
		return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, bytes)
	})
}

// control runs fn on the descriptor while it stays open.
func (c *fdConn) control(fn func(fd int) error) error {
	f, err := c.acquire()
	if err != nil {
		return err
	}
	if f == nil {
		defer c.releaseRef()
		return fn(c.fd)
	}
	var ferr error
	if err := c.more.Load().frc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (c *fdConn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.ext()
	if m.local == nil && !c.closed {
		sa, err := syscall.Getsockname(c.fd)
		if err != nil {
			return &net.TCPAddr{}
		}
		m.local = sockaddrToTCP(sa)
	}
	if m.local == nil {
		return &net.TCPAddr{}
	}
	return m.local
}

func (c *fdConn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.ext()
	if m.remote == nil {
		m.remote = &net.TCPAddr{}
		if c.peer.IsValid() {
			m.remote = sockaddrToTCP(peerSockaddr(c.peer, c.zone))
		}
	}
	return m.remote
}

// peerSockaddr is the sockaddr of an accepted peer.
func peerSockaddr(peer netip.AddrPort, zone uint32) syscall.Sockaddr {
	if peer.Addr().Is4() {
		return &syscall.SockaddrInet4{Port: int(peer.Port()), Addr: peer.Addr().As4()}
	}
	return &syscall.SockaddrInet6{Port: int(peer.Port()), ZoneId: zone, Addr: peer.Addr().As16()}
}

func (c *fdConn) SetDeadline(t time.Time) error {
	return c.setDeadline(t, true, true)
}

func (c *fdConn) SetReadDeadline(t time.Time) error { return c.setDeadline(t, true, false) }

func (c *fdConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(t, false, true) }

func (c *fdConn) setDeadline(t time.Time, read, write bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set", net.ErrClosed)
	}
	if w := c.waiter(); read && w != nil {
		_ = w.f.SetReadDeadline(t)
	}
	if read {
		c.rd = deadlineNanos(t) // after promotion too: a later duplicate's (makeWaiter)
	}
	if c.file != nil {
		var err error
		switch {
		case read && write:
			err = c.file.SetDeadline(t)
		case read:
			err = c.file.SetReadDeadline(t)
		default:
			err = c.file.SetWriteDeadline(t)
		}
		return c.fileError("set", err)
	}
	if write {
		c.wd = deadlineNanos(t)
	}
	return nil
}

// SyscallConn gives the descriptor to direct reads and writes (the
// gateway's), with the same rules as the conn's own.
func (c *fdConn) SyscallConn() (syscall.RawConn, error) { return (*fdRawConn)(c), nil }

type fdRawConn fdConn

func (r *fdRawConn) Control(fn func(fd uintptr)) error {
	c := (*fdConn)(r)
	f, err := c.acquire()
	if err != nil {
		return err
	}
	if f != nil {
		return c.more.Load().frc.Control(fn)
	}
	fn(uintptr(c.fd))
	c.releaseRef()
	return nil
}

func (r *fdRawConn) Read(fn func(fd uintptr) bool) error {
	c := (*fdConn)(r)
	return c.rawIO(fn, true)
}

func (r *fdRawConn) Write(fn func(fd uintptr) bool) error {
	c := (*fdConn)(r)
	return c.rawIO(fn, false)
}

// rawIO calls fn on the descriptor; fn returning false means it has to
// wait for the socket, which promotes it.
func (c *fdConn) rawIO(fn func(fd uintptr) bool, read bool) error {
	f, err := c.acquire()
	if err != nil {
		return err
	}
	if f == nil {
		rd, wd := c.deadlines()
		if read && passed(rd) || !read && passed(wd) {
			c.releaseRef()
			return os.ErrDeadlineExceeded
		}
		if fn(uintptr(c.fd)) {
			c.releaseRef()
			return nil
		}
		_, _, err = c.promote()
		c.releaseRef()
		if err != nil {
			return err
		}
	}
	frc := c.more.Load().frc
	if read {
		return frc.Read(fn)
	}
	return frc.Write(fn)
}

// opError shapes an error as net's: a *net.OpError whose Timeout and
// errors.Is(net.ErrClosed) answer as on a *net.TCPConn.
func (c *fdConn) opError(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	// Made from peer (set at accept, never changed), not read from
	// more.remote: RemoteAddr sets that under mu, which callers of
	// opError may hold (setDeadline), and an unlocked read raced with
	// it (-race: a writer's error beside a reader's RemoteAddr).
	var remote net.Addr
	if c.peer.IsValid() {
		remote = sockaddrToTCP(peerSockaddr(c.peer, c.zone))
	}
	return &net.OpError{Op: op, Net: "tcp", Addr: remote, Err: err}
}

// fileError turns an *os.File's error into net's shape: its *PathError
// becomes a *net.OpError, and a closed file net.ErrClosed.
func (c *fdConn) fileError(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if errors.Is(err, os.ErrClosed) {
		return c.opError(op, net.ErrClosed)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return c.opError(op, err)
}

// tryRead is one direct read that does not wait: ready is false when
// the socket has nothing yet. A socket already in the runtime's poller
// reports ready with nothing read (the caller reads as usual).
func (c *fdConn) tryRead(p []byte) (n int, err error, ready bool) {
	f, err := c.acquire()
	if err != nil {
		return 0, c.opError("read", err), true
	}
	if f != nil {
		return 0, nil, true
	}
	defer c.releaseRef()
	n, err, ready = c.readDirect(p)
	return n, err, ready
}

// readNow is one read(2) that does not wait, whether or not the socket
// is in the runtime's poller, and ignores the deadlines (the front's
// poller times the waits for heads): again is true when the socket has
// nothing yet. The end of the stream is io.EOF. Only the connection's
// owner calls it, so no Close runs meanwhile: a promoted socket is read
// through the same descriptor, which its file keeps open.
func (c *fdConn) readNow(p []byte) (n int, err error, again bool) {
	f, err := c.acquire()
	if err != nil {
		return 0, c.opError("read", err), false
	}
	n, err, again = readFD(c.fd, p)
	if f == nil {
		c.releaseRef()
	}
	if err != nil && err != io.EOF {
		err = c.opError("read", os.NewSyscallError("read", err))
	}
	return n, err, again
}

// readFD reads a non-blocking descriptor once; a read of nothing is
// io.EOF.
func readFD(fd int, p []byte) (int, error, bool) {
	n, again, err := rawsys.ReadNB(fd, p)
	return n, err, again
}

// peerString is nc.RemoteAddr().String(), without the net.Addr for an
// fdConn.
func peerString(nc net.Conn) string {
	if fc, ok := nc.(*fdConn); ok {
		return fc.peerString()
	}
	return nc.RemoteAddr().String()
}
