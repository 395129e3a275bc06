// Command wsgate-bench measures a wsgate server process under load; see
// BENCHMARKS.md for the scenarios and figures.
//
//	wsgate-bench [-scenarios idle,handshake,post,route,fanout,slow,aged] [-runs 3]
//	             [-workers 4] [-small] [-profile DIR] [-json FILE] [-wsgate BIN]
//	wsgate-bench -scenarios handshake,post -syscalls   # system calls per operation (perf)
//	wsgate-bench -scenarios post [-post-client lean|goroutines] [-post-workers N] [-post-rates 0,1000,5000]
//	wsgate-bench -scenarios post -post-rates 5000 -server-fifo   # servers SCHED_FIFO (below the client)
//	WSGATE_BENCH_TRACE=DIR wsgate-bench -scenarios post -post-rates 5000   # runtime trace of each fixed-rate phase
//	wsgate-bench -scenarios fanout -against OTHER-WSGATE-BENCH [-runs 2]
//	wsgate-bench -scenarios soak [-duration 10m] [-conns 19000] [-wsgate BIN]
//	wsgate-bench -cluster 3 [-scenarios c-post,c-fanout,c-publish,c-join,c-page,c-memory] [-runs 3]
//	WSGATE_BENCH_BURSTPERF=DIR wsgate-bench -cluster 3 -scenarios c-fanout -runs 1   # burst repeated 4 s under perf record/stat
//
// It runs itself again as the server, backend and client processes
// (wsgate-bench server|backend|stall|raw|floor|hop|worker); those roles are internal.
// It exits 1 when a run could not start or a soak check failed (FAIL lines).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/bench"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "server", "backend", "stall", "raw", "floor", "hop", "worker":
			os.Exit(bench.RunRole(os.Args[1], os.Args[2:]))
		}
	}
	scenarios := flag.String("scenarios", "", "comma-separated scenarios (default "+strings.Join(bench.Scenarios, ",")+"; with -cluster "+strings.Join(bench.ClusterScenarios, ",")+"; soak runs only when named)")
	clusterN := flag.Int("cluster", 0, "run the cluster scenarios: each run measures a single node and a cluster of this many nodes (3: 127.0.0.11-13, embedded NATS)")
	runs := flag.Int("runs", 3, "runs of each scenario")
	workers := flag.Int("workers", 4, "client processes")
	small := flag.Bool("small", false, "tiny sizes (smoke test)")
	profile := flag.String("profile", "", "write server CPU profiles of the first run here")
	jsonOut := flag.String("json", "", "also write the raw results as JSON here")
	against := flag.String("against", "", "fanout: also run this other wsgate-bench build's server as a fourth side, in the same rotation (before/after within one run)")
	serverBin := flag.String("wsgate", "", "run this built wsgate binary (wsgate serve --config) as the server instead of the in-harness server role")
	duration := flag.Duration("duration", 0, "soak: how long the load runs (default 10m, 4s with -small)")
	conns := flag.Int("conns", 0, "soak: connections (default 19000, 300 with -small)")
	postClient := flag.String("post-client", "lean", "post: the fixed-rate phases' client, lean (one thread on one epoll set per process, timestamps at the system calls) or goroutines (a goroutine per request and per reader)")
	postWorkers := flag.Int("post-workers", 0, "post: client processes of the fixed-rate phases (default 1 with the lean client, -workers with goroutines)")
	postRates := flag.String("post-rates", "0,1000,5000", "post: the phases, POSTs per second (0: saturation)")
	postWarmup := flag.Duration("post-warmup", 0, "post: the lean client's warm-up at each fixed rate before the measured window, reported apart as \"warm-up: …\" (default 1s, 200ms with -small; negative: none)")
	postInvocationID := flag.Bool("post-invocation-id", false, "post, c-post: every POST carries its own signed Amz-Sdk-Invocation-Id (a random UUID), as the AWS SDKs send: a cluster's dedupe key (default off: the requests of earlier sessions' figures)")
	serverFIFO := flag.Bool("server-fifo", false, "post: run the servers SCHED_FIFO (every thread, priority 1) during the fixed-rate phases, so other processes and the real-time client do not preempt them (needs CAP_SYS_NICE)")
	stallProbe := flag.Bool("stall-probe", false, "post: during the fixed-rate phases, a real-time and an ordinary thread per CPU note when they woke late (the machine ran none of the guest's threads; other processes had the CPU), 1,000 wake-ups/s each; each slow POST episode is reported with the latest of each it overlaps and the client's dials in it (needs CAP_SYS_NICE)")
	syscalls := flag.Bool("syscalls", false, "handshake, post: count the servers' system calls per operation with perf (slows them: CPU figures of such a run are not comparable)")
	flag.Parse()
	var rates []float64
	for _, r := range strings.Split(*postRates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v < 0 {
			fmt.Fprintf(os.Stderr, "wsgate-bench: -post-rates: %q is not a rate\n", r)
			os.Exit(2)
		}
		rates = append(rates, v)
	}
	var names []string
	if *scenarios != "" {
		names = strings.Split(*scenarios, ",")
	}
	res, err := bench.Run(bench.Options{
		Scenarios:  names,
		Cluster:    *clusterN,
		Runs:       *runs,
		Workers:    *workers,
		Small:      *small,
		ProfileDir: *profile,
		ServerBin:  *serverBin,
		Against:    *against,
		Syscalls:   *syscalls,
		ServerFIFO: *serverFIFO,
		StallProbe: *stallProbe,

		PostClient:  *postClient,
		PostWorkers: *postWorkers,
		PostRates:   rates,
		PostWarmup:  *postWarmup,

		PostInvocationID: *postInvocationID,

		SoakDuration: *duration,
		SoakConns:    *conns,
	})
	bench.WriteMarkdown(os.Stdout, res)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		_ = os.WriteFile(*jsonOut, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgate-bench:", err)
		os.Exit(1)
	}
	for _, r := range res {
		if len(r.Fails) > 0 {
			os.Exit(1)
		}
	}
}
