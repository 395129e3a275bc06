package gateway

import (
	"bufio"
	"sync"
)

// Read buffers are pooled: a connection holds one only while bytes are
// arriving. Between messages its reader goroutine waits for readability
// with no buffer (waitReadable), which keeps an idle connection at one
// parked goroutine and a few hundred bytes of heap.
const readBufferSize = 4096

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// acquireReader blocks until the socket has bytes (or fails), then returns
// a pooled reader over it.
func (c *conn) acquireReader() (*bufio.Reader, error) {
	if c.br0 != nil {
		br := c.br0
		c.br0 = nil
		return br, nil
	}
	if err := waitReadable(c.nc); err != nil {
		return nil, err
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(c.nc)
	return br, nil
}

// releaseReader returns a reader to the pool; only called with nothing
// buffered.
func (c *conn) releaseReader(br *bufio.Reader) {
	if br.Size() != readBufferSize {
		return // the handshake's reader: let it go
	}
	br.Reset(nil)
	readerPool.Put(br)
}
