//go:build unix

package gateway

import (
	"errors"
	"net"
	"os"
	"syscall"
	"unsafe"

	"github.com/wsgate/wsgate/internal/rawsys"
)

// iovecs is writeNow's scratch for writev's buffers.
type iovecs = []syscall.Iovec

// maxIOV is the most buffers one writev takes (IOV_MAX on Linux).
const maxIOV = 1024

// writeNow writes bufs, less the first skip bytes of bufs[0], with
// non-blocking writes on the socket's descriptor (write(2) for one buffer,
// writev(2) of at most maxIOV for more, iov for scratch) until they are
// written or a write is short (the socket is full). It returns how many
// buffers were written whole and how many bytes of the next one.
//
// Its writes go through package syscall (rawsys.Sys), which enters the
// scheduler's system-call state, not raw as the front's socket calls and
// the inline write (writeInlineFD) do: it is the flusher's and the writer
// goroutine's path, where raw writes made a burst of group publishes cost
// 2.8-4x the server CPU per delivery (see rawsys.Sys).
func writeNow(fd uintptr, bufs [][]byte, skip int, iov *iovecs) (whole, part int, err error) {
	part = skip
	for whole < len(bufs) {
		chunk := bufs[whole:min(len(bufs), whole+maxIOV)]
		want := -part
		for _, b := range chunk {
			want += len(b)
		}
		var wrote int
		if len(chunk) == 1 {
			wrote, _, err = rawsys.WriteNB(int(fd), chunk[0][part:], rawsys.Sys)
		} else {
			wrote, err = writev(fd, chunk, part, iov)
		}
		if err != nil {
			break
		}
		n := part + wrote
		for whole < len(bufs) && n >= len(bufs[whole]) {
			n -= len(bufs[whole])
			whole++
		}
		part = n
		if wrote != want {
			break // the socket is full
		}
	}
	return whole, part, err
}

// writeInlineFD is one write of a frame in the sender's goroutine (a
// single send, a pong, the 101): a raw system call (rawsys.Raw), which
// does not wake the runtime's monitor thread after an idle spell. A socket
// that is full reports 0 bytes and no error.
func writeInlineFD(fd uintptr, frame []byte) (int, error) {
	n, _, err := rawsys.WriteNB(int(fd), frame, rawsys.Raw)
	return n, err
}

// writev writes bufs, less the first skip bytes of bufs[0], with one
// writev(2).
func writev(fd uintptr, bufs [][]byte, skip int, scratch *iovecs) (int, error) {
	iov := (*scratch)[:0]
	for i, b := range bufs {
		if i == 0 {
			b = b[skip:]
		}
		if len(b) > 0 {
			v := syscall.Iovec{Base: unsafe.SliceData(b)}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
	}
	if len(iov) == 0 {
		return 0, nil
	}
	n, _, err := rawsys.WritevNB(int(fd), iov, rawsys.Sys)
	clear(iov) // no references to the frames left in the pool
	*scratch = iov[:0]
	return n, err
}

// writeAll writes every buffer of *bufs through rc (writeNow), waiting
// in the runtime poller (and so under the connection's write deadline)
// while the socket is full. What it wrote is consumed from *bufs, as
// net.Buffers.WriteTo does, so a caller may go on after a timeout. It is
// the writer goroutine's path: the socket may be outside the runtime's
// poller (httpfront's sockets), where net.Buffers.WriteTo would make one
// write(2) per frame.
func writeAll(nc net.Conn, rc syscall.RawConn, bufs *net.Buffers, iov *iovecs) (int64, error) {
	var total int64
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for len(*bufs) > 0 {
			whole, part, err := writeNow(fd, *bufs, 0, iov)
			b := *bufs
			for i, f := range b[:whole] {
				total += int64(len(f))
				b[i] = nil
			}
			b = b[whole:]
			if part > 0 {
				b[0] = b[0][part:]
				total += int64(part)
			}
			*bufs = b
			if err != nil {
				werr = os.NewSyscallError("write", err)
				return true
			}
			if whole == 0 && part == 0 {
				return false // the socket is full: wait until it takes more
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		var oe *net.OpError
		if !errors.As(err, &oe) {
			err = &net.OpError{Op: "write", Net: "tcp", Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: err}
		}
	}
	return total, err
}
