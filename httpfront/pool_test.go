package httpfront

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestServingMaxIdle: a burst of keep-alive connections, each with a
// request in its handler at once (32 more than serving's idle bound, so
// as many goroutines), is answered; each connection then waits for its
// next request on its goroutine, as kept-alive ones do, until its client
// closes it. Of the burst's goroutines at most the bound then stay
// waiting for a turn: the others exit as their turn ends, rather than
// wait 5 to 10 s with their stacks (before, every one of them waited).
func TestServingMaxIdle(t *testing.T) {
	bound := serving.MaxIdle()
	if want := poolIdlePerCore * runtime.GOMAXPROCS(0); bound != want {
		t.Fatalf("serving keeps %d goroutines idle at most, want %d (poolIdlePerCore × GOMAXPROCS)", bound, want)
	}
	n := bound + 32
	var in atomic.Int32
	release := make(chan struct{})
	tf := startFront(t, func(s *Server) {
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/burst" {
				in.Add(1)
				<-release
			}
			_, _ = io.WriteString(w, "ok")
		})
	})
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		conns[i], readers[i] = dial(t, tf.addr)
		_ = conns[i].SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.WriteString(conns[i], post("/burst", "")); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := in.Load(); got != int32(n) {
			return fmt.Errorf("%d of %d requests in their handler", got, n)
		}
		return nil
	})
	if live := serving.Live(); live < n {
		t.Fatalf("%d goroutines in serving for %d requests in their handlers", live, n)
	}
	close(release)
	for i, br := range readers {
		if resp, body := readBody(t, br); resp.StatusCode != 200 || body != "ok" || resp.Close {
			t.Fatalf("client %d: %d %q (close %v)", i, resp.StatusCode, body, resp.Close)
		}
	}
	for _, nc := range conns {
		_ = nc.Close()
	}
	// Every turn ends (each connection's read of its next head finds it
	// closed): then at most bound goroutines wait.
	testenv.Eventually(t, 60*time.Second, func() error {
		if live, waiting := serving.Live(), serving.Waiting(); live != waiting {
			return fmt.Errorf("%d goroutines, %d of them waiting: turns still running", live, waiting)
		}
		return nil
	})
	if live := serving.Live(); live > bound {
		t.Fatalf("%d goroutines wait in serving after the burst, bound %d", live, bound)
	}
	// The front serves on.
	nc, br := dial(t, tf.addr)
	if _, err := io.WriteString(nc, post("/after", "")); err != nil {
		t.Fatal(err)
	}
	if resp, body := readBody(t, br); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the burst: %d %q", resp.StatusCode, body)
	}
}
