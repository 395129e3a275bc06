package bench

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain runs a role when the harness starts this test binary as one of
// its child processes.
func TestMain(m *testing.M) {
	if role := os.Getenv("WSGATE_BENCH_ROLE"); role != "" {
		os.Exit(RunRole(role, os.Args[2:]))
	}
	os.Exit(m.Run())
}

// skipHarness skips a test that runs the harness: with -short, and under
// the race detector, where every role the harness starts is the test
// binary built with -race: this package alone took 460 s of go test's
// 600 s default timeout at a load average of 20-30 (the suite's other
// packages beside it), and the servers' races are what the gateway,
// server and cluster tests look for. The test command runs this package
// again without -race.
func skipHarness(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts many processes")
	}
	if raceEnabled {
		t.Skip("starts many processes of the test binary, slow under -race: the test command's run without -race runs it")
	}
}

// TestScenariosSmall runs every scenario once at tiny size, so the harness
// keeps working. It checks that each produced its figures without errors,
// never the figures themselves.
func TestScenariosSmall(t *testing.T) {
	skipHarness(t)
	var log strings.Builder
	res, err := Run(Options{Small: true, Runs: 1, Workers: 2, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res) != len(Scenarios) {
		t.Fatalf("got %d results, want %d", len(res), len(Scenarios))
	}
	for _, r := range res {
		if len(r.Errors) > 0 || len(r.Names) == 0 {
			t.Errorf("%s: errors %v, %d metrics\n%s", r.Scenario, r.Errors, len(r.Names), log.String())
		}
	}
	// The floors ran beside wsgate (floor.go): their figures and the ratios.
	for scenario, names := range map[string][]string{
		"handshake": {
			"no $connect: floor (go): server CPU per handshake", "no $connect: floor (raw): server CPU per handshake",
			"no $connect: floor (raw): syscalls per handshake, its own count",
			"no $connect: wsgate/floor (go): server CPU per handshake", "no $connect: wsgate/floor (raw): server CPU per handshake",
			"http $connect: floor (go): server CPU per handshake", "http $connect: floor (raw): server CPU per handshake",
			"http $connect: wsgate/floor (raw): server CPU per handshake",
		},
		"post": {"floor: saturation: server CPU per POST", "wsgate/floor: saturation: server CPU per POST", "floor: 500/s: p99", "wsgate/floor: 500/s: p99",
			"500/s: sent after schedule: p99", "500/s: frame after the write: p99", "floor: 500/s: frame after the write: p99"},
	} {
		for _, r := range res {
			if r.Scenario != scenario {
				continue
			}
			for _, name := range names {
				if _, ok := r.Units[name]; !ok {
					t.Errorf("%s: no figure %q", scenario, name)
				}
			}
		}
	}
	var md strings.Builder
	WriteMarkdown(&md, res)
	if !strings.Contains(md.String(), "### fanout") {
		t.Errorf("markdown lacks the fanout table:\n%s", md.String())
	}
}

// TestPostClientsSmall runs the post scenario with each fixed-rate client
// (the lean one of postloop_linux.go, and a goroutine per request and per
// reader): every POST answered and framed, none failed.
func TestPostClientsSmall(t *testing.T) {
	skipHarness(t)
	probe := canProbe() // -stall-probe with the lean client where threads may be real-time
	for _, client := range []string{"lean", "goroutines"} {
		var log strings.Builder
		res, err := Run(Options{Small: true, Runs: 1, Workers: 2, Scenarios: []string{"post"}, PostClient: client, StallProbe: probe && client == "lean", Log: &log})
		if err != nil {
			t.Fatalf("%s: %v\n%s", client, err, log.String())
		}
		r := res[0]
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %v\n%s", client, r.Errors, log.String())
		}
		for _, name := range []string{"100/s: errors", "500/s: errors", "floor: 100/s: errors", "floor: 500/s: errors"} {
			if v := r.Values[name]; len(v) != 1 || v[0] != 0 {
				t.Errorf("%s: %s = %v\n%s", client, name, v, log.String())
			}
		}
		names := []string{"500/s: p99", "500/s: server context switches per POST, voluntary", "500/s: server GC cycles"}
		if client == "lean" {
			names = append(names, "500/s: frame after the write: p99", "500/s: client's timer wake-up after its deadline: p99", "floor: 500/s: client: real-time threads",
				"500/s: warm-up (0.2 s): p99", "floor: 500/s: warm-up (0.2 s): client: HTTP connections dialed")
			if probe {
				names = append(names, "500/s: machine stall, longest (probe, real-time)", "floor: 500/s: ordinary thread's wake-up, latest (probe)")
			}
		}
		for _, name := range names {
			if _, ok := r.Units[name]; !ok {
				t.Errorf("%s: no figure %q\n%s", client, name, log.String())
			}
		}
	}
}

