// Package accesslog writes API Gateway style access logs: one line per
// WebSocket connect, message and disconnect, in a format written with
// API Gateway's $context variables ($context.requestId,
// $context.routeKey, $context.status, ...), to stdout, stderr or a file.
//
// A Logger is a gateway.Observer. The gateway's goroutine only formats
// the line and offers it to a bounded buffer; one writer goroutine writes
// the buffer out. When the destination is slower than the traffic the
// buffer fills and further lines are dropped and counted (Dropped), so
// the log never holds the gateway up.
package accesslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/confcheck"
)

// Config is the accessLog block of the config file.
type Config struct {
	// Format is the line, with $context variables: e.g.
	// '{"requestId":"$context.requestId","routeKey":"$context.routeKey","status":$context.status}'.
	// A format starting with '{' is JSON (values are JSON-escaped).
	// Required.
	Format string `json:"format"`
	// Destination is stdout (default), stderr, or a file path (relative
	// to the config file; appended to, created with mode 0640).
	Destination string `json:"destination,omitempty"`
	// BufferLines bounds the lines waiting to be written; past it lines
	// are dropped and counted in wsgate_access_log_dropped_total.
	// Default 4096. Range 1 to 1000000.
	BufferLines int `json:"bufferLines,omitempty"`
}

// MaxBufferLines is BufferLines' maximum.
const MaxBufferLines = 1_000_000

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.Destination == "" {
		c.Destination = "stdout"
	}
	if c.BufferLines == 0 {
		c.BufferLines = 4096
	}
}

// Validate reports every problem, each named by its field.
func (c *Config) Validate() error {
	var e confcheck.Errors
	if _, err := ParseFormat(c.Format); err != nil {
		e.Addf("format", "%v", err)
	}
	e.Range("bufferLines", c.BufferLines, 1, MaxBufferLines)
	return e.Err()
}

// Logger is an access log. It is safe for concurrent use.
type Logger struct {
	format *Format
	static Static
	lines  chan []byte
	out    io.Writer
	closer io.Closer // nil for stdout and stderr
	path   string    // the file destination, "" for stdout, stderr and NewWriter
	reopen chan chan error
	done   chan struct{}

	mu     sync.RWMutex // Close takes it to close lines; senders hold it shared
	closed bool

	written, dropped atomic.Uint64
	pool             sync.Pool
}

// Open opens the destination and starts the writer goroutine. Close
// stops it. c must be validated, defaults applied.
func Open(c Config, st Static) (*Logger, error) {
	f, err := ParseFormat(c.Format)
	if err != nil {
		return nil, err
	}
	l := &Logger{format: f, static: st, lines: make(chan []byte, c.BufferLines), reopen: make(chan chan error), done: make(chan struct{})}
	switch c.Destination {
	case "stdout":
		l.out = os.Stdout
	case "stderr":
		l.out = os.Stderr
	default:
		file, err := openFile(c.Destination)
		if err != nil {
			return nil, err
		}
		l.out, l.closer, l.path = file, file, c.Destination
	}
	go l.run()
	return l, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return f, nil
}

// Reopen closes a file destination and opens its path again, after what
// was buffered was written to the old file: what logrotate's "create"
// mode needs after it renamed the file (wsgate reopens on SIGHUP). The
// new file is opened before the old one is closed; if it cannot be, the
// old file stays in use and the error is returned. For stdout and stderr
// it does nothing.
func (l *Logger) Reopen() error {
	if l.path == "" {
		return nil
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return errors.New("access log: closed")
	}
	res := make(chan error, 1)
	l.reopen <- res
	return <-res
}

// NewWriter is Open with w as the destination (tests, embedding).
func NewWriter(w io.Writer, format string, bufferLines int, st Static) (*Logger, error) {
	f, err := ParseFormat(format)
	if err != nil {
		return nil, err
	}
	l := &Logger{format: f, static: st, lines: make(chan []byte, max(bufferLines, 1)), reopen: make(chan chan error), done: make(chan struct{}), out: w}
	go l.run()
	return l, nil
}

var _ gateway.Observer = (*Logger)(nil)

// Request implements gateway.Observer: it formats r's line and queues it,
// or drops it when the buffer is full.
func (l *Logger) Request(r gateway.Record) {
	b, _ := l.pool.Get().(*[]byte)
	if b == nil {
		b = new([]byte)
	}
	line := l.format.Append((*b)[:0], &r, &l.static)
	line = append(line, '\n')
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.lines <- line:
	default:
		l.dropped.Add(1)
		*b = line
		l.pool.Put(b)
	}
}

// Management implements gateway.Observer; management calls are not
// access-logged (API Gateway's access log covers the WebSocket API).
func (l *Logger) Management(string, int, time.Duration) {}

// run is the writer goroutine: it writes lines as they come, flushes
// whenever the buffer is empty, and swaps the file on Reopen. It alone
// uses out and closer once started.
func (l *Logger) run() {
	defer close(l.done)
	w := bufio.NewWriterSize(l.out, 64<<10)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				_ = w.Flush()
				return
			}
			l.write(w, line)
			if len(l.lines) == 0 {
				_ = w.Flush()
			}
		case res := <-l.reopen:
			// Lines queued before Reopen was called belong to the old
			// file: select may have picked this case first.
			for n := len(l.lines); n > 0; n-- {
				l.write(w, <-l.lines)
			}
			_ = w.Flush()
			f, err := openFile(l.path)
			if err == nil {
				err = l.closer.Close()
				l.out, l.closer = f, f
				w.Reset(f)
			}
			res <- err
		}
	}
}

func (l *Logger) write(w *bufio.Writer, line []byte) {
	_, _ = w.Write(line)
	l.written.Add(1)
	l.recycle(line)
}

func (l *Logger) recycle(line []byte) {
	if cap(line) <= 4096 {
		line = line[:0]
		l.pool.Put(&line)
	}
}

// Counts reports the lines written and the lines dropped.
func (l *Logger) Counts() (written, dropped uint64) { return l.written.Load(), l.dropped.Load() }

// Close writes what is buffered, stops the writer and closes a file
// destination. Lines offered after Close are ignored.
func (l *Logger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.lines)
	l.mu.Unlock()
	<-l.done
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// errNoFormat is what Validate says of a missing format.
var errNoFormat = errors.New("empty format")

func sortStrings(s []string) { slices.Sort(s) }
