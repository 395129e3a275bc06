package integration

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxLogLine is the longest output line logged, in bytes; the rest of a
// longer line is dropped and counted (truncatedBytes), so one runaway line
// neither grows a buffer nor floods the log.
const maxLogLine = 8 << 10

// DefaultLogLinesPerSecond is the default of Config.LogLinesPerSecond.
const DefaultLogLinesPerSecond = 100

// dropReportEvery is how often, at most, the count of dropped lines is
// logged while a handler floods.
const dropReportEvery = time.Second

// outputLimiter rate-limits one command integration's output lines into its
// log, across all its processes: a token bucket of rate lines a second,
// holding at most one second's worth. A line with no token is dropped and
// counted; the count is logged as "function output rate limited" at most
// once per dropReportEvery (a timer armed by the first drop) and at close.
type outputLimiter struct {
	logger *slog.Logger
	rate   float64

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int64
	timer   *time.Timer // pending report, nil when none
}

func newOutputLimiter(logger *slog.Logger, perSecond int) *outputLimiter {
	return &outputLimiter{logger: logger, rate: float64(perSecond), tokens: float64(perSecond), last: time.Now()}
}

// allow takes a token for one line, or counts the line as dropped.
func (o *outputLimiter) allow() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.tokens = min(o.rate, o.tokens+now.Sub(o.last).Seconds()*o.rate)
	o.last = now
	if o.tokens >= 1 {
		o.tokens--
		return true
	}
	o.dropped++
	if o.timer == nil {
		o.timer = time.AfterFunc(dropReportEvery, o.report)
	}
	return false
}

// report logs the lines dropped since the last report.
func (o *outputLimiter) report() {
	o.mu.Lock()
	n := o.dropped
	o.dropped = 0
	o.timer = nil
	o.mu.Unlock()
	if n > 0 {
		o.logger.Warn("function output rate limited", "droppedLines", n, "linesPerSecond", o.rate)
	}
}

// close reports what is left to report and stops the timer.
func (o *outputLimiter) close() {
	o.mu.Lock()
	if o.timer != nil {
		o.timer.Stop()
	}
	o.mu.Unlock()
	o.report()
}

// lineLogger sends a process's output to the logger one line at a time,
// through the integration's outputLimiter, tagged with the request id of the
// process's latest invocation (set before the runtime sees the event, so no
// line of the handler's can miss it). exec's copying goroutine is the only
// writer; flush runs after Wait.
type lineLogger struct {
	logger *slog.Logger
	limit  *outputLimiter
	stream string
	p      *process
	buf    []byte // the current line, at most maxLogLine bytes
	over   int    // bytes of the current line beyond maxLogLine, dropped
}

func (l *lineLogger) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		room := maxLogLine - len(l.buf)
		if len(part) > room {
			l.over += len(part) - room
			part = part[:room]
		}
		l.buf = append(l.buf, part...)
		if i < 0 {
			break
		}
		l.emit()
		b = b[i+1:]
	}
	return n, nil
}

func (l *lineLogger) flush() {
	if len(l.buf) > 0 || l.over > 0 {
		l.emit()
	}
}

// emit logs the current line, if the rate allows, and starts the next.
func (l *lineLogger) emit() {
	line := bytes.TrimSuffix(l.buf, []byte("\r"))
	over := l.over
	l.buf, l.over = l.buf[:0], 0
	if !l.limit.allow() {
		return
	}
	id := ""
	if p := l.p.rt.lastID.Load(); p != nil {
		id = *p
	}
	attrs := []slog.Attr{slog.String("requestId", id), slog.String("stream", l.stream)}
	if over > 0 {
		attrs = append(attrs, slog.Int("truncatedBytes", over))
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, string(line), attrs...)
}
