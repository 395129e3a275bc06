package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// A fan-out whose clients got fewer frames than the server counted as
// delivered is explained by shortfall, for the error it fails with: where
// the missing frames are, what the kernel dropped and retransmitted since
// the publish, and whether they arrive after all. Under load on this
// machine the loopback's input backlog (netdev_max_backlog packets per
// CPU) overflows in bursts; a dropped segment waits for TCP's loss probe
// and then retransmission timeouts that double from 200 ms, so frames the
// server wrote can reach their clients seconds late.

// netCounters are the kernel's counters that show the network delaying
// deliveries: packets the per-CPU input backlog dropped (softnet_stat's
// second column; loopback traffic passes only through that queue), TCP
// segments retransmitted and retransmission timeouts. They are the whole
// machine's. ok is false where they cannot be read (not Linux).
type netCounters struct {
	drops, retrans, timeouts int64
	ok                       bool
}

func readNetCounters() netCounters {
	var c netCounters
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return c
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) > 1 {
			v, _ := strconv.ParseInt(f[1], 16, 64)
			c.drops += v
		}
	}
	c.retrans = procCounter("/proc/net/snmp", "Tcp:", "RetransSegs")
	c.timeouts = procCounter("/proc/net/netstat", "TcpExt:", "TCPTimeouts")
	c.ok = true
	return c
}

// procCounter reads one counter of a /proc/net file made of pairs of
// lines, names then values, each starting with prefix (snmp, netstat).
func procCounter(path, prefix, name string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var names []string
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != prefix {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == name && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
		names = nil
	}
	return 0
}

// sockQueues is what the kernel holds on established TCP sockets (ss):
// how many have bytes in their send queue (written, not yet acknowledged
// by the peer), how many of all have their retransmission timer running
// and the most retransmissions of one, and how many have bytes in their
// receive queue (arrived, not yet read).
type sockQueues struct {
	unacked, retransmitting, maxRetrans, unread int
}

// readSockQueues sums ss's report of the established sockets that filter
// (an ss filter expression) selects.
func readSockQueues(filter string) (sockQueues, error) {
	var q sockQueues
	out, err := exec.Command("ss", "-tnoH", "state", "established", filter).Output()
	if err != nil {
		return q, err
	}
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		if n, _ := strconv.Atoi(f[0]); n > 0 {
			q.unread++
		}
		if n, _ := strconv.Atoi(f[1]); n > 0 {
			q.unacked++
		}
		// timer:(on,<expires>,<retransmissions>): the retransmission
		// timer (or the loss probe's) is armed.
		_, t, ok := strings.Cut(l, "timer:(on,")
		if !ok {
			continue
		}
		q.retransmitting++
		t, _, _ = strings.Cut(t, ")")
		if _, n, ok := strings.Cut(t, ","); ok {
			r, _ := strconv.Atoi(n)
			q.maxRetrans = max(q.maxRetrans, r)
		}
	}
	return q, nil
}

// unwritten is the server role's /unwritten: the frames wsgate queued
// that their sockets have not taken yet, and the connections holding a
// write turn (gateway.Gateway.Unwritten).
type unwritten struct {
	Frames  int `json:"frames"`
	Writing int `json:"writing"`
}

func unwrittenAt(debug string) (unwritten, error) {
	var u unwritten
	resp, err := http.Get("http://" + debug + "/unwritten")
	if err != nil {
		return u, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// A floor, or a build from before /unwritten.
		return u, fmt.Errorf("/unwritten: %s", resp.Status)
	}
	return u, json.NewDecoder(resp.Body).Decode(&u)
}

// shortfall explains, as text to append to the error, why the clients
// got fewer than perConn frames per reading connection in the last
// gather: the frames wsgate still holds, what the server's and the
// clients' sockets hold, the client readers that ended, and the
// loopback's drops and TCP's retransmissions since k0 (read before the
// publish stamped t). Then it waits up to rest for the missing frames and
// says when they arrived, counted from t, or how many never did.
func (e *env) shortfall(k0 netCounters, t int64, perConn int64, rest time.Duration) string {
	var b strings.Builder
	// A single server only: a cluster's nodes are not told apart.
	if _, port, err := net.SplitHostPort(e.addr); err == nil && len(e.servers()) == 1 {
		if u, err := unwrittenAt(e.debug); err == nil {
			fmt.Fprintf(&b, "; the server holds %d frames unwritten, %d connections with a write turn", u.Frames, u.Writing)
		}
		if q, err := readSockQueues("( sport = :" + port + " )"); err == nil {
			fmt.Fprintf(&b, "; the server's sockets: %d with bytes not yet acknowledged, %d retransmitting (at most %d retransmissions of one)",
				q.unacked, q.retransmitting, q.maxRetrans)
		}
		if q, err := readSockQueues("( dport = :" + port + " )"); err == nil {
			fmt.Fprintf(&b, "; the clients' sockets: %d with bytes not yet read", q.unread)
		}
	}
	var ended int64
	var endErr string
	for _, r := range e.gathered {
		ended += r.Ended
		endErr = cmp.Or(endErr, r.EndErr)
	}
	if ended > 0 {
		fmt.Fprintf(&b, "; %d client readers ended (%s)", ended, endErr)
	}
	if k1 := readNetCounters(); k0.ok && k1.ok {
		fmt.Fprintf(&b, "; since the publish, on the whole machine: %d packets dropped by the input backlog, %d TCP segments retransmitted, %d retransmission timeouts",
			k1.drops-k0.drops, k1.retrans-k0.retrans, k1.timeouts-k0.timeouts)
	}

	want := make([]int64, len(e.workers))
	var missing int64
	for i := range e.workers {
		if i < len(e.gathered) {
			want[i] = perConn*int64(e.sizes[i]-e.slow[i]) - e.gathered[i].Count
		}
		missing += max(want[i], 0)
	}
	rs, err := e.each(func(i int, w *child) (reply, error) {
		if want[i] <= 0 {
			return reply{}, nil
		}
		return w.call(command{Op: "collect", Expect: want[i], Timeout: rest.Seconds()})
	})
	if err != nil {
		fmt.Fprintf(&b, "; waiting for the rest: %v", err)
		return b.String()
	}
	var late, last int64
	for _, r := range rs {
		late += r.Count
		for _, p := range r.Pubs {
			last = max(last, p.Last)
		}
	}
	switch {
	case late >= missing && last > 0:
		fmt.Fprintf(&b, "; the missing %d arrived, the last %.1f s after the publish", missing, float64(last-t)/1e9)
	default:
		fmt.Fprintf(&b, "; of the missing %d, %d arrived in %v more", missing, late, rest)
	}
	return b.String()
}
