//go:build unix

package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

// TestWriteAllWritesEveryBuffer: more buffers than one writev takes, more
// bytes than the socket buffers hold, all arrive in order.
func TestWriteAllWritesEveryBuffer(t *testing.T) {
	c, s := testenv.LoopbackPair(t)
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
	_, s := testenv.LoopbackPair(t)
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

// TestWriteNowStopsWhenFull: writeNow writes what the socket takes, less
// the skipped bytes, stops when it is full, and the buffers it reports as
// written (whole, then part of the next) are exactly the bytes that
// arrive; picking up from there writes the rest in order.
func TestWriteNowStopsWhenFull(t *testing.T) {
	c, s := testenv.LoopbackPair(t)
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetWriteBuffer(32 << 10) // small socket buffers: full sooner
	_ = c.SetReadBuffer(32 << 10)
	var fd uintptr
	if err := rc.Control(func(f uintptr) { fd = f }); err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	var want []byte
	for i := range 2*maxIOV + 3 {
		b := bytes.Repeat([]byte{byte(i)}, 10+i%300)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	const skip = 5
	want = want[skip:]
	got := make(chan []byte, 1)
	var iov iovecs
	whole, part, err := writeNow(fd, bufs, skip, &iov)
	if err != nil || whole == len(bufs) {
		t.Fatalf("writeNow = %d, %d, %v; want a socket full before %d buffers", whole, part, err, len(bufs))
	}
	go func() {
		b, _ := io.ReadAll(io.LimitReader(c, int64(len(want))))
		got <- b
	}()
	for whole < len(bufs) {
		w, p, err := writeNow(fd, bufs[whole:], part, &iov)
		if err != nil {
			t.Fatal(err)
		}
		if w == 0 && p == part {
			time.Sleep(time.Millisecond) // full: the reader drains it
		}
		whole, part = whole+w, p
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("read %d bytes, not the %d written in order", len(b), len(want))
	}
}

// BenchmarkWriteNow: the flusher's write of one frame (write(2)) and of 16
// (writev(2)) to /dev/null, so the figure is the call path's own cost.
func BenchmarkWriteNow(b *testing.B) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	frame := make([]byte, 128)
	for _, n := range []int{1, 16} {
		bufs := make([][]byte, n)
		for i := range bufs {
			bufs[i] = frame
		}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var iov iovecs
			b.ReportAllocs()
			for b.Loop() {
				if whole, _, err := writeNow(f.Fd(), bufs, 0, &iov); err != nil || whole != n {
					b.Fatal(whole, err)
				}
			}
		})
	}
}

// BenchmarkSingleSend: a PostToConnection's send to an idle connection,
// written inline (to /dev/null, so the figure is the send path's own
// cost): message is the hub's Send of a Message (a Message and its frame
// allocated), data the gateway's sendData (the frame in a pooled buffer).
func BenchmarkSingleSend(b *testing.B) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"action":"message","data":"hello from the backend"}`)
	c := &conn{gw: &Gateway{}, rc: rc, wfd: int32(f.Fd()) + 1}
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Send(hub.NewMessage(payload)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("data", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.sendData(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
