// Package httpread reads HTTP/1.1 answers on a load generator's
// keep-alive connections without allocating (net/http.ReadResponse builds
// a header map and a body reader for each), so that a benchmark's client
// costs little and its allocation count is the server's.
package httpread

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
)

var errMalformed = errors.New("malformed HTTP answer")

// Answer reads one HTTP/1.1 answer with a Content-Length body (or none),
// drops its headers and body and returns its status. It allocates nothing;
// a chunked answer is an error.
func Answer(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	status, err := statusOf(line)
	if err != nil {
		return 0, err
	}
	length := 0
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if err := field(line, &length); err != nil {
			return 0, err
		}
	}
	if _, err := br.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}

// Parse finds one whole HTTP/1.1 answer at the start of b, as Answer reads
// it: its status and size in bytes, or size 0 when b does not hold all of
// it yet (for a client that reads non-blocking sockets itself). It
// allocates nothing.
func Parse(b []byte) (status, size int, err error) {
	head, _, whole := bytes.Cut(b, []byte("\r\n\r\n"))
	if !whole {
		return 0, 0, nil
	}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if status, err = statusOf(line); err != nil {
		return 0, 0, err
	}
	length := 0
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if err := field(line, &length); err != nil {
			return 0, 0, err
		}
	}
	if size = len(head) + 4 + length; len(b) < size {
		return 0, 0, nil
	}
	return status, size, nil
}

// statusOf is the status of an answer's first line.
func statusOf(line []byte) (int, error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, errMalformed
	}
	status, ok := atoi(line[9:12])
	if !ok {
		return 0, errMalformed
	}
	return status, nil
}

// field reads one header line (no line end) into length, the
// Content-Length; a Transfer-Encoding is an error.
func field(line []byte, length *int) error {
	name, value, _ := bytes.Cut(line, []byte(":"))
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, ok := atoi(bytes.TrimSpace(value))
		if !ok {
			return errMalformed
		}
		*length = n
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		return fmt.Errorf("%w: Transfer-Encoding %s", errMalformed, value)
	}
	return nil
}

// atoi parses a non-negative decimal of at most 9 digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
