// Package natstest runs a standalone NATS server for tests: the external
// NATS of a cluster.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a NATS server with JetStream (file store in a temporary
// directory) on a free loopback port until the test ends, and returns its
// client URL.
func Start(t testing.TB) string {
	t.Helper()
	return StartWith(t, func(*server.Options) {}).ClientURL()
}

// StartWith is Start with the options changed by set first (TLS, say);
// it returns the running server.
func StartWith(t testing.TB, set func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	set(o)
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	// JetStream's start (its store, its account) takes seconds on a
	// loaded machine under -race.
	if !ns.ReadyForConnections(60 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}
