package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsgate/wsgate/server"
)

// TestSQLiteStreamRestart: a change written while wsgate is down is
// delivered after it starts again, from the position kept in the database,
// with its old and new images. The target is an http integration (at least
// once): a group target would publish the backlog before a client could
// re-subscribe, which its at-most-once guarantee allows to reach nobody.
func TestSQLiteStreamRestart(t *testing.T) {
	db, sql := sqliteDB(t)
	backend, got := recordingBackend(t)
	config := ordersStream(db, fmt.Sprintf("{ integration: { type: http, uri: %q } }", backend))
	record := func() events.DynamoDBEventRecord {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(20 * time.Second):
			t.Fatal("no record within 20 s")
			return events.DynamoDBEventRecord{}
		}
	}

	srv := startServer(t, config)
	sql(`INSERT INTO orders VALUES ('o-1', 'pending')`)
	if r := record(); r.EventName != "INSERT" || r.Change.NewImage["status"].String() != "pending" {
		t.Fatalf("record %+v", r)
	}
	waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.Delivered < 1 {
			return fmt.Errorf("@streams: %+v", s)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Written while wsgate is down.
	sql(`UPDATE orders SET status = 'paid' WHERE id = 'o-1'`)
	startServer(t, config)
	if r := record(); r.EventName != "MODIFY" || r.Change.OldImage["status"].String() != "pending" || r.Change.NewImage["status"].String() != "paid" {
		t.Fatalf("record after restart %+v", r)
	}
	sql(`DELETE FROM orders WHERE id = 'o-1'`)
	if r := record(); r.EventName != "REMOVE" || r.Change.Keys["id"].String() != "o-1" {
		t.Fatalf("record %+v", r)
	}
	select {
	case r := <-got:
		t.Fatalf("a record twice or one too many: %+v", r)
	default:
	}
}

func signedGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, b := signedRequest(t, http.MethodGet, url)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b
}

// TestStreamFilterCriteria: a stream with Lambda's FilterCriteria invokes
// its integration with the matching changes only, in order, and counts the
// others as filtered in @streams. The two filters are ORed: inserts whose
// status starts with "paid", and every removal.
func TestStreamFilterCriteria(t *testing.T) {
	db, sql := sqliteDB(t)
	backend, got := recordingBackend(t)
	target := fmt.Sprintf(`
      integration: { type: http, uri: %q }
      filterCriteria:
        filters:
          - pattern: '{"eventName":["INSERT"],"dynamodb":{"NewImage":{"status":{"S":[{"prefix":"paid"}]}}}}'
          - pattern: { eventName: [REMOVE] }`, backend)
	srv := startServer(t, ordersStream(db, target))

	sql(`INSERT INTO orders VALUES ('o-1', 'pending')`)
	sql(`INSERT INTO orders VALUES ('o-2', 'paid-card')`)
	sql(`UPDATE orders SET status = 'paid' WHERE id = 'o-1'`)
	sql(`DELETE FROM orders WHERE id = 'o-1'`)
	s := waitStream(t, srv, "orders", func(s server.StreamJSON) error {
		if s.Delivered < 4 || s.Integration == nil || s.Integration.Filtered < 2 {
			return fmt.Errorf("@streams: %+v", s)
		}
		return nil
	})
	if s.Integration.Filtered != 2 || s.Integration.Discarded != 0 {
		t.Fatalf("@streams integration counters %+v", *s.Integration)
	}
	var recs []string
	for len(got) > 0 {
		r := <-got
		recs = append(recs, r.EventName+" "+r.Change.Keys["id"].String())
	}
	if want := []string{"INSERT o-2", "REMOVE o-1"}; !slices.Equal(recs, want) {
		t.Fatalf("delivered %q, want %q", recs, want)
	}
}

// recordingBackend is an http integration's backend that takes
// DynamoDBEvent batches and sends their records, in order, to the channel.
func recordingBackend(t *testing.T) (string, chan events.DynamoDBEventRecord) {
	got := make(chan events.DynamoDBEventRecord, 16)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev events.DynamoDBEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rec := range ev.Records {
			got <- rec
		}
	}))
	t.Cleanup(backend.Close)
	return backend.URL, got
}
