package httpread_test

import (
	"bufio"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/httpread"
)

func TestAnswer(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 403 Forbidden\r\ncontent-length: 22\r\nContent-Type: application/json\r\n\r\n{\"message\":\"no auth\"}\n" +
		"HTTP/1.1 204 No Content\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(in))
	for _, want := range []int{200, 403, 204} {
		got, err := httpread.Answer(br)
		if err != nil || got != want {
			t.Fatalf("Answer = %d, %v; want %d", got, err, want)
		}
	}
	if _, err := httpread.Answer(br); err == nil {
		t.Fatal("a chunked answer was accepted")
	}
	for _, bad := range []string{"HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "SSH-2.0\r\n\r\n", "HTTP/1.1 200 OK\r\n"} {
		if _, err := httpread.Answer(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestAnswerAllocatesNothing(t *testing.T) {
	const one = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
	r := strings.NewReader("")
	br := bufio.NewReader(r)
	if n := testing.AllocsPerRun(100, func() {
		r.Reset(one)
		br.Reset(r)
		if _, err := httpread.Answer(br); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per answer", n)
	}
}

func TestParse(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nDate: Sun, 29 Nov 2026 20:00:00 GMT\r\nContent-Length: 0\r\n\r\n"
	const gone = "HTTP/1.1 410 Gone\r\ncontent-length: 2\r\n\r\n{}"
	for _, tc := range []struct {
		in           string
		status, size int
		err          bool
	}{
		{in: ok[:20]},
		{in: ok, status: 200, size: len(ok)},
		{in: ok + "HTTP/1.1", status: 200, size: len(ok)},
		{in: gone[:len(gone)-1]},
		{in: gone, status: 410, size: len(gone)},
		{in: "HTTP/1.0 200 OK\r\n\r\n", err: true},
		{in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", err: true},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", err: true},
	} {
		status, size, err := httpread.Parse([]byte(tc.in))
		if (err != nil) != tc.err || status != tc.status || size != tc.size {
			t.Errorf("httpread.Parse(%q) = %d, %d, %v; want %d, %d, error %v", tc.in, status, size, err, tc.status, tc.size, tc.err)
		}
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	one := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
	if n := testing.AllocsPerRun(100, func() {
		if _, size, err := httpread.Parse(one); err != nil || size != len(one) {
			t.Fatal(size, err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per answer", n)
	}
}
