package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/internal/testenv"
)

func esc(id string) string { return strings.ReplaceAll(id, "=", "%3D") }

type delivery struct {
	Delivered int `json:"delivered"`
	Skipped   int `json:"skipped"`
}

func (tg *testGateway) publish(t testing.TB, group string, body []byte) delivery {
	t.Helper()
	resp, b := tg.signed(t, "POST", "/dev/@groups/"+group, body)
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
	var d delivery
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (tg *testGateway) join(t testing.TB, group, id string) {
	t.Helper()
	resp, b := tg.signed(t, "PUT", "/dev/@groups/"+group+"/@connections/"+esc(id), nil)
	if resp.StatusCode != 204 {
		t.Fatalf("join: %d %s", resp.StatusCode, b)
	}
}

// TestGroups: join, publish to exactly the members, members and listing
// with pagination, leave, and a closed connection gone from every group.
func TestGroups(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	var cs []*websocket.Conn
	var ids []string
	for i := 0; i < 3; i++ {
		c := tg.dial(t, nil)
		cs = append(cs, c)
		ids = append(ids, whoami(t, c))
	}
	tg.join(t, "g1", ids[0])
	tg.join(t, "g1", ids[1])
	tg.join(t, "g1", ids[1]) // twice is fine
	tg.join(t, "other.group:2", ids[2])

	if d := tg.publish(t, "g1", []byte("to g1")); d.Delivered != 2 || d.Skipped != 0 {
		t.Fatalf("publish: %+v", d)
	}
	for _, c := range cs[:2] {
		if got := readText(t, c); got != "to g1" {
			t.Fatalf("member got %q", got)
		}
	}
	// The non-member gets nothing: its next frame is the one meant for it.
	if d := tg.publish(t, "other.group:2", []byte("to other")); d.Delivered != 1 {
		t.Fatalf("publish other: %+v", d)
	}
	if got := readText(t, cs[2]); got != "to other" {
		t.Fatalf("non-member got %q", got)
	}

	// Members, paginated.
	var all []string
	token := ""
	for pages := 0; ; pages++ {
		q := "?maxResults=1"
		if token != "" {
			q += "&nextToken=" + token
		}
		resp, b := tg.signed(t, "GET", "/dev/@groups/g1"+q, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("members: %d %s", resp.StatusCode, b)
		}
		var page struct {
			ConnectionIDs []string `json:"connectionIds"`
			NextToken     string   `json:"nextToken"`
		}
		_ = json.Unmarshal(b, &page)
		all = append(all, page.ConnectionIDs...)
		token = page.NextToken
		if token == "" || pages > 5 {
			break
		}
	}
	want := []string{ids[0], ids[1]}
	sort.Strings(want)
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("members %v, want %v", all, want)
	}

	// Listing of every connection, with groups.
	resp, b := tg.signed(t, "GET", "/dev/@connections?maxResults=2", nil)
	var list struct {
		Connections []struct {
			ConnectionID string   `json:"connectionId"`
			ConnectedAt  string   `json:"connectedAt"`
			Groups       []string `json:"groups"`
			Identity     struct {
				SourceIP string `json:"sourceIp"`
			} `json:"identity"`
		} `json:"connections"`
		NextToken string `json:"nextToken"`
	}
	_ = json.Unmarshal(b, &list)
	if resp.StatusCode != 200 || len(list.Connections) != 2 || list.NextToken == "" || list.Connections[0].Identity.SourceIP != "127.0.0.1" {
		t.Fatalf("listing: %d %s", resp.StatusCode, b)
	}
	_, b = tg.signed(t, "GET", "/dev/@connections?maxResults=2&nextToken="+list.NextToken, nil)
	var rest struct {
		Connections []json.RawMessage `json:"connections"`
		NextToken   string            `json:"nextToken"`
	}
	_ = json.Unmarshal(b, &rest)
	if len(rest.Connections) != 1 || rest.NextToken != "" {
		t.Fatalf("listing page 2: %s", b)
	}

	// Leave stops delivery.
	resp, _ = tg.signed(t, "DELETE", "/dev/@groups/g1/@connections/"+esc(ids[0]), nil)
	if resp.StatusCode != 204 {
		t.Fatalf("leave: %d", resp.StatusCode)
	}
	if d := tg.publish(t, "g1", []byte("after leave")); d.Delivered != 1 {
		t.Fatalf("after leave: %+v", d)
	}
	if got := readText(t, cs[1]); got != "after leave" {
		t.Fatalf("remaining member got %q", got)
	}

	// A closed connection is gone from every group.
	_ = cs[1].WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	readClose(t, cs[1])
	testenv.Eventually(t, 30*time.Second, func() error {
		if d := tg.publish(t, "g1", []byte("x")); d.Delivered != 0 {
			return fmt.Errorf("still delivered to %d", d.Delivered)
		}
		return nil
	})
}

