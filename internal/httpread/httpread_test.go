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