// canProbe reports whether the stall probe can start here (its threads
// may be real-time).
func canProbe() bool {
	p := startStallProbe()
	p.end()
	return p != nil
}

// TestClusterScenariosSmall runs every cluster scenario once at tiny size:
// a single node and a 3-node cluster (separate processes on 127.0.0.11-13,
// embedded NATS) each produce their figures without errors.
func TestClusterScenariosSmall(t *testing.T) {
	skipHarness(t)
	var log strings.Builder
	res, err := Run(Options{Small: true, Runs: 1, Workers: 2, Cluster: 3, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res) != len(ClusterScenarios) {
		t.Fatalf("got %d results, want %d", len(res), len(ClusterScenarios))
	}
	for _, r := range res {
		if len(r.Errors) > 0 {
			t.Errorf("%s: errors %v\n%s", r.Scenario, r.Errors, log.String())
		}
		var single, cluster bool
		for _, n := range r.Names {
			single = single || strings.HasPrefix(n, "single: ")
			cluster = cluster || strings.HasPrefix(n, "cluster: ")
		}
		if !single || !cluster {
			t.Errorf("%s: single-node figures %v, cluster figures %v: %v", r.Scenario, single, cluster, r.Names)
		}
		for _, want := range []string{"cluster/single: saturation: server CPU per client CPU",
			"cluster owner-entry/single: server CPU per POST", "cluster owner-entry/single: server CPU per POST above idle",
			"floor: 100/s: the second process's hop: p50",
			"cluster owner-entry/split: verified POST/s", "split/single: server CPU per POST",
			"cluster: saturation, owner: server CPU, node 3 (of one core)"} {
			if r.Scenario == "c-post" && !slices.Contains(r.Names, want) {
				t.Errorf("c-post: no %q in %v", want, r.Names)
			}
		}
	}
}

func TestParseT(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"stamped", `{"t":1234,"pad":"x"}`, 1234},
		{"unstamped", `{"action":"x"}`, 0},
		{"short", `{`, 0},
	}
	for _, tt := range tests {
		if got := parseT([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: parseT(%q) = %d, want %d", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestSoakSmall runs the soak scenario at smoke size (300 connections for
// 4 s): the scenario runs without errors, every load part did something,
// and the report has every column and a row per sample. It does not judge
// the figures or the FAIL lines: those judge the server, not the tool.
func TestSoakSmall(t *testing.T) {
	skipHarness(t)
	var log strings.Builder
	res, err := Run(Options{Small: true, Workers: 2, Scenarios: []string{"soak"}, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	r := res[0]
	if len(r.Errors) > 0 || r.Table == nil {
		t.Fatalf("errors %v, table %v\n%s", r.Errors, r.Table != nil, log.String())
	}
	rows := r.Table.Rows
	if len(rows) < 4 || !strings.HasPrefix(rows[0][0], "baseline") || !strings.HasPrefix(rows[1][0], "start") ||
		!strings.HasPrefix(rows[len(rows)-1][0], "after") {
		t.Fatalf("rows %q, want baseline, start, one per interval, after", rows)
	}
	sums := map[string]int{}
	for _, row := range rows {
		if len(row) != len(soakColumns) {
			t.Fatalf("row %q has %d cells, want %d", row, len(row), len(soakColumns))
		}
		for i, cell := range row[1:] {
			if v, err := strconv.Atoi(cell); err == nil {
				sums[soakColumns[i+1]] += v
			}
		}
	}
	for _, col := range []string{"POST 2xx", "publish delivered", "joins acked", "stall msgs sent", "route timeouts", "reconnects", "frames received"} {
		if sums[col] == 0 {
			t.Errorf("column %q is 0 in every row: that part of the load did not run\n%s", col, log.String())
		}
	}
	var md strings.Builder
	WriteMarkdown(&md, res)
	if header := "| " + strings.Join(soakColumns, " | ") + " |"; !strings.Contains(md.String(), header) {
		t.Errorf("markdown lacks the series header %q:\n%s", header, md.String())
	}
}

func TestSoakFails(t *testing.T) {
	base := soakSample{rss: 20 << 20, heap: 4 << 20, goroutines: 6, fds: 12}
	start := soakSample{rss: 220 << 20, heap: 84 << 20, goroutines: 19006, fds: 19012}
	steady := []soakSample{{at: time.Minute, rss: 250 << 20, goroutines: 19400, fds: 19300}, {at: 10 * time.Minute, rss: 255 << 20, goroutines: 19410, fds: 19310}}
	grown := []soakSample{steady[0], {at: 10 * time.Minute, rss: 400 << 20, goroutines: 30000, fds: 19800}}
	tests := []struct {
		name  string
		after soakSample
		load  []soakSample
		total soakCounts
		want  []string // substrings, one per FAIL line, in order
	}{
		{"back to baseline", soakSample{rss: 100 << 20, goroutines: 20, fds: 14}, steady, soakCounts{}, nil},
		{"files and goroutines left", soakSample{rss: 100 << 20, goroutines: 400, fds: 300, stalled: 290}, steady, soakCounts{},
			[]string{"open files not back", "goroutines not back", "290 calls to the stalled backend"}},
		{"RSS kept (Go keeps freed memory)", soakSample{rss: 200 << 20, goroutines: 6, fds: 12}, steady, soakCounts{}, nil},
		{"RSS above start and half the peak", soakSample{rss: 240 << 20, goroutines: 6, fds: 12}, steady, soakCounts{}, []string{"RSS not back"}},
		{"RSS above start, half the peak returned", soakSample{rss: 240 << 20, goroutines: 6, fds: 12},
			[]soakSample{{at: time.Minute, rss: 600 << 20}, {at: 90 * time.Second, rss: 600 << 20}}, soakCounts{}, nil},
		{"heap kept", soakSample{rss: 200 << 20, heap: 60 << 20, goroutines: 6, fds: 12}, steady, soakCounts{}, []string{"Go heap not back"}},
		{"growth under load", soakSample{rss: 20 << 20, goroutines: 6, fds: 12}, grown, soakCounts{},
			[]string{"RSS grew", "open files grew", "goroutines grew"}},
		{"growth over seconds is not judged", soakSample{rss: 20 << 20, goroutines: 6, fds: 12},
			[]soakSample{{at: time.Second, rss: 250 << 20, goroutines: 19400, fds: 19300}, {at: 4 * time.Second, rss: 400 << 20, goroutines: 30000, fds: 19800}},
			soakCounts{}, nil},
		{"wsgate binary: no heap, no goroutines", soakSample{rss: 20 << 20, heap: -1, goroutines: -1, fds: 12},
			[]soakSample{{at: time.Minute, rss: 250 << 20, goroutines: -1, fds: 19300}, {at: 5 * time.Minute, rss: 251 << 20, goroutines: -1, fds: 19300}}, soakCounts{}, nil},
		{"healthy drops", soakSample{rss: 20 << 20, goroutines: 6, fds: 12}, steady, soakCounts{HealthyDrops: 3, FirstDrop: "EOF"},
			[]string{"3 reading connections were closed by the server (first: EOF)"}},
	}
	for _, tt := range tests {
		got := soakFails(base, start, tt.after, tt.load, tt.total, 19000)
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %q, want %d lines", tt.name, got, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: line %d %q lacks %q", tt.name, i, got[i], w)
			}
		}
	}
}

func TestThrottled(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"aws", `{"message": "Too Many Requests", "connectionId":"x"}`, true},
		{"limit", `{"message":"LimitExceededException"}`, true},
		{"timeout", `{"message": "Endpoint request timed out"}`, false},
		{"internal", `{"message": "Internal server error"}`, false},
	}
	for _, tt := range tests {
		if got := throttled([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: throttled(%q) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestUpgradeHead: the floors' handshake check accepts RFC 6455's example
// request and answers its example accept key, and refuses a head that
// lacks what the RFC requires.
func TestUpgradeHead(t *testing.T) {
	head := "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
	key, ok := upgradeHead([]byte(head))
	if !ok {
		t.Fatal("upgradeHead refused RFC 6455's example")
	}
	if got := string(appendSwitching(nil, key)); !strings.Contains(got, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") {
		t.Errorf("answer %q lacks the RFC's accept key", got)
	}
	for _, bad := range []string{
		strings.Replace(head, "GET", "POST", 1),
		strings.Replace(head, "Version: 13", "Version: 8", 1),
		strings.Replace(head, "Upgrade: websocket", "Upgrade: h2c", 1),
		strings.Replace(head, "Host: server.example.com\r\n", "", 1),
		strings.Replace(head, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1),
	} {
		if _, ok := upgradeHead([]byte(bad)); ok {
			t.Errorf("upgradeHead accepted %q", bad)
		}
	}
}
