package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
)

// TestSQLiteStreamRestart: changes written by the sqlite3 CLI reach a
// subscribed client as DynamoDB stream records; a change written while
// wsgate is down arrives after it restarts; @streams reports progress.
func TestSQLiteStreamRestart(t *testing.T) {
	sqlite := testenv.LookPath(t, "sqlite3", "apt-get install -y sqlite3")
	db := filepath.Join(t.TempDir(), "app.db")
	run := func(stmt string) {
		t.Helper()
		if out, err := exec.Command(sqlite, "-cmd", ".timeout 5000", db, stmt).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v\n%s", err, out)
		}
	}
	run(`CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT)`)
	config := fmt.Sprintf(`
listen: "127.0.0.1:0"
stage: dev
credentials: [{ accessKeyId: AKIDLOCAL, secretAccessKey: change-me }]
routes:
  subscribe: { groups: { join: "$request.body.group", allow: [orders] }, routeResponseSelectionExpression: "$default" }
streams:
  - source: { type: sqlite, path: %q, tables: [orders] }
    target: { group: orders }
`, db)
	subscribe := func(addr string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","group":"orders"}`))
		if got := read(t, c); !strings.Contains(got, "subscribed") {
			t.Fatalf("subscribe answered %q", got)
		}
		return c
	}
	record := func(c *websocket.Conn) events.DynamoDBEventRecord {
		var r events.DynamoDBEventRecord
		if err := json.Unmarshal([]byte(read(t, c)), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	srv := startServer(t, config)
	c := subscribe(srv.Addr())
	run(`INSERT INTO orders VALUES ('o-1', 'pending')`)
	if r := record(c); r.EventName != "INSERT" || r.Change.NewImage["status"].String() != "pending" {
		t.Fatalf("record %+v", r)
	}
	var st struct {
		Streams []struct {
			Name      string `json:"name"`
			Delivered int64  `json:"delivered"`
		} `json:"streams"`
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if err := json.Unmarshal(signedGet(t, srv.ManagementEndpoint()+"/@streams"), &st); err != nil {
			return err
		}
		if len(st.Streams) != 1 || st.Streams[0].Delivered < 1 {
			return fmt.Errorf("@streams: %+v", st)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Written while wsgate is down.
	run(`UPDATE orders SET status = 'paid' WHERE id = 'o-1'`)
	srv2 := startServer(t, config)
	c2 := subscribe(srv2.Addr())
	if r := record(c2); r.EventName != "MODIFY" || r.Change.OldImage["status"].String() != "pending" || r.Change.NewImage["status"].String() != "paid" {
		t.Fatalf("record after restart %+v", r)
	}
	run(`DELETE FROM orders WHERE id = 'o-1'`)
	if r := record(c2); r.EventName != "REMOVE" || r.Change.Keys["id"].String() != "o-1" {
		t.Fatalf("record %+v", r)
	}
}

func signedGet(t *testing.T, url string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	const emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDLOCAL", SecretAccessKey: "change-me"},
		req, emptySHA, "execute-api", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b
}
