// Package bench is wsgate's load harness: it measures a real wsgate server
// process against this machine's limits (see BENCHMARKS.md).
//
// Processes. The orchestrator (Run) starts, for every run of a scenario:
// the server (role "server": the same server.New as `wsgate serve`, in its
// own process, plus a side port with net/http/pprof and a /stats handler
// reporting runtime.MemStats), a trivial HTTP backend for http
// integrations (role "backend"), for the soak a backend that accepts and
// never answers (role "stall"), for fan-out a raw WebSocket writer used as
// the floor (role "raw"), for the handshake and post scenarios the
// handshake and signed-POST floors (role "floor", floor.go: measured in
// the same rotation as wsgate, their ratios reported beside its figures),
// and several client processes (role "worker")
// that dial from distinct 127.x.y.z source addresses. All of them are this
// same executable run again with a role as first argument; the
// orchestrator talks to each over stdin/stdout, one JSON document a line.
//
// Server CPU time comes from /proc/PID/stat, RSS from /proc/PID/status, so
// client and server costs are separate. Every load loop is bounded in
// count and in time; every child is killed when its run ends.
//
// Soak (soak.go, soak_worker.go): the workers hold their connections
// and run the load on their own (soak-start dials, soak-run starts the
// paced loops, soak-tally reads cumulative counters, soak-stop closes
// everything); the orchestrator samples the server from /proc (and the
// server role's /stats) at the start, every interval and after the load,
// and turns growth that does not go back into FAIL lines.
//
// Timestamps: messages carry the sender's wall clock in nanoseconds as
// {"t":N,...}; the receiver subtracts it from its own wall clock (all
// processes share one machine clock).
package bench
