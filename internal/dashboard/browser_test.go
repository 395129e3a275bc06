package dashboard_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/dashboard"
	"github.com/wsgate/wsgate/internal/dashboardtest"
	"github.com/wsgate/wsgate/internal/testenv"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the desktop screenshot to dashboard/screenshot.png")

// fakeGateway stands in for wsgate's gateway and change stream: it accepts
// WebSocket connections at /{stage}, expects the page's subscribe message,
// and sends every connection the records a capture loop derives from the
// SQLite table (by diffing it), plus viewer counts.
type fakeGateway struct {
	t     testing.TB
	group string

	mu    sync.Mutex
	conns map[*websocket.Conn]bool // subscribed connections; writes under mu
	down  bool                     // refuse new connections
	seq   int
	subs  int // subscribe messages seen
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	down := g.down
	g.mu.Unlock()
	if down {
		http.Error(w, "gateway down", http.StatusServiceUnavailable)
		return
	}
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	var sub struct{ Action, Group string }
	if err := c.ReadJSON(&sub); err != nil {
		return
	}
	if sub.Action != "subscribe" || sub.Group != g.group {
		g.t.Errorf("first message from the page: %+v, want subscribe to %s", sub, g.group)
		return
	}
	g.mu.Lock()
	g.conns[c] = true
	g.subs++
	// Frames the page must ignore: an ack and an API Gateway error frame.
	g.writeLocked(c, []byte(`{"action":"subscribe","group":"`+g.group+`","status":"subscribed"}`))
	g.writeLocked(c, []byte(`{"message": "Internal server error", "connectionId":"abc=", "requestId":"req-1"}`))
	g.writeLocked(c, []byte(`not json at all`))
	g.viewersLocked()
	g.mu.Unlock()

	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	g.mu.Lock()
	if g.conns[c] {
		delete(g.conns, c)
		g.viewersLocked()
	}
	g.mu.Unlock()
}

func (g *fakeGateway) writeLocked(c *websocket.Conn, frame []byte) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
		delete(g.conns, c)
		c.Close()
	}
}

func (g *fakeGateway) viewersLocked() {
	frame := []byte(`{"type":"viewers","count":` + strconv.Itoa(len(g.conns)) + `}`)
	for c := range g.conns {
		g.writeLocked(c, frame)
	}
}

func (g *fakeGateway) viewers() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

func (g *fakeGateway) subscribes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.subs
}

// Publish sends data to every subscribed connection: the fake gateway is a
// streams.Publisher, as the real gateway's hub is.
func (g *fakeGateway) Publish(ctx context.Context, group string, data []byte) error {
	if group != g.group {
		return fmt.Errorf("publish to group %q, want %q", group, g.group)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		g.writeLocked(c, data)
	}
	return nil
}

// publish sends each record to every subscribed connection.
func (g *fakeGateway) publish(recs []events.DynamoDBEventRecord) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rec := range recs {
		g.seq++
		rec.Change.SequenceNumber = fmt.Sprintf("%021d", g.seq)
		rec.EventID = fmt.Sprintf("ev-%d", g.seq)
		frame, err := json.Marshal(rec)
		if err != nil {
			g.t.Errorf("marshaling record: %v", err)
			return
		}
		for c := range g.conns {
			g.writeLocked(c, frame)
		}
	}
}

// setDown refuses new connections (down) and drops the open ones.
func (g *fakeGateway) setDown(down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = down
	if down {
		for c := range g.conns {
			c.Close()
			delete(g.conns, c)
		}
	}
}

// capture polls the table and publishes what changed since the last poll
// as DynamoDB Streams records, as a change data capture would (coalescing
// changes to one row between two polls), until ctx is done.
func capture(ctx context.Context, t testing.TB, db *sql.DB, g *fakeGateway) {
	prev, err := readTable(ctx, db)
	if err != nil {
		if ctx.Err() == nil {
			t.Errorf("capture: %v", err)
		}
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur, err := readTable(ctx, db)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("capture: %v", err)
			}
			return
		}
		g.publish(diff(prev, cur))
		prev = cur
	}
}

type row map[string]any

