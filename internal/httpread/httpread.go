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
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, errMalformed
	}
	status, ok := atoi(line[9:12])
	if !ok {
		return 0, errMalformed
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
		name, value, _ := bytes.Cut(line, []byte(":"))
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, ok = atoi(bytes.TrimSpace(value)); !ok {
				return 0, errMalformed
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, fmt.Errorf("%w: Transfer-Encoding %s", errMalformed, value)
		}
	}
	if _, err := br.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
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