// TestGroupErrors: 410, 400 and unsigned 403.
func TestGroupErrors(t *testing.T) {
	tg := startGateway(t, baseConfig())
	cases := []struct {
		name, method, path string
		status             int
		errType            string
	}{
		{"join unknown id", "PUT", "/dev/@groups/g1/@connections/AAAAAAAAAAAAAAA%3D", 410, "GoneException"},
		{"bad group name", "POST", "/dev/@groups/bad%20name", 400, "BadRequestException"},
		{"group name too long", "POST", "/dev/@groups/" + strings.Repeat("a", 129), 400, "BadRequestException"},
		{"slash in group", "GET", "/dev/@groups/a%2Fb", 400, "BadRequestException"},
		{"bad maxResults", "GET", "/dev/@groups/g1?maxResults=0", 400, "BadRequestException"},
		{"bad token", "GET", "/dev/@connections?nextToken=%25%25", 400, "BadRequestException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := tg.signed(t, tc.method, tc.path, nil)
			if resp.StatusCode != tc.status || resp.Header.Get("x-amzn-ErrorType") != tc.errType || !json.Valid(b) {
				t.Fatalf("%s %s: %d %s %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), b)
			}
		})
	}
	r, err := http.Post("http://"+tg.addr+"/dev/@groups/g1", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 403 {
		t.Fatalf("unsigned publish: %d", r.StatusCode)
	}
	resp, b := tg.signed(t, "POST", "/dev/@groups/g1", bytes.Repeat([]byte("x"), 131073))
	if resp.StatusCode != 413 {
		t.Fatalf("oversize publish: %d %s", resp.StatusCode, b)
	}
	if d := tg.publish(t, "nobody-here", []byte("x")); d.Delivered != 0 {
		t.Fatalf("empty group: %+v", d)
	}
}

// TestGroupLimits: with the defaults, one connection joins 100 groups and
// the 101st join answers 429 LimitExceededException; with smaller limits,
// a groups route answers the Forbidden frame past maxGroupsPerConnection,
// and a join that would create a group past maxGroups fails while joins
// of existing groups go on.
func TestGroupLimits(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	id := whoami(t, tg.dial(t, nil))
	for i := range 100 {
		tg.join(t, fmt.Sprint("g", i), id)
	}
	resp, b := tg.signed(t, "PUT", "/dev/@groups/g100/@connections/"+esc(id), nil)
	if resp.StatusCode != 429 || resp.Header.Get("x-amzn-ErrorType") != "LimitExceededException" || !strings.Contains(string(b), "100 groups") {
		t.Fatalf("101st join: %d %s %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), b)
	}
	tg.join(t, "g0", id) // already a member: still fine
	if resp, b := tg.signed(t, "DELETE", "/dev/@groups/g0/@connections/"+esc(id), nil); resp.StatusCode != 204 {
		t.Fatalf("leave: %d %s", resp.StatusCode, b)
	}
	tg.join(t, "g100", id)

	cfg = baseConfig()
	cfg.MaxGroupsPerConnection, cfg.MaxGroups = 2, 3
	cfg.Routes["whoami"] = be.whoamiRoute()
	cfg.Routes["subscribe"] = gateway.Route{
		Groups:                           &gateway.RouteGroups{Join: "$request.body.group", Allow: []string{"*"}},
		RouteResponseSelectionExpression: "$default",
	}
	tg = startGateway(t, cfg)
	a, b2 := tg.dial(t, nil), tg.dial(t, nil)
	subscribe := func(c *websocket.Conn, group string) string {
		t.Helper()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","group":"`+group+`"}`))
		return readText(t, c)
	}
	for _, g := range []string{"a1", "a2"} {
		if got := subscribe(a, g); !strings.Contains(got, "subscribed") {
			t.Fatalf("subscribe %s: %q", g, got)
		}
	}
	if got := subscribe(a, "a3"); !strings.HasPrefix(got, `{"message": "Forbidden"`) {
		t.Fatalf("3rd subscribe answered %q", got)
	}
	if got := subscribe(b2, "b1"); !strings.Contains(got, "subscribed") {
		t.Fatalf("subscribe b1: %q", got)
	}
	idB := whoami(t, b2)
	resp, b = tg.signed(t, "PUT", "/dev/@groups/b2/@connections/"+esc(idB), nil)
	if resp.StatusCode != 429 || resp.Header.Get("x-amzn-ErrorType") != "LimitExceededException" || !strings.Contains(string(b), "3 groups") {
		t.Fatalf("4th group: %d %s %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), b)
	}
	tg.join(t, "a1", idB) // an existing group
	if d := tg.publish(t, "a1", []byte("x")); d.Delivered != 2 {
		t.Fatalf("a1: %+v", d)
	}
}

// TestConnectGroupsOverLimit: groups that $connect names beyond
// maxGroupsPerConnection are not joined, the connection stays, and the log
// says which group was refused and why.
func TestConnectGroupsOverLimit(t *testing.T) {
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		if path == "/connect" {
			return 200, `{"statusCode":200,"groups":["g1","g2","g3"]}`
		}
		return echoEvent(path, ev)
	})
	cfg := baseConfig()
	cfg.MaxGroupsPerConnection = 2
	cfg.Routes["$connect"] = be.route("/connect")
	tg, logs := startGatewayLog(t, cfg)
	tg.dial(t, nil)
	for g, want := range map[string]int{"g1": 1, "g2": 1, "g3": 0} {
		if d := tg.publish(t, g, []byte("x")); d.Delivered != want {
			t.Fatalf("%s: %+v, want %d delivered", g, d, want)
		}
	}
	// The joins happen before the 101 is written: the line is there.
	if l := logs.String(); !strings.Contains(l, `"$connect group not joined"`) || !strings.Contains(l, "group=g3") {
		t.Fatalf("no warning for the refused group in:\n%s", l)
	}
}

// TestJoinWithoutBackend: $connect's response names groups, and a
// subscribe route joins the group named in the message, allow-listed.
func TestJoinWithoutBackend(t *testing.T) {
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		if path == "/connect" {
			return 200, `{"statusCode":200,"groups":["news","bad name"]}`
		}
		return echoEvent(path, ev)
	})
	cfg := baseConfig()
	cfg.Routes["$connect"] = be.route("/connect")
	cfg.Routes["subscribe"] = gateway.Route{
		Groups:                           &gateway.RouteGroups{Join: "$request.body.group", Allow: []string{"orders", "prices.*"}},
		RouteResponseSelectionExpression: "$default",
	}
	cfg.Routes["unsubscribe"] = gateway.Route{Groups: &gateway.RouteGroups{Leave: "$request.body.group"}}
	tg := startGateway(t, cfg)
	c := tg.dial(t, nil)

	if d := tg.publish(t, "news", []byte("news!")); d.Delivered != 1 {
		t.Fatalf("$connect group: %+v", d)
	}
	if got := readText(t, c); got != "news!" {
		t.Fatalf("got %q", got)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","group":"orders"}`))
	if got := readText(t, c); got != `{"action":"subscribed","group":"orders"}` {
		t.Fatalf("subscribe answered %q", got)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","group":"prices.eur"}`))
	readText(t, c)
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"subscribe","group":"secret"}`))
	if got := readText(t, c); !strings.HasPrefix(got, `{"message": "Forbidden"`) {
		t.Fatalf("disallowed subscribe answered %q", got)
	}
	if d := tg.publish(t, "secret", []byte("x")); d.Delivered != 0 {
		t.Fatalf("joined a disallowed group: %+v", d)
	}
	for _, g := range []string{"orders", "prices.eur"} {
		if d := tg.publish(t, g, []byte("to "+g)); d.Delivered != 1 {
			t.Fatalf("%s: %+v", g, d)
		}
		if got := readText(t, c); got != "to "+g {
			t.Fatalf("got %q", got)
		}
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"unsubscribe","group":"orders"}`))
	testenv.Eventually(t, 30*time.Second, func() error {
		if d := tg.publish(t, "orders", []byte("x")); d.Delivered != 0 {
			return errors.New("still a member")
		}
		return nil
	})
}

