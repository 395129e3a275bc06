// Package servertest runs a wsgate server inside a test and talks to it:
// what the server, function and example tests share.
package servertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// Start runs wsgate with cfg until the test ends. It logs at debug level,
// as JSON, into the returned buffer, which is shown when the test fails.
// A cfg without a stateDir (from ParseConfig, which knows no config file
// to put it beside) gets a temporary one: the product's default,
// server.DefaultStateDir in the working directory, would leave the local
// CA in the package's source directory.
func Start(t testing.TB, cfg *server.Config) (*server.Server, *testenv.Buffer) {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	logs := &testenv.Buffer{}
	srv, err := server.New(*cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("wsgate log:\n%s", logs)
		}
	})
	return srv, logs
}

// Read reads one message from c. The 30 s deadline only guards against a
// hang: a loaded machine running -race can take seconds.
func Read(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}
