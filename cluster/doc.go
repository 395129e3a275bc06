// Package cluster makes wsgate processes nodes of one API over NATS.
//
// A node keeps its connections and their groups in a hub.Memory, exactly
// as a single node does; Hub (a hub.Hub) routes every call on a connection
// id to the node whose byte the id carries, and every group publish to the
// nodes that have members of the group:
//
//	wsg.<cluster>.n.<NN>.c   request/reply  a batch of ops on its connections: post, get, delete, join, leave
//	wsg.<cluster>.n.<NN>.q   request/reply  queries: members, conns, count
//	wsg.<cluster>.g.<token>  publish        one group message; subscribed only by nodes with members
//	wsg.<cluster>.hb         publish        heartbeats
//	KV WSGATE_<cluster>_NODES                node byte ownership ("joining", "up") and "gone" declarations
//	KV WSGATE_<cluster>_LEASES               change-stream leadership (Lease)
//
// Node bytes are claimed with the KV bucket's compare-and-set (Create,
// Update with the last revision), never by a read, so two live nodes never
// own one byte. A node whose subject has no responders for goneGraceMillis,
// or whose heartbeats stopped for nodeTimeoutMillis, is declared gone in
// the bucket (again by compare-and-set against its last renewal) and every
// node answers 410 for its ids from then on. A node that finds itself
// declared gone fences: it closes every client connection with 1012 and
// registers a new incarnation.
//
// Concurrency: no hub.Memory lock is held while calling NATS, and no lock
// of Hub is held across a NATS call except interestMu, which orders a
// group's subscribe and unsubscribe against joins (a join's reply follows
// the subscription's flush). Goroutines: the two NATS connections' own
// (nats.go), the handlers of the .c, .q, reply inbox and heartbeat
// subscriptions (one each, nats.go), a timer per batch of calls out, the
// registry watcher, the heartbeat, renewal and silent-node tickers, the
// interest reaper and GOMAXPROCS group workers.
// All end in Close. Lease runs on its caller's goroutine (one per stream
// in the server) and, while leading, runs its function on one more; both
// end with the caller's context, which must end before Close.
// leaseMu is held only across the one-time opening of the leases bucket.
package cluster