// TestFrozenMember: one client that never reads, in a group of 1,000,
// does not stop the other 999 from getting every message, and ends up
// closed as a slow consumer.
//
// Its run is CPU: 80 publishes of 4 KiB to 999 readers in this process
// are 80,000 frames written and read, 10-13 s of CPU under -race. It
// ran 12-26 s under -race at load 13-15 (5-7 s without -race at load
// 8-14), nearly all of it inside the publishes (0.1-0.7 s each), while the
// process got half a core; the frozen member was skipped from about the
// 37th publish and closed within 0.1 s of the last. Its 4 KiB receive
// buffer is not what TestPublishToStarvedMembers' was: that client never
// reads, so nothing waits on its drops, and TCP counted no receive-queue
// drops or retransmission timeouts over such a run (26-35 tail-loss probes,
// machine-wide).
func TestFrozenMember(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	// Every connection joins "all" through its $connect response.
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		return 200, `{"statusCode":200,"groups":["all"]}`
	})
	cfg := baseConfig()
	cfg.OutboundQueueFrames = 32
	cfg.SlowConsumerSeconds = 1
	cfg.WriteTimeoutSeconds = 300 // so the queue, not the write timeout, catches it
	cfg.SendBufferBytes = 16 * 1024
	cfg.Routes["$connect"] = be.route("/connect")
	cfg.Routes["$disconnect"] = be.route("/disconnect")
	tg := startGateway(t, cfg)
	const n = 1000
	const messages = 80
	tg.dialFrozen(t)
	var got atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < n-1; i++ {
		c := tg.dial(t, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < messages; k++ {
				// Publishes wait for the slowest member (below): on a
				// loaded machine the next message can be minutes away.
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	payload := bytes.Repeat([]byte("p"), 4096)
	skipped := 0
	for k := 0; k < messages; k++ {
		// The healthy members may be at most window messages behind, far
		// inside their 32-frame queue: on a loaded machine their readers
		// can go unscheduled for seconds, and a member whose queue filled
		// for 1 s would rightly be skipped and closed as the frozen one is.
		const window = 8
		testenv.Eventually(t, 60*time.Second, func() error {
			if want := int64(k-window) * (n - 1); got.Load() < want {
				return fmt.Errorf("healthy members got %d frames before publish %d, want %d", got.Load(), k, want)
			}
			return nil
		})
		d := tg.publish(t, "all", payload)
		skipped += d.Skipped
		if d.Delivered+d.Skipped > n || d.Delivered < n-1 {
			t.Fatalf("publish %d: %+v", k, d)
		}
	}
	wg.Wait()
	if got.Load() != (n-1)*messages {
		t.Fatalf("healthy members got %d frames, want %d", got.Load(), (n-1)*messages)
	}
	if skipped == 0 {
		t.Fatal("the frozen member was never skipped")
	}
	// The frozen member is closed as a slow consumer (1008) once it stays full.
	testenv.Eventually(t, 60*time.Second, func() error {
		tg.publish(t, "all", []byte("tick"))
		if tg.gw.Connections() > n-1 {
			return fmt.Errorf("%d connections still open", tg.gw.Connections())
		}
		return nil
	})
	var e struct {
		RequestContext struct {
			DisconnectStatusCode int `json:"disconnectStatusCode"`
		} `json:"requestContext"`
	}
	_ = json.Unmarshal(be.waitEvents(t, "/disconnect", 1)[0], &e)
	if e.RequestContext.DisconnectStatusCode != 1008 {
		t.Fatalf("frozen member's $disconnect code %d, want 1008", e.RequestContext.DisconnectStatusCode)
	}
}

// TestErrorStatusIsLogged: a handler that answers a message with a non-2xx
// statusCode on a one-way route (nothing goes back to the client, as on
// AWS) leaves a warning with the route, the status and the body's start.
func TestErrorStatusIsLogged(t *testing.T) {
	be := newBackend(t, func(path string, ev []byte) (int, string) {
		if path == "/fail" {
			return 200, `{"statusCode":502,"body":"table connections not found"}`
		}
		return echoEvent(path, ev)
	})
	cfg := baseConfig()
	cfg.Routes["fail"] = be.route("/fail")
	tg, logs := startGatewayLog(t, cfg)
	c := tg.dial(t, nil)
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"fail"}`))
	testenv.Eventually(t, 10*time.Second, func() error {
		l := logs.String()
		for _, want := range []string{`"integration answered an error status"`, "routeKey=fail", "status=502", `body="table connections not found"`} {
			if !strings.Contains(l, want) {
				return fmt.Errorf("no %s in the log:\n%s", want, l)
			}
		}
		return nil
	})
}

// TestCountAndCluster: a group's member count and the @cluster view of a
// single node.
func TestCountAndCluster(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	for range 2 {
		tg.join(t, "room", whoami(t, tg.dial(t, nil)))
	}
	resp, b := tg.signed(t, "GET", "/dev/@groups/room/@count", nil)
	if resp.StatusCode != 200 || string(b) != `{"connections":2}` {
		t.Fatalf("count: %d %s", resp.StatusCode, b)
	}
	resp, b = tg.signed(t, "GET", "/dev/@groups/empty/@count", nil)
	if resp.StatusCode != 200 || string(b) != `{"connections":0}` {
		t.Fatalf("count of an empty group: %d %s", resp.StatusCode, b)
	}
	resp, b = tg.signed(t, "GET", "/dev/@cluster", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"connections":2,"nodes":[{"id":"00","state":"up","connections":2,"groups":1`) {
		t.Fatalf("@cluster: %d %s", resp.StatusCode, b)
	}
	if resp, _ := tg.signed(t, "POST", "/dev/@cluster", nil); resp.StatusCode != 404 {
		t.Fatalf("POST @cluster: %d", resp.StatusCode)
	}
}