func readTable(ctx context.Context, db *sql.DB) (map[string]row, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, status, customer, item, quantity, amount, updated_at FROM orders ORDER BY rowid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]row{}
	for rows.Next() {
		var id, status, customer, item, updated string
		var quantity int64
		var amount float64
		if err := rows.Scan(&id, &status, &customer, &item, &quantity, &amount, &updated); err != nil {
			return nil, err
		}
		out[id] = row{"id": id, "status": status, "customer": customer, "item": item,
			"quantity": quantity, "amount": amount, "updated_at": updated}
	}
	return out, rows.Err()
}

// diff returns the records that take prev to cur, inserts and modifies in
// rowid-independent key order, then removes.
func diff(prev, cur map[string]row) []events.DynamoDBEventRecord {
	var recs []events.DynamoDBEventRecord
	keys := make([]string, 0, len(cur))
	for k := range cur {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		old, ok := prev[k]
		switch {
		case !ok:
			recs = append(recs, record("INSERT", k, nil, cur[k]))
		case fmt.Sprint(old) != fmt.Sprint(cur[k]):
			recs = append(recs, record("MODIFY", k, old, cur[k]))
		}
	}
	keys = keys[:0]
	for k := range prev {
		if _, ok := cur[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		recs = append(recs, record("REMOVE", k, prev[k], nil))
	}
	return recs
}

func record(kind, id string, old, new row) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{
		AWSRegion:      "us-east-1",
		EventName:      kind,
		EventSource:    "aws:dynamodb",
		EventVersion:   "1.1",
		EventSourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2026-01-01T00:00:00.000",
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Now()},
			Keys:                        map[string]events.DynamoDBAttributeValue{"id": events.NewStringAttribute(id)},
			NewImage:                    attributes(new),
			OldImage:                    attributes(old),
			SizeBytes:                   100,
			StreamViewType:              "NEW_AND_OLD_IMAGES",
		},
	}
}

func attributes(r row) map[string]events.DynamoDBAttributeValue {
	if r == nil {
		return nil
	}
	out := map[string]events.DynamoDBAttributeValue{}
	for k, v := range r {
		switch v := v.(type) {
		case string:
			out[k] = events.NewStringAttribute(v)
		case int64:
			out[k] = events.NewNumberAttribute(strconv.FormatInt(v, 10))
		case float64:
			out[k] = events.NewNumberAttribute(strconv.FormatFloat(v, 'f', -1, 64))
		case nil:
			out[k] = events.NewNullAttribute()
		}
	}
	return out
}

// startDemo serves the dashboard and the fake gateway on 127.0.0.1 and
// runs the capture loop until the test ends. afterSnapshot, when not nil,
// runs after each GET /api/snapshot has read the table and before the
// response is sent.
func startDemo(t *testing.T, afterSnapshot func()) (*sql.DB, *fakeGateway, *httptest.Server) {
	t.Helper()
	db, _ := openDemoDB(t)
	gw := &fakeGateway{t: t, group: "orders", conns: map[*websocket.Conn]bool{}}
	mux := http.NewServeMux()
	mux.Handle("/demo", gw)
	h := dashboard.Handler(dashboard.Config{
		DB: db, Table: "orders", Stage: "demo", Group: "orders", Viewers: gw.viewers,
		SQLiteCommand: dashboard.DefaultSQLiteCommand("wsgate-demo.db", "orders"),
	})
	mux.Handle("/", h)
	if afterSnapshot != nil {
		mux.HandleFunc("GET /api/snapshot", func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			afterSnapshot()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	}
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		capture(ctx, t, db, gw)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		gw.setDown(true)
		srv.Close()
	})
	return db, gw, srv
}

// within runs the dashboardtest wait f with a deadline and fails the test
// when it returns an error.
func within(t *testing.T, ctx context.Context, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatal(err)
	}
}

func mustExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestBrowserLiveTable(t *testing.T) {
	t.Parallel()
	db, _, srv := startDemo(t, nil)
	page, _ := dashboardtest.Open(t, srv.URL+"/")

	within(t, page, dashboardtest.WaitLive)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitViewers(ctx, 1) })
	// The snapshot: every seeded row, newest first.
	ids, err := dashboardtest.RowIDs(page)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"o-1008", "o-1007", "o-1006", "o-1005", "o-1004", "o-1003", "o-1002", "o-1001"}
	if !slices.Equal(ids, want) {
		t.Fatalf("rows after load: %v, want %v", ids, want)
	}

	// An insert appears, at the top.
	mustExec(t, db, `INSERT INTO orders (id, status, customer, item, quantity, amount) VALUES ('o-test', 'pending', 'Tess', 'Mug', 2, 25)`)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowStatus(ctx, "o-test", "pending") })
	if ids, _ := dashboardtest.RowIDs(page); len(ids) == 0 || ids[0] != "o-test" {
		t.Errorf("rows after insert: %v, want o-test first", ids)
	}
	// Updates change cells.
	mustExec(t, db, `UPDATE orders SET status = 'paid' WHERE id = 'o-test'`)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowStatus(ctx, "o-test", "paid") })
	mustExec(t, db, `UPDATE orders SET quantity = 3, amount = 37.5 WHERE id = 'o-test'`)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitCell(ctx, "o-test", "amount", "37.5") })
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitCell(ctx, "o-test", "quantity", "3") })
	// A delete removes the row.
	mustExec(t, db, `DELETE FROM orders WHERE id = 'o-1001'`)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowGone(ctx, "o-1001") })

	// The feed shows each change, newest first, with old and new values.
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitFeed(ctx, 4) })
	feed, err := dashboardtest.Feed(page)
	if err != nil {
		t.Fatal(err)
	}
	wantFeed := []string{
		"REMOVE o-1001: ",
		"MODIFY o-test: quantity 2 → 3 amount 25.00 → 37.50",
		"MODIFY o-test: status pending → paid",
		"INSERT o-test: Tess · Mug · pending",
	}
	if len(feed) != len(wantFeed) {
		t.Fatalf("feed = %q, want %q", feed, wantFeed)
	}
	for i, w := range wantFeed {
		if !strings.HasPrefix(feed[i], w) {
			t.Errorf("feed[%d] = %q, want %q…", i, feed[i], w)
		}
	}
	if rate, _ := dashboardtest.Text(page, "#rate-total"); rate != "4" {
		t.Errorf("chart counts %q changes in the last minute, want 4", rate)
	}

	// A second page raises the viewer count on both.
	other, closeOther := dashboardtest.Open(t, srv.URL+"/")
	within(t, other, dashboardtest.WaitLive)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitViewers(ctx, 2) })
	within(t, other, func(ctx context.Context) error { return dashboardtest.WaitViewers(ctx, 2) })
	// And closing it lowers the count again.
	closeOther()
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitViewers(ctx, 1) })
}

func TestBrowserReconnectsAndCatchesUp(t *testing.T) {
	t.Parallel()
	db, gw, srv := startDemo(t, nil)
	page, _ := dashboardtest.Open(t, srv.URL+"/")
	within(t, page, dashboardtest.WaitLive)
	subs := gw.subscribes()

	// Drop the WebSocket and keep the gateway down while the table
	// changes: those records reach nobody, so only the snapshot taken on
	// reconnect can bring the page up to date.
	gw.setDown(true)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitConnection(ctx, "reconnecting") })
	mustExec(t, db, `INSERT INTO orders (id, status, customer, item, quantity, amount) VALUES ('o-late', 'pending', 'Lee', 'Kettle', 1, 54)`)
	mustExec(t, db, `UPDATE orders SET status = 'delivered' WHERE id = 'o-1008'`)
	mustExec(t, db, `DELETE FROM orders WHERE id = 'o-1002'`)
	// Let the capture loop publish those changes to nobody before the
	// gateway comes back.
	testenv.Eventually(t, 30*time.Second, func() error {
		gw.mu.Lock()
		defer gw.mu.Unlock()
		if gw.seq < 3 {
			return fmt.Errorf("%d records published", gw.seq)
		}
		return nil
	})
	gw.setDown(false)

	within(t, page, dashboardtest.WaitLive)
	if gw.subscribes() <= subs {
		t.Errorf("page did not subscribe again after reconnecting")
	}
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowStatus(ctx, "o-late", "pending") })
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowStatus(ctx, "o-1008", "delivered") })
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowGone(ctx, "o-1002") })

	// And it is live again.
	mustExec(t, db, `UPDATE orders SET status = 'paid' WHERE id = 'o-late'`)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowStatus(ctx, "o-late", "paid") })
}

