package httpfront

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// TestReleaseHead: a handler that released its head (ReleaseHead, through
// a wrapping writer) has the connection's next head read into the same
// memory, each request still reading its own path and header; one that
// did not, or a server whose ReleaseHeads refuses, keeps its strings as
// they were however many requests follow on the socket.
func TestReleaseHead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allow   func(*http.Request) bool
		release bool
		reuse   bool
	}{
		{name: "released", allow: func(*http.Request) bool { return true }, release: true, reuse: true},
		{name: "not released", allow: func(*http.Request) bool { return true }},
		{name: "server refuses", allow: func(*http.Request) bool { return false }, release: true},
		{name: "no ReleaseHeads", release: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type seen struct {
				path, val string
				at        *byte
			}
			var (
				mu  sync.Mutex
				got []seen
			)
			tf := startFront(t, func(s *Server) {
				s.ReleaseHeads = tc.allow
				s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					mu.Lock()
					got = append(got, seen{r.URL.Path, r.Header.Get("X-Val"), unsafe.StringData(r.Method)})
					mu.Unlock()
					if tc.release {
						ReleaseHead(wrapped{w})
					}
				})
			})
			nc, br := dial(t, tf.addr)
			const n = 5
			for i := range n {
				// The same length each time: it fits the last head's memory.
				req := fmt.Sprintf("POST /p%d HTTP/1.1\r\nHost: h\r\nX-Val: v%d\r\nContent-Length: 1\r\n\r\nx", i, i)
				if _, err := io.WriteString(nc, req); err != nil {
					t.Fatal(err)
				}
				if resp, _ := readBody(t, br); resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: %d", i, resp.StatusCode)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != n {
				t.Fatalf("%d requests served, want %d", len(got), n)
			}
			for i, s := range got {
				// Read after every request was served: a string whose
				// memory a later head took would read that head's bytes.
				wantPath, wantVal := fmt.Sprintf("/p%d", i), fmt.Sprintf("v%d", i)
				if !tc.reuse && (s.path != wantPath || s.val != wantVal) {
					t.Errorf("request %d's strings now read %q, %q, want %q, %q", i, s.path, s.val, wantPath, wantVal)
				}
				if same := s.at == got[0].at; i > 0 && same != tc.reuse {
					t.Errorf("request %d's head in the first one's memory: %v, want %v", i, same, tc.reuse)
				}
			}
		})
	}
}

// wrapped is middleware's writer that unwraps to the front's.
type wrapped struct{ http.ResponseWriter }

func (w wrapped) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestReleaseHeadLongerHead: a head longer than the released memory gets
// new memory; its strings are whole.
func TestReleaseHeadLongerHead(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
	)
	tf := startFront(t, func(s *Server) {
		s.ReleaseHeads = func(*http.Request) bool { return true }
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths = append(paths, strings.Clone(r.URL.Path)+" "+r.Header.Get("X-Val"))
			mu.Unlock()
			ReleaseHead(w)
		})
	})
	nc, br := dial(t, tf.addr)
	for i, n := range []int{1, 3000, 2, 5000} {
		val := strings.Repeat(string(rune('a'+i)), n)
		if _, err := fmt.Fprintf(nc, "GET /q%d HTTP/1.1\r\nHost: h\r\nX-Val: %s\r\n\r\n", i, val); err != nil {
			t.Fatal(err)
		}
		readBody(t, br)
		mu.Lock()
		p := paths[i]
		mu.Unlock()
		if want := fmt.Sprintf("/q%d %s", i, val); p != want {
			t.Fatalf("request %d read %q, want %q", i, clip(p), clip(want))
		}
	}
}