// TestPublishToStalledMember: group publishes to a member that does not
// read fill its socket, so its write turns take frames in part and hand
// the rest to its writer goroutine. The members that read get every frame
// at once, the stalled one is skipped once its queue is full, and when it
// reads again it gets, in order and whole, every frame it was counted as
// delivered.
func TestPublishToStalledMember(t *testing.T) {
	be := newBackend(t, nil)
	cfg := baseConfig()
	cfg.OutboundQueueFrames = 16
	cfg.SendBufferBytes = 4096
	cfg.SlowConsumerSeconds = 3600
	cfg.WriteTimeoutSeconds = 3600
	cfg.Routes["whoami"] = be.whoamiRoute()
	tg := startGateway(t, cfg)
	stalled := tg.dialFrozen(t)
	tg.join(t, "all", whoami(t, stalled))
	var healthy []*websocket.Conn
	for range 2 {
		c := tg.dial(t, nil)
		tg.join(t, "all", whoami(t, c))
		healthy = append(healthy, c)
	}

	pad := strings.Repeat("p", 3000) // a few frames fill the 2 KB receive and 4 KB send buffers
	toStalled := 0
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("the stalled member was never skipped")
		}
		d := tg.publish(t, "all", []byte(fmt.Sprintf("%05d %s", i, pad)))
		if d.Delivered+d.Skipped != 3 || d.Delivered < 2 {
			t.Fatalf("publish %d: %+v", i, d)
		}
		for _, c := range healthy {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, p, err := c.ReadMessage()
			if err != nil || !strings.HasPrefix(string(p), fmt.Sprintf("%05d ", i)) {
				t.Fatalf("healthy member, publish %d: %.10q, %v", i, p, err)
			}
		}
		if d.Skipped == 1 {
			break
		}
		toStalled++
	}
	for i := range toStalled {
		_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, p, err := stalled.ReadMessage()
		if err != nil || string(p) != fmt.Sprintf("%05d %s", i, pad) {
			t.Fatalf("stalled member, frame %d of %d: %.10q (%d bytes), %v", i, toStalled, p, len(p), err)
		}
	}
}

