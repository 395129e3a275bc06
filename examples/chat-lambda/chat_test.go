package chatlambda_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/examples/internal/connections"
	"github.com/wsgate/wsgate/examples/internal/exampletest"
	"github.com/wsgate/wsgate/internal/testenv"
)

// buildDir holds bin/ with the three handlers, built once for the test
// binary; the config's ./bin/... commands run there.
var buildDir string

func TestMain(m *testing.M) {
	exampletest.Main(m, &buildDir, "./onconnect", "./ondisconnect", "./sendmessage")
}

// TestChat runs wsgate.yaml as a newcomer would: the three aws-lambda-go
// handlers as command integrations, the connections table in moto_server.
// Two clients connect; a message from one reaches both.
func TestChat(t *testing.T) {
	moto := exampletest.Moto(t)
	cfg := exampletest.LoadConfig(t, "wsgate.yaml")
	var table string
	for key, r := range cfg.Routes {
		// ./bin/onconnect is resolved against Dir, where TestMain built it.
		r.Integration.Dir = buildDir
		r.Integration.Env["AWS_ENDPOINT_URL_DYNAMODB"] = moto
		table = r.Integration.Env["TABLE_NAME"]
		if table == "" {
			t.Fatalf("route %s: no TABLE_NAME in wsgate.yaml", key)
		}
	}
	db := exampletest.DynamoDB(moto)
	exampletest.CreateTable(t, db, table, "connectionId", false)
	srv := exampletest.Start(t, cfg)

	alice := exampletest.Dial(t, srv, cfg.Stage)
	bob := exampletest.Dial(t, srv, cfg.Stage)
	// $connect answered before each handshake completed, so onconnect has
	// already put both ids into the table.
	if n := countConnections(t, moto, table); n != 2 {
		t.Fatalf("connections table holds %d ids after two connects, want 2", n)
	}

	if err := alice.WriteJSON(map[string]string{"action": "sendmessage", "data": "hello from alice"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*websocket.Conn{"alice": alice, "bob": bob} {
		if got := exampletest.Read(t, c); got != "hello from alice" {
			t.Errorf("%s received %q, want %q", name, got, "hello from alice")
		}
	}

	// ondisconnect removes the id once a client leaves.
	bob.Close()
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := countConnections(t, moto, table); n != 1 {
			return fmt.Errorf("connections table holds %d ids, want 1", n)
		}
		return nil
	})
}

// countConnections reads the table the way sendmessage does.
func countConnections(t *testing.T, moto, table string) int {
	t.Helper()
	t.Setenv("TABLE_NAME", table)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", moto)
	tab, err := connections.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tab.IDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}
