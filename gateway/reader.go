package gateway

import (
	"bufio"
	"encoding/binary"
	"errors"
	"sync"

	"github.com/gobwas/ws"
)

// Read buffers are pooled: a connection holds one only while bytes are
// arriving. Between messages it waits for readability with no buffer: in
// the poller (no goroutine), or, for a blocking reader, in waitReadable.
const readBufferSize = 4096

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// acquireReader returns a pooled reader over the socket; with wait it
// first blocks until the socket has bytes (or fails).
func (c *conn) acquireReader(wait bool) (*bufio.Reader, error) {
	if c.br0 != nil {
		br := c.br0
		c.br0 = nil
		return br, nil
	}
	if wait {
		if err := waitReadable(c.nc); err != nil {
			return nil, err
		}
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

// errLengthMSB is a 64-bit payload length with its most significant bit
// set, which RFC 6455 5.2 forbids: a protocol error (1002).
var errLengthMSB = errors.New("websocket: 64-bit payload length with the most significant bit set")

// readHeader reads one frame header (2 to 14 bytes) by peeking into br's
// buffer, so it allocates nothing. It validates only the length encoding;
// checkHeader applies the protocol's and API Gateway's rules.
func readHeader(br *bufio.Reader) (h ws.Header, err error) {
	b, err := br.Peek(2)
	if err != nil {
		return h, err
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		n += 2
	case 127:
		n += 8
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		n += 4
	}
	if b, err = br.Peek(n); err != nil {
		return h, err
	}
	switch b[1] & 0x7f {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return h, errLengthMSB
		}
		h.Length = int64(u)
	}
	if h.Masked {
		copy(h.Mask[:], b[n-4:n])
	}
	_, _ = br.Discard(n)
	return h, nil
}