// TestPublishOrderConcurrent: publishes from several goroutines at once to
// a group large enough for a parallel publish (hub.Memory spreads it over
// goroutines, the gateway hands it to its flusher a block at a time), and
// single sends to each member beside them: every member gets every frame,
// and each sender's frames in the order it sent them.
func TestPublishOrderConcurrent(t *testing.T) {
	for _, front := range []bool{false, true} {
		t.Run(map[bool]string{false: "net/http", true: "httpfront"}[front], func(t *testing.T) {
			testPublishOrder(t, front)
		})
	}
}

// joinAll waits until the gateway holds members connections and joins
// them all to group "all"; it returns their ids.
func (tg *testGateway) joinAll(t *testing.T, members int) []string {
	t.Helper()
	h := tg.gw.Hub()
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := h.Len(); n != members {
			return fmt.Errorf("%d of %d members registered", n, members)
		}
		return nil
	})
	var ids []string
	h.Each(func(c hub.Conn) bool {
		ids = append(ids, c.ID())
		return true
	})
	for _, id := range ids {
		if err := h.Join(context.Background(), "all", id); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func testPublishOrder(t *testing.T, front bool) {
	const (
		members    = 300 // over hub's parallelPublish
		publishers = 4
		publishes  = 25
		sends      = 10 // single sends to each member, from one more goroutine
	)
	tg := startGatewayWith(t, baseConfig(), testLogger(t), front)
	clients := make([]*websocket.Conn, members)
	for i := range clients {
		clients[i] = tg.dial(t, nil)
	}
	h := tg.gw.Hub()
	ctx := context.Background()
	ids := tg.joinAll(t, members)

	errs := make(chan error, members+publishers+1)
	var readers sync.WaitGroup
	for _, c := range clients {
		readers.Go(func() {
			next := map[string]int{} // sender → the number expected next
			for range publishers*publishes + sends {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, p, err := c.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("read after %v: %w", next, err)
					return
				}
				sender, n, _ := strings.Cut(string(p), " ")
				if n != strconv.Itoa(next[sender]) {
					errs <- fmt.Errorf("from %s: got %s, want %d", sender, n, next[sender])
					return
				}
				next[sender]++
			}
		})
	}
	var senders sync.WaitGroup
	for k := range publishers {
		senders.Go(func() {
			for i := range publishes {
				d, err := h.Publish(ctx, "all", hub.NewMessage(fmt.Appendf(nil, "p%d %d", k, i)))
				if err != nil || d.Delivered != members {
					errs <- fmt.Errorf("publish p%d %d: %+v, %v", k, i, d, err)
					return
				}
			}
		})
	}
	senders.Go(func() {
		for i := range sends {
			for _, id := range ids {
				if err := h.Send(ctx, id, hub.NewMessage(fmt.Appendf(nil, "s %d", i))); err != nil {
					errs <- fmt.Errorf("send %d to %s: %v", i, id, err)
					return
				}
			}
		}
	})
	senders.Wait()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
