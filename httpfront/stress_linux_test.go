//go:build linux

package httpfront

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStressLateHeads: connections whose heads come after they were
// accepted (parked in the poller) are all served, while other
// connections churn around them: upgrades recycling conns, keep-alive
// connections with their duplicate descriptors closing, silent ones cut
// by a short header timeout, servers shutting down with parked
// connections, descriptors reused all the while.
func TestStressLateHeads(t *testing.T) {
	d := time.Second
	if s := os.Getenv("HTTPFRONT_STRESS"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		d = v
	}
	stop := time.Now().Add(d)
	arms0 := armsSoFar()
	tf := startFront(t, nil)
	short := startFront(t, func(s *Server) { s.Fallback.ReadHeaderTimeout = 50 * time.Millisecond })
	var wg sync.WaitGroup
	var served, lost atomic.Int64
	failed := make(chan string, 1)
	fail := func(msg string) {
		select {
		case failed <- msg:
		default:
		}
	}
	run := func(f func(r *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for time.Now().Before(stop) && len(failed) == 0 {
				f(r)
			}
		}()
	}
	// Late heads: the ones that must never be lost.
	for range 4 {
		run(func(r *rand.Rand) {
			nc, err := net.Dial("tcp", tf.addr)
			if err != nil {
				fail(err.Error())
				return
			}
			defer nc.Close()
			local := nc.LocalAddr().String()
			if r.IntN(2) == 0 {
				time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
			}
			body := strconv.Itoa(r.IntN(1 << 20))
			if _, err := io.WriteString(nc, post("/late", body)); err != nil {
				fail(err.Error())
				return
			}
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				lost.Add(1)
				fail(fmt.Sprintf("late head from %s: %v\n%s", local, err, tf.Describe()))
				return
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "front POST /late "+strconv.Itoa(len(body))+" "+body {
				fail(fmt.Sprintf("late head from %s answered %q", local, b))
				return
			}
			served.Add(1)
		})
	}
	// Upgrades: hijacked connections recycle their conns.
	for range 2 {
		run(func(r *rand.Rand) {
			nc, err := net.Dial("tcp", tf.addr)
			if err != nil {
				return
			}
			defer nc.Close()
			if r.IntN(2) == 0 {
				time.Sleep(time.Duration(r.IntN(1000)) * time.Microsecond)
			}
			_, _ = io.WriteString(nc, "GET /hijack HTTP/1.1\r\nHost: h\r\n\r\n")
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.ReadAll(nc)
		})
	}
	// Keep-alive connections: several requests (waits on the duplicate),
	// closed after an answer or in the middle of a wait.
	for range 2 {
		run(func(r *rand.Rand) {
			nc, err := net.Dial("tcp", tf.addr)
			if err != nil {
				return
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			for range 1 + r.IntN(4) {
				if r.IntN(2) == 0 {
					time.Sleep(time.Duration(r.IntN(1000)) * time.Microsecond)
				}
				if _, err := io.WriteString(nc, post("/ka", "x")); err != nil {
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
			}
			if r.IntN(2) == 0 {
				time.Sleep(time.Duration(r.IntN(1000)) * time.Microsecond)
			}
		})
	}
	// Silent connections, cut by the short header timeout (the sweep).
	run(func(r *rand.Rand) {
		nc, err := net.Dial("tcp", short.addr)
		if err != nil {
			return
		}
		defer nc.Close()
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = nc.Read(make([]byte, 1))
	})
	// Servers shutting down with parked connections.
	run(func(r *rand.Rand) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return
		}
		s := &Server{Fallback: &http.Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 10 * time.Second}}
		done := make(chan struct{})
		go func() { _ = s.Serve(ln); close(done) }()
		var ncs []net.Conn
		for range 1 + r.IntN(4) {
			if nc, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				ncs = append(ncs, nc)
			}
		}
		time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.Shutdown(ctx)
		cancel()
		<-done
		for _, nc := range ncs {
			_ = nc.Close()
		}
	})
	wg.Wait()
	select {
	case msg := <-failed:
		t.Fatal(msg)
	default:
	}
	t.Logf("%d late heads served; %d registrations armed in all", served.Load(), armsSoFar()-arms0)
}

// Describe names a parked connection's state, its slot and its armed
// registration in the poller's epoll instance.
func TestDescribe(t *testing.T) {
	tf := startFront(t, nil)
	dial(t, tf.addr)
	waitParked(t, tf.Server, 1)
	got := tf.Describe()
	for _, want := range []string{"1 connections tracked", ": parked ", "unread-in-socket=0", "slot(mine=true", "epoll[events:40002019 data:"} {
		if !strings.Contains(got, want) {
			t.Fatalf("no %q in\n%s", want, got)
		}
	}
	t.Log(got)
}

// armsSoFar is how many times the poller armed a registration, over all
// descriptors.
func armsSoFar() (n uint64) {
	p := getPoller()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, sl := range p.slots {
		n += uint64(sl.gen)
	}
	return n
}
