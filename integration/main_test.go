package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/internal/testenv"
)

// bin holds the test handler programs, built once per test binary.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wsgate-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = dir
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./testdata/handler", "./testdata/initexit", "./testdata/initerror")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building test handlers:", err)
		return 1
	}
	defer testenv.StopMoto()
	return m.Run()
}

// handlerPath is the path of a built test handler.
func handlerPath(name string) string { return filepath.Join(bin, name) }

// recorder is a slog.Handler that keeps every record, for tests that check
// what reached the logger.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   []slog.Attr
	shared  *recorder
}

func newRecorder() *recorder { r := &recorder{}; r.shared = r; return r }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(r.attrs...)
	r.shared.mu.Lock()
	r.shared.records = append(r.shared.records, rec)
	r.shared.mu.Unlock()
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{attrs: append(slices.Clone(r.attrs), as...), shared: r.shared}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// find returns the attributes of the first record whose message is msg.
func (r *recorder) find(msg string) (map[string]string, bool) {
	r.shared.mu.Lock()
	defer r.shared.mu.Unlock()
	for _, rec := range r.shared.records {
		if rec.Message != msg {
			continue
		}
		m := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		return m, true
	}
	return nil, false
}
