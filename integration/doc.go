// Package integration holds the backends a route, an authorizer or a change
// stream can call: http (a Lambda proxy over HTTP), mock, lambda (the AWS
// Lambda Invoke API) and command (a handler program run by wsgate itself
// through the Lambda Runtime API). New builds one from its Config.
//
// # Model
//
// Every kind speaks the Lambda model: a JSON payload goes in, a JSON payload
// comes back. What the payload means (an API Gateway WebSocket event, an
// authorizer request, a DynamoDB stream batch) is the caller's business.
// Failures come in three kinds, which the gateway turns into different client
// frames: errors.Is(err, ErrTimeout) ("Endpoint request timed out"), a
// *FunctionError (the handler reported or suffered a failure) and any other
// error (the backend could not be reached or answered nonsense). No kind
// retries.
//
//   - http POSTs the payload (Content-Type: application/json, X-Amzn-RequestId)
//     over a pooled keep-alive client and returns the body; an empty 2xx body
//     reads as {"statusCode":200}. 5xx, and non-2xx without a proxy document,
//     are errors. Responses over MaxPayload are refused. To a plain http://
//     URI with no proxy (on Linux, macOS and the BSDs) the client is
//     leanClient (httpclient.go): HTTP/1.1 only, no Accept-Encoding, response
//     headers within 64 KB; https, proxies and the other systems keep
//     net/http's.
//   - mock answers Config.Response, or echoes Invocation.Body with status 200;
//     it never blocks (NonBlocking), so the gateway calls it in a
//     connection's read turn.
//   - lambda calls Invoke (RequestResponse) with the SDK's standard credential
//     chain. X-Amz-Function-Error becomes a *FunctionError; service errors
//     carry their AWS error code. With an Endpoint override it also accepts
//     the runtime interface emulator's way of reporting handler errors.
//   - command keeps a pool of handler processes (see below).
//   - a lambda integration whose function is one of Functions (the config's
//     functions:, run by runtime with the clients of package bootstrap) runs
//     it in that function's pool, shared by every integration naming it.
//
// # The command runner
//
// A command integration starts its program lazily, up to Config.Concurrency
// processes, and reuses them warm. Each process gets its own Runtime API
// listener on 127.0.0.1 (AWS_LAMBDA_RUNTIME_API), so anything arriving on a
// listener belongs to its process, and each process has at most one
// invocation at a time, as in Lambda: scaling means more processes.
//
// The Runtime API served (paths under /2018-06-01/runtime):
//
//	GET  /invocation/next           long poll; 200 with the event and the headers
//	                                Lambda-Runtime-Aws-Request-Id, -Deadline-Ms,
//	                                -Invoked-Function-Arn, -Trace-Id; 403 while
//	                                an invocation is unanswered or after init/error
//	POST /invocation/{id}/response  202; chunked bodies; trailers
//	                                Lambda-Runtime-Function-Error-Type/-Body make
//	                                it an error; 400 for another id, 403 when
//	                                nothing runs, 413 over MaxPayload, 400 for a
//	                                response mode other than streaming
//	POST /invocation/{id}/error     202; error JSON body, optional
//	                                Lambda-Runtime-Function-Error-Type; 400/403 as above
//	POST /init/error                202 before the first /next, 403 after
//
// Error answers carry {"errorType","errorMessage"} with the runtime interface
// emulator's types (InvalidStateTransition, InvalidRequestID,
// RequestEntityTooLarge). The Extensions, Logs and Telemetry APIs are not
// served (404); aws-lambda-go only warns about that.
//
// Failures stay with their invocation: a deadline kills the process (its
// process group, and on Linux every descendant that left the group, found
// by a variable in its environment) and fails with ErrTimeout; an exit or crash fails with a
// Runtime.ExitError *FunctionError; /init/error fails the invocation that
// started the process, which is then killed. The next invocation gets a fresh
// process. A process that dies between invocations (aws-lambda-go exits after
// reporting a panic) is replaced without failing anyone. Timing follows
// Lambda's phases: the timeout (the function's) starts when the runtime takes
// the event from /next, so neither the wait for a free process nor a cold
// start is charged to it; those are bounded by the caller's deadline (when
// it has none, 29 s or init limit plus timeout, whichever is longer) and the
// init limit (10 s, or the timeout when longer).
// A cold start that outlasts its caller goes on for the next invocation
// until the init limit kills it.
// Output is logged line by line with the function name, stream and the
// request id of the process's latest invocation, at most LogLinesPerSecond
// lines a second for all the integration's processes together and 8 KB a
// line; dropped lines are counted in a periodic "function output rate
// limited" record. When a process ends, by kill or on its own, whatever it
// started is killed too (Linux), as nothing outlives a Lambda execution
// environment.
//
// # In-flight bounds
//
// New puts every integration behind the Limiters that apply: Env.Inflight
// (shared, the gateway's maxInflight) and its own Config.MaxInflight. A call
// finding one full fails at once with ErrThrottled, without reaching the
// backend, unless Invocation.Wait asks it to wait (up to its timeout). http
// and lambda open at most MaxConnsPerHost connections to a backend host;
// requests past that wait for a connection (inside net/http, or in
// leanClient) within their deadline.
//
// # Concurrency
//
// An Integration is safe for concurrent use. Invoke blocks until the backend
// answers, the integration's own timeout (Config.TimeoutMillis) passes, or
// ctx is done, whichever is first; a deadline on ctx counts as a timeout, a
// cancellation does not.
//
// In command, a semaphore of Concurrency tokens bounds the invocations being
// served; a token is held from before a process is chosen until that process
// answered, died or was killed, and a process starts only when none is idle,
// so processes never outnumber Concurrency. Waiting invocations queue on the
// semaphore channel, which Go's runtime serves first come, first served in
// practice (the language does not promise it). When a caller cancels, Invoke
// returns at once but the token stays with the process until the handler
// answers or its deadline passes. The pool (idle list, process set) is
// guarded by one mutex that is never held while waiting on a process; each
// process's Runtime API state has its own mutex, and an invocation's answer
// is recorded once (the first of response, error, exit, deadline wins).
// Close kills every process, waits until each is reaped and fails what is
// waiting or running; it is idempotent. A recycle (serve --watch) bumps the
// pool's generation and kills the idle processes; a busy one of an older
// generation is killed when its invocation settles instead of going idle.
package integration
