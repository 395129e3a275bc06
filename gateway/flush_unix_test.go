//go:build unix

package gateway

import (
	"bytes"
	"io"
	"os"
	"syscall"
	"testing"
)

// TestFlushLagging: a write turn reports its connection's queue lagging
// from a quarter of outboundQueueFrames or outboundQueueBytes waiting, and
// writes the frames whole either way (the flusher then stops lowering its
// thread and yielding: flusher.run).
func TestFlushLagging(t *testing.T) {
	cfg := Config{OutboundQueueBytes: 4096}
	cfg.SetDefaults()
	gw := &Gateway{cfg: cfg}
	gw.cur.Store(&live{cfg: cfg})
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	w, r := os.NewFile(uintptr(fds[0]), "w"), os.NewFile(uintptr(fds[1]), "r")
	defer w.Close()
	defer r.Close()
	c := &conn{gw: gw, wfd: int32(fds[0]) + 1}
	var iov iovecs
	for _, tc := range []struct {
		name         string
		frames, size int
		want         bool
	}{
		{"shallow", cfg.OutboundQueueFrames/4 - 1, 10, false},
		{"a quarter of the frames", cfg.OutboundQueueFrames / 4, 10, true},
		{"under a quarter of the bytes", 1, cfg.OutboundQueueBytes/4 - 1, false},
		{"a quarter of the bytes", 1, cfg.OutboundQueueBytes / 4, true},
	} {
		c.mu.Lock()
		for i := range tc.frames {
			f := bytes.Repeat([]byte{byte('a' + i%26)}, tc.size)
			c.queue = append(c.queue, f)
			c.queued += len(f)
		}
		c.writing = true
		c.mu.Unlock()
		if got := c.flush(&iov); got != tc.want {
			t.Errorf("%s: lagging %v, want %v", tc.name, got, tc.want)
		}
		buf := make([]byte, tc.frames*tc.size)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c.mu.Lock()
		if c.writing || len(c.queue) != 0 || c.queued != 0 {
			t.Errorf("%s: after the turn writing %v, %d frames, %d bytes queued", tc.name, c.writing, len(c.queue), c.queued)
		}
		c.mu.Unlock()
	}
}
