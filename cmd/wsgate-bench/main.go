// Command wsgate-bench measures a wsgate server process under load; see
// BENCHMARKS.md for the scenarios and figures.
//
//	wsgate-bench [-scenarios idle,handshake,post,route,fanout,slow] [-runs 3]
//	             [-workers 4] [-small] [-profile DIR] [-json FILE] [-wsgate BIN]
//
// It runs itself again as the server, backend and client processes
// (wsgate-bench server|backend|raw|worker); those roles are internal.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/wsgate/wsgate/internal/bench"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "server", "backend", "raw", "worker":
			os.Exit(bench.RunRole(os.Args[1], os.Args[2:]))
		}
	}
	scenarios := flag.String("scenarios", strings.Join(bench.Scenarios, ","), "comma-separated scenarios")
	runs := flag.Int("runs", 3, "runs of each scenario")
	workers := flag.Int("workers", 4, "client processes")
	small := flag.Bool("small", false, "tiny sizes (smoke test)")
	profile := flag.String("profile", "", "write server CPU profiles of the first run here")
	jsonOut := flag.String("json", "", "also write the raw results as JSON here")
	serverBin := flag.String("wsgate", "", "run this built wsgate binary (wsgate serve --config) as the server instead of the in-harness server role")
	flag.Parse()
	res, err := bench.Run(bench.Options{
		Scenarios:  strings.Split(*scenarios, ","),
		Runs:       *runs,
		Workers:    *workers,
		Small:      *small,
		ProfileDir: *profile,
		ServerBin:  *serverBin,
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
}
