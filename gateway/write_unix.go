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

// iovecs is writeFD's scratch for writev's buffers.
type iovecs = []syscall.Iovec

// writeFD is one non-blocking write(2) of bufs, less the first skip bytes
// of bufs[0], or writev(2) when there are several. A socket that is full
// (EAGAIN) or a write interrupted before it wrote (EINTR) reports 0 bytes
// and no error: the caller queues the rest for its writer goroutine.
//
// The flusher's and the writer goroutine's writes go through package
// syscall, which enters the scheduler's system-call state, not
// internal/rawsys as the front's socket calls and the inline write
// (writeInlineFD) do: measured, raw writes there made a burst of group
// publishes cost 2.8-4x the server CPU per delivery (BENCHMARKS.md, "raw
// frame writes and bursts, session 7"): the flushers wrote each frame as
// it came instead of several per writev.
func writeFD(fd uintptr, bufs [][]byte, skip int, iov *iovecs) (int, error) {
	var (
		n   int
		err error
	)
	if len(bufs) == 1 {
		n, err = syscall.Write(int(fd), bufs[0][skip:])
	} else {
		n, err = writev(fd, bufs, skip, iov)
	}
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return 0, nil
	}
	return max(n, 0), err
}

// writeInlineFD is writeFD of one frame in the sender's goroutine (a
// single send, a pong, the 101): a raw system call (internal/rawsys),
// which does not wake the runtime's monitor thread after an idle spell.
func writeInlineFD(fd uintptr, frame []byte) (int, error) {
	n, err := rawsys.Write(int(fd), frame)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return 0, nil
	}
	return max(n, 0), err
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
	n, err := rawsys.WritevSys(fd, iov)
	clear(iov) // no references to the frames left in the pool
	*scratch = iov[:0]
	return n, err
}

// writeAll writes every buffer of *bufs through rc with writev(2), at most
// maxIOV at a time, waiting in the runtime poller (and so under the
// connection's write deadline) while the socket is full. What it wrote is
// consumed from *bufs, as net.Buffers.WriteTo does, so a caller may go on
// after a timeout. It is the writer goroutine's path: the socket may be
// outside the runtime's poller (httpfront's sockets), where
// net.Buffers.WriteTo would make one write(2) per frame.
func writeAll(nc net.Conn, rc syscall.RawConn, bufs *net.Buffers, iov *iovecs) (int64, error) {
	var total int64
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for len(*bufs) > 0 {
			n, err := writev(fd, (*bufs)[:min(len(*bufs), maxIOV)], 0, iov)
			switch err {
			case nil:
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			default:
				werr = os.NewSyscallError("writev", err)
				return true
			}
			total += int64(n)
			consume(bufs, n)
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

// consume drops the first n bytes of *bufs.
func consume(bufs *net.Buffers, n int) {
	for len(*bufs) > 0 {
		b := (*bufs)[0]
		if n < len(b) {
			(*bufs)[0] = b[n:]
			return
		}
		n -= len(b)
		(*bufs)[0] = nil
		*bufs = (*bufs)[1:]
	}
}
