package bench

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// The hop floor (role "hop"; c-post's "floor: hop" metrics): what one
// more process on a message's way costs this machine at a fixed rate,
// with nothing but Go's runtime and loopback TCP in it. The orchestrator
// sends a 16-byte message at the rate, sleeping between, through 1 or 2
// hop processes, the last of which sends it back on a connection of its
// own: 1 is a single node's POST to its frame (client, server, client),
// 2 a cluster's POST entering at a node that is not the owner (client,
// entry, owner, client). Each process sleeps between messages as a node
// does at 1,000/s, so each hop pays its wake-up; the difference of the
// two is the floor under C1's cluster − single p50 (the link's hop,
// without wsgate's work on either side). The first process stamps the
// message's arrival, so the first hop's one-way time is reported too.

// hopRole relays 16-byte messages from the one connection it accepts to
// next, stamping bytes 8–16 with its receipt time (unix ns) when they are
// zero; it prints its address first and ends when stdin closes.
func hopRole(args []string) error {
	fs := flag.NewFlagSet("hop", flag.ContinueOnError)
	next := fs.String("next", "", "where to send each message")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	printJSON(announce{Addr: ln.Addr().String()})
	out, err := net.Dial("tcp", *next)
	if err != nil {
		return err
	}
	go func() { waitStdin(); os.Exit(0) }()
	in, err := ln.Accept()
	if err != nil {
		return err
	}
	var m [16]byte
	for {
		if _, err := io.ReadFull(in, m[:]); err != nil {
			return nil
		}
		if binary.BigEndian.Uint64(m[8:]) == 0 {
			binary.BigEndian.PutUint64(m[8:], uint64(time.Now().UnixNano()))
		}
		if _, err := out.Write(m[:]); err != nil {
			return nil
		}
	}
}

// hopFloor sends n messages at rate through hops hop processes (after
// warm messages not counted) and returns each round trip's time and
// the first hop's one-way time, in ns.
func (o *orch) hopFloor(hops, n, warm int, rate float64) (round, first []int64, err error) {
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer back.Close()
	addr := back.Addr().String()
	for range hops { // the last first: each is told the next's address
		c, err := o.start("hop", "-next", addr)
		if err != nil {
			return nil, nil, err
		}
		defer c.kill()
		var a announce
		if err := c.read(&a); err != nil {
			return nil, nil, err
		}
		addr = a.Addr
	}
	out, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer out.Close()
	_ = back.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	in, err := back.Accept()
	if err != nil {
		return nil, nil, err
	}
	defer in.Close()
	period := time.Duration(float64(time.Second) / rate)
	var m [16]byte
	start := time.Now()
	for i := range warm + n {
		sleepUntil(start.Add(time.Duration(i) * period))
		t := time.Now()
		binary.BigEndian.PutUint64(m[:], uint64(i))
		binary.BigEndian.PutUint64(m[8:], 0)
		_ = in.SetReadDeadline(t.Add(10 * time.Second))
		if _, err := out.Write(m[:]); err != nil {
			return nil, nil, err
		}
		if _, err := io.ReadFull(in, m[:]); err != nil {
			return nil, nil, err
		}
		if binary.BigEndian.Uint64(m[:]) != uint64(i) {
			return nil, nil, errors.New("hop floor: a message out of order")
		}
		if i >= warm {
			round = append(round, int64(time.Since(t)))
			first = append(first, int64(binary.BigEndian.Uint64(m[8:]))-t.UnixNano())
		}
	}
	return round, first, nil
}

// hopFloorMetrics measures the hop floor at rate: through 1 process, then
// 2, and the difference of their p50s (the second process's wake-up and
// hop).
func (o *orch) hopFloorMetrics(rate float64) ([]Metric, error) {
	n, warm := 2000, 200
	if o.Small {
		n, warm = 50, 5
	}
	var ms []Metric
	var p50 [3]float64
	for _, hops := range []int{1, 2} {
		round, first, err := o.hopFloor(hops, n, warm, rate)
		if err != nil {
			return ms, err
		}
		p := fmt.Sprintf("floor: %.0f/s through %d process%s: ", rate, hops, map[bool]string{true: "es"}[hops > 1])
		lm := latencyMetrics(p, round)
		p50[hops] = lm[0].Value
		ms = append(ms, lm[:2]...)
		ms = append(ms, latencyMetrics(p+"first hop, one way: ", first)[:1]...)
	}
	return append(ms, Metric{fmt.Sprintf("floor: %.0f/s: the second process's hop: p50", rate), "ms", p50[2] - p50[1]}), nil
}