// TestBrowserScreenshots runs the generator behind the page for a while and
// takes a desktop and a phone screenshot (in the test's artifact
// directory; with -update-screenshot the desktop one also becomes
// dashboard/screenshot.png for the README).
func TestBrowserScreenshots(t *testing.T) {
	t.Parallel()
	db, _, srv := startDemo(t, nil)
	page, _ := dashboardtest.Open(t, srv.URL+"/")
	within(t, page, dashboardtest.WaitLive)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&dashboard.Generator{DB: db, Rate: 6, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}).Run(ctx)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("generator: %v", err)
		}
	}()
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitFeed(ctx, 40) })
	if *updateScreenshot {
		// The README's picture deserves a chart with some history.
		testenv.Eventually(t, 120*time.Second, func() error {
			n, err := dashboardtest.Eval[int](page, `Number(document.querySelector('#rate-total').textContent)`)
			if err == nil && n < 250 {
				err = fmt.Errorf("%d changes in the chart", n)
			}
			return err
		})
	}

	dir := t.ArtifactDir()
	desktop := filepath.Join(dir, "desktop.png")
	if err := dashboardtest.Screenshot(page, desktop); err != nil {
		t.Fatal(err)
	}
	if *updateScreenshot {
		if err := dashboardtest.Screenshot(page, "screenshot.png"); err != nil {
			t.Fatal(err)
		}
	}
	if err := dashboardtest.SetColorScheme(page, "dark"); err != nil {
		t.Fatal(err)
	}
	if err := dashboardtest.ViewportScreenshot(page, filepath.Join(dir, "desktop-dark.png")); err != nil {
		t.Fatal(err)
	}
	if err := dashboardtest.SetColorScheme(page, ""); err != nil {
		t.Fatal(err)
	}
	if err := dashboardtest.SetViewport(page, dashboardtest.PhoneWidth, dashboardtest.PhoneHeight, true); err != nil {
		t.Fatal(err)
	}
	// At phone width nothing may stick out sideways: the page itself must
	// not scroll horizontally (the table may, inside its card).
	testenv.Eventually(t, 30*time.Second, func() error {
		w, err := dashboardtest.Eval[int](page, `document.documentElement.scrollWidth`)
		if err != nil {
			return err
		}
		if w > dashboardtest.PhoneWidth {
			return fmt.Errorf("page is %d px wide at a %d px viewport", w, dashboardtest.PhoneWidth)
		}
		return nil
	})
	if err := dashboardtest.ViewportScreenshot(page, filepath.Join(dir, "phone.png")); err != nil {
		t.Fatal(err)
	}
	if err := dashboardtest.Screenshot(page, filepath.Join(dir, "phone-full.png")); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
}

// TestBrowserAppliesRecordsBufferedDuringSnapshot makes a change after the
// page's snapshot was read but before it arrives: the page receives that
// change's record first and must apply it after the (older) snapshot, not
// let the snapshot overwrite it.
func TestBrowserAppliesRecordsBufferedDuringSnapshot(t *testing.T) {
	t.Parallel()
	var db *sql.DB
	var gw *fakeGateway
	var once sync.Once
	db, gw, srv := startDemo(t, func() {
		once.Do(func() {
			gw.mu.Lock()
			published := gw.seq
			gw.mu.Unlock()
			if _, err := db.Exec(`UPDATE orders SET status = 'paid', quantity = 9 WHERE id = 'o-1007'`); err != nil {
				t.Error(err)
				return
			}
			testenv.Eventually(t, 30*time.Second, func() error {
				gw.mu.Lock()
				defer gw.mu.Unlock()
				if gw.seq == published {
					return errors.New("change not published yet")
				}
				return nil
			})
		})
	})
	if got := count(t, db, `SELECT count(*) FROM orders WHERE id = 'o-1007' AND status = 'pending' AND quantity <> 9`); got != 1 {
		t.Fatalf("seed row o-1007 is not pending; pick another row")
	}
	page, _ := dashboardtest.Open(t, srv.URL+"/")
	within(t, page, dashboardtest.WaitLive)
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitRowStatus(ctx, "o-1007", "paid") })
	within(t, page, func(ctx context.Context) error { return dashboardtest.WaitCell(ctx, "o-1007", "quantity", "9") })
}
