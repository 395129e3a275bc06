// Package gateway is an AWS API Gateway WebSocket API: clients connect at
// /{stage}; each message is routed by the route selection expression to an
// integration with a Lambda proxy event; backends reach clients through the
// @connections management API (SigV4, service execute-api) and wsgate's
// group extensions. docs/compatibility.md lists what matches AWS and what
// differs; docs/architecture.md shows how a message flows.
//
// # Concurrency
//
// Gateway is an http.Handler and safe for concurrent use. Each accepted
// connection has:
//
//   - at most one reading goroutine, the only code that reads its socket.
//     A plaintext socket on Linux waits in the package's epoll poller with
//     no goroutine and no buffer; when readable, a read turn on a pooled
//     goroutine reads its frames through a pooled bufio.Reader, lingers up
//     to readLinger (200 ms) in the runtime's poller for more (while fewer
//     than lingerPerCore × GOMAXPROCS turns linger: lingerBound), and
//     then re-arms it. TLS connections, other systems and closing connections
//     have a blocking reader goroutine instead, which waits for
//     readability holding no buffer. The reading goroutine ends the
//     connection.
//   - at most one writer at a time (c.writing), the only code that writes
//     its socket: the sender itself (an inline non-blocking write when the
//     connection's queue is empty and no writer runs), a write turn of the
//     gateway's flusher for a group publish (flush.go: at most GOMAXPROCS
//     goroutines, one non-blocking write or writev per listed connection),
//     or a writer goroutine started on demand (for what a socket did not
//     take at once, a close frame, a pong behind other frames, and every
//     frame of a TLS connection) that writes every queued frame with one
//     writev and exits when the queue is empty. Only the writer goroutine
//     blocks, and every one of its writes has a deadline.
//   - a queue bounded in frames and bytes (outboundQueueFrames and
//     outboundQueueBytes, counting the batch being written). Send never
//     blocks: it returns hub.ErrQueueFull (POST answers 429, a publish
//     skips the member). A connection that stays backed up after a refusal
//     for slowConsumerSeconds, or whose write stalls for
//     writeTimeoutSeconds meanwhile, is closed with 1008. At most one pong
//     waits in the queue, however fast the client pings.
//
// Route invocations run in their own goroutines, at most
// maxInflightPerConnection per connection; when that many are running the
// reader stops reading, so a client that floods only slows itself. A
// message for a mock route without a groups action, or for no route, is
// handled in the reading goroutine instead, since nothing on its way
// blocks (integration.NonBlocking). Across
// the gateway at most maxInflight integration calls run (routes, $connect,
// $disconnect, the authorizer; each integration may have a smaller
// maxInflight of its own): a message past it is answered with the
// "Too Many Requests" frame at once, a handshake with 429, and $disconnect
// waits for a slot up to its integration's timeout. Close
// and Shutdown queue a close frame and return; the reader finishes the
// connection, unregisters it from the hub (so its id answers 410 from then
// on) and fires $disconnect, best effort, as AWS does. Once Shutdown has
// begun, a handshake is refused with 503 before its authorizer or
// $connect call and before its hijack (admitMu orders both against
// Shutdown's wait).
//
// An Observer (Options.Observer: metrics, access logs) is called from the
// goroutine that served the request, after the answer went out: the
// HTTP handler for a handshake and a management request, the route
// worker (or the reader, for a message handled inline) for a message, the
// $disconnect worker (or the reader) for a disconnect. It must not block.
// Per-frame figures are atomic counters (Gateway.Stats), never observer
// calls.
//
// # Reload
//
// The routes, credentials, authorizer and limits in force are one
// immutable snapshot behind an atomic pointer (live, in reload.go). Reload
// builds the next one and swaps it in; open connections are not touched. A
// route call, a handshake and a $disconnect hold a reference to the
// snapshot they started on until their integration call returns, so they
// finish on it; the integrations a reload dropped are closed once the
// last reference to the old snapshot is released.
package gateway
