// Package dashboard is the page `wsgate demo` shows: a live view of one SQLite
// table (by default `orders`) whose changes arrive over a WebSocket as
// DynamoDB Streams records, together with the generator that keeps that
// table busy and the small JSON API the page reads on (re)connect.
//
// The model:
//
//   - Handler serves the embedded page at "/" (no CDN, no build step; it
//     works offline), GET /api/config (stage, group, table and a sqlite3
//     command line the visitor can paste to make a change of their own) and
//     GET /api/snapshot ({"columns":[..],"key":["id"],"rows":[{..}],
//     "viewers":N}: the table's rows, newest (highest rowid) first, at most
//     SnapshotLimit, and the current number of viewers).
//   - The page opens ws(s)://host/{stage}, sends
//     {"action":"subscribe","group":"<group>"} and treats every text frame
//     either as one events.DynamoDBEventRecord (INSERT, MODIFY or REMOVE,
//     applied with upsert semantics by its Keys), as {"type":"viewers",
//     "count":N}, or as something it ignores (acks, error frames).
//   - Catch-up: on every (re)connect the page subscribes first, buffers the
//     records that arrive, then fetches /api/snapshot, renders it and
//     applies the buffered records in order. Because records are applied as
//     upserts and deletes by key, replaying a record the snapshot already
//     contains converges to the same rows. The page reconnects by itself
//     with capped exponential backoff and shows its connection state.
//   - Generator writes synthetic orders (inserts, status transitions
//     pending → paid → shipped → delivered, quantity and amount changes,
//     deletes of delivered orders) at a fixed rate and keeps the table
//     between MinRows and MaxRows rows. The change stream itself is not
//     this package's business: wsgate's streams/sqlite source captures the
//     writes, whoever makes them (the generator or a visitor's sqlite3).
//   - Guard keeps other web sites away: `wsgate demo` puts it in front of
//     everything its listener serves. It admits a Host that names this
//     machine (localhost, a loopback IP, the listen address) and an Origin
//     that is the page's own or a loopback one, plus what --allow-host and
//     --allow-origin add; the rest gets 403. Without it any page the user
//     visits could read the stream, and through DNS rebinding the snapshot.
//
// The page is one HTML file, a stylesheet and a script in web/, embedded
// into the binary; it loads nothing from elsewhere. Package dashboardtest
// drives it in headless Chromium for this package's tests and for the
// end-to-end test of `wsgate demo`.
//
// Concurrency: Handler is safe for concurrent use; it only reads the
// database. Generator.Run keeps its state (its random source) in the call,
// so a Generator holds no locks and may even run twice at once. SQLite
// serialises writers; OpenDB's busy_timeout makes concurrent writers (the
// generator, the visitor's sqlite3, the change source trimming its log)
// wait for each other instead of failing.
package dashboard
