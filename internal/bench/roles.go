package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/server"
)

// RunRole runs one process role of the harness ("server", "backend",
// "stall", "raw", "floor", "hop", "worker") and returns the exit status. Roles end when their
// stdin closes (the orchestrator went away) or they are killed.
func RunRole(role string, args []string) int {
	raiseNofile()
	var err error
	switch role {
	case "server":
		err = serverRole(args)
	case "backend":
		err = backendRole()
	case "stall":
		err = stallRole()
	case "raw":
		err = rawRole(args)
	case "floor":
		err = floorRole(args)
	case "hop":
		err = hopRole(args)
	case "worker":
		err = workerRole()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate-bench %s: %v\n", role, err)
		return 1
	}
	return 0
}

// announce is the first line every service role prints.
type announce struct {
	Addr  string `json:"addr"`
	Debug string `json:"debug,omitempty"`
}

func printJSON(v any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

// waitStdin blocks until stdin closes.
func waitStdin() { _, _ = io.Copy(io.Discard, os.Stdin) }

// Stats is what the server role's /stats reports.
type Stats struct {
	HeapInuse  uint64 `json:"heapInuse"`
	StackInuse uint64 `json:"stackInuse"`
	HeapAlloc  uint64 `json:"heapAlloc"`
	Sys        uint64 `json:"sys"`
	Goroutines int    `json:"goroutines"`
	Conns      int    `json:"conns"`
	// The collector: cycles so far, and the stop-the-world pause of each
	// of the last 256 (runtime.MemStats.PauseNs, cycle n at (n+255)%256).
	NumGC   uint32      `json:"numGC"`
	PauseNs [256]uint64 `json:"pauseNs"`
}

// serverRole runs wsgate (server.New, as `wsgate serve` does) with a side
// port for pprof and memory statistics.
func serverRole(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	config := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := server.LoadConfig(*config)
	if err != nil {
		return err
	}
	level := slog.LevelError
	_ = level.UnmarshalText([]byte(os.Getenv("WSGATE_BENCH_LOG"))) // e.g. info, to see close reasons
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(*cfg, logger)
	if err != nil {
		return err
	}
	srv.Start()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") != "" {
			runtime.GC()
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		_ = json.NewEncoder(w).Encode(Stats{
			HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, HeapAlloc: ms.HeapAlloc, Sys: ms.Sys,
			Goroutines: runtime.NumGoroutine(), Conns: srv.Gateway().Connections(),
			NumGC: ms.NumGC, PauseNs: ms.PauseNs,
		})
	})
	mux.HandleFunc("/unwritten", func(w http.ResponseWriter, _ *http.Request) {
		frames, writing := srv.Gateway().Unwritten()
		_ = json.NewEncoder(w).Encode(unwritten{Frames: frames, Writing: writing})
	})
	dln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(dln, mux) }()
	printJSON(announce{Addr: srv.Addr(), Debug: dln.Addr().String()})
	waitStdin()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return nil
}

// backendRole is the trivial http integration backend: /connect accepts,
// /whoami answers the connection id, /echo answers the message body.
func backendRole() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	type event struct {
		Body           string `json:"body"`
		RequestContext struct {
			ConnectionID string `json:"connectionId"`
		} `json:"requestContext"`
	}
	answer := func(w http.ResponseWriter, body string) {
		b, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json")
		out := make([]byte, 0, len(b)+32)
		out = append(out, `{"statusCode":200,"body":`...)
		out = append(out, b...)
		_, _ = w.Write(append(out, '}'))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/connect", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"statusCode":200}`))
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		var ev event
		_ = json.NewDecoder(r.Body).Decode(&ev)
		answer(w, ev.RequestContext.ConnectionID)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		var ev event
		_ = json.NewDecoder(r.Body).Decode(&ev)
		answer(w, ev.Body)
	})
	go func() { _ = http.Serve(ln, mux) }()
	printJSON(announce{Addr: ln.Addr().String()})
	waitStdin()
	return nil
}

// stallCap bounds the stalled backend's open connections, within its own
// open-files limit; beyond it a connection is closed at once.
const stallCap = 15000

// stallRole is a backend that stalls: it accepts connections, reads and
// discards what arrives and never answers, until the peer closes. Its open
// files are the server's stalled calls.
func stallRole() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var open atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil { // e.g. EMFILE: wait for a close
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if open.Add(1) > stallCap {
				open.Add(-1)
				c.Close()
				continue
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				c.Close()
				open.Add(-1)
			}()
		}
	}()
	printJSON(announce{Addr: ln.Addr().String()})
	waitStdin()
	return nil
}

// rawRole is the fan-out floor: it accepts WebSocket connections with no
// gateway logic and, on POST /publish, writes one pre-encoded text frame
// to every socket from -writers goroutines (blocking writes, no queue),
// in the order the connections were accepted, or with -random in one
// random order (drawn at the first publish), as wsgate writes a group in
// the order of its random connection ids.
func rawRole(args []string) error {
	fs := flag.NewFlagSet("raw", flag.ContinueOnError)
	writers := fs.Int("writers", runtime.NumCPU(), "goroutines writing a publish")
	random := fs.Bool("random", false, "write in a random order, not the order of accepting")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		conns    []net.Conn
		shuffled bool // in -random order
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if _, err := ws.Upgrade(c); err != nil {
					c.Close()
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}()
		}
	}()
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(conns)
		mu.Unlock()
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/publish", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		frame := ws.MustCompileFrame(ws.NewTextFrame(body))
		mu.Lock()
		if *random && !shuffled {
			shuffled = true
			mrand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
		}
		cs := conns
		mu.Unlock()
		var wg sync.WaitGroup
		var failed sync.Map
		for k := range *writers {
			wg.Go(func() {
				for i := k; i < len(cs); i += *writers {
					if _, err := cs[i].Write(frame); err != nil {
						failed.Store(i, true)
					}
				}
			})
		}
		wg.Wait()
		skipped := 0
		failed.Range(func(any, any) bool { skipped++; return true })
		fmt.Fprintf(w, `{"delivered":%d,"skipped":%d}`, len(cs)-skipped, skipped)
	})
	go func() { _ = http.Serve(cln, mux) }()
	printJSON(announce{Addr: ln.Addr().String(), Debug: cln.Addr().String()})
	waitStdin()
	return nil
}

// parseT reads N from a payload that starts with {"t":N (quoted or not).
func parseT(p []byte) int64 {
	const prefix = `{"t":`
	if len(p) < len(prefix) || string(p[:len(prefix)]) != prefix {
		return 0
	}
	p = p[len(prefix):]
	end := 0
	for end < len(p) && p[end] >= '0' && p[end] <= '9' {
		end++
	}
	n, _ := strconv.ParseInt(string(p[:end]), 10, 64)
	return n
}
