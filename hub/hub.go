// Package hub is where connections live and how a message finds one: by
// connection id, or through a group it joined.
//
// The gateway registers each accepted WebSocket connection as a Conn and
// unregisters it when the socket is gone. Everything that addresses
// connections (the @connections API, group publishes, change streams) goes
// through a Hub, so a later implementation can spread connections and groups
// over several nodes (NATS) without the callers changing.
//
// A hub has two sides: the node-local Registry (the connections this
// process holds, for the sweeper and shutdown) and the Router (every
// operation on a connection id or a group, wherever the connection lives).
// Memory is both for a single node; a cluster hub routes by the node byte
// each connection id carries (NewID, NodeOf).
//
// Concurrency: every Hub method is safe for concurrent use and never blocks
// on a connection's socket: Conn.Send only queues. A Publish to a group of N
// members costs N queue operations under no lock that a Join, a Leave or
// another Publish waits for long.
package hub

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Errors a Hub returns. Callers map them to AWS's error shapes.
var (
	// ErrGone: no open connection has this id (never existed, closed, or
	// still in its $connect). API Gateway answers 410 GoneException.
	ErrGone = errors.New("connection gone")
	// ErrQueueFull: the connection's outbound queue is full (a slow
	// reader). API Gateway answers 429 LimitExceededException.
	ErrQueueFull = errors.New("connection outbound queue full")
	// ErrLimitExceeded: a Join would take the connection past the groups
	// one connection may be in, or the hub past the groups it may hold.
	// Returned wrapped, with the limit in the text. The gateway answers
	// 429 LimitExceededException.
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrUnavailable: the node that owns the connection (or another node
	// a listing needs) could not be asked or did not answer in time; the
	// operation was not done. Returned wrapped, with the cause in the
	// text. The gateway answers 500 InternalServerErrorException.
	ErrUnavailable = errors.New("cluster unavailable")
)

// Message is one text frame's payload, sent to one or many connections.
// The WebSocket frame is encoded once, on first use, and shared by every
// recipient: server frames are not masked, so the bytes are the same for all.
type Message struct {
	Data []byte

	once   sync.Once
	frame  []byte
	fanout bool
}

// Fanout reports whether m is being delivered to a group. A gateway
// connection then only queues it, and the gateway's flusher writes every
// member's queue on GOMAXPROCS goroutines: the writes spread over the
// cores and back-to-back publishes coalesce into one writev
// (BENCHMARKS.md). Single sends are written inline by the sender, which
// keeps their latency low.
func (m *Message) Fanout() bool { return m.fanout }

// NewMessage wraps data. The Message must not be modified after it is sent.
func NewMessage(data []byte) *Message { return &Message{Data: data} }

// Frame returns the encoded frame, encoding it with encode the first time.
func (m *Message) Frame(encode func([]byte) []byte) []byte {
	m.once.Do(func() { m.frame = encode(m.Data) })
	return m.frame
}

// Conn is a connection as the hub sees it. The gateway implements it. A
// Conn never leaves the node it lives on: only the Registry holds it, and
// the Router addresses it by id.
type Conn interface {
	// ID is the connection id (16 characters, AWS's form).
	ID() string
	// Send queues m without blocking. It returns ErrQueueFull when the
	// queue is full and ErrGone when the connection is closing.
	Send(m *Message) error
	// Close starts closing the connection for reason r; it does not wait.
	// $disconnect fires when the socket is gone.
	Close(r CloseReason)
	// Info describes the connection.
	Info() Info
}

// BlockSender is a Conn that takes a group publish for a block of members
// in one call, so what a Send pays per member (a hand-off to a writer, the
// gateway's counters, a clock reading) is paid once per block. A publish
// calls SendBlock on the first member of each block (of at most
// publishBlock members) that has it.
type BlockSender interface {
	Conn
	// SendBlock queues m, as Send does, on every member that is not nil
	// (members of other types through their Send), in order, and counts
	// what it did.
	SendBlock(members []Conn, m *Message) Delivery
}

// Backlogger is a Conn that tells whether its outbound queue is more
// than half taken. Pace waits for such members.
type Backlogger interface {
	Conn
	// Backlogged reports whether more than half of the connection's
	// outbound queue bound (frames or bytes) is taken by frames not yet
	// written. A connection that is closing is not backlogged: there is
	// nothing to wait for.
	Backlogged() bool
}

// Pacer is a Router that can hold a publisher of many messages (a change
// stream catching up) back until a group's members have taken in what it
// sent them, so that a burst does not overflow queues that cope with the
// steady rate. The gateway's hubs implement it; a change stream's group
// target calls Pace after every half queue of records.
type Pacer interface {
	// Pace returns once every member of group, on every node, has been
	// handed the messages this node published to the group before the
	// call and is no longer Backlogged; or after PaceWait at most (in a
	// cluster, a node whose messages or answer are late adds up to twice
	// the request timeout, and excuses nobody for that). A member is
	// excused when one Pace waited PaceWait for it, or the waits for it
	// add up to PaceBudget within PaceExcuse: no Pace on its node waits
	// for it for PaceExcuse then. So a stuck or hostile client (one that
	// reads just before each wait ends, too) holds the group's publisher
	// back PaceBudget at most per PaceExcuse, and is skipped (then closed
	// as a slow consumer) as before; many such clients, PaceGroupBudget
	// at most per PaceExcuse on each node. Pace never fails: it only paces, and
	// a publish stays at most once to each member.
	Pace(ctx context.Context, group string)
}

// Bounds of Pace.
const (
	// PaceWait is the longest one Pace waits for a node's members.
	PaceWait = time.Second
	// PaceExcuse is how long a member that used up PaceWait or
	// PaceBudget is not waited for, and the window PaceBudget counts in.
	PaceExcuse = 30 * time.Second
	// PaceBudget is the most the waits for one member may add up to
	// within PaceExcuse.
	PaceBudget = 3 * time.Second
	// PaceGroupBudget is the most one node's waits for a group's members,
	// whichever they are, may add up to within PaceExcuse; past it the
	// group is not waited for on that node during PaceExcuse. Many
	// clients that each use their own PaceBudget in turn hold a stream
	// back no longer than this.
	PaceGroupBudget = 10 * time.Second
)

// Info is what GetConnection and the connection listing report.
type Info struct {
	ConnectionID string    `json:"connectionId"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	SourceIP     string    `json:"sourceIp"`
	UserAgent    string    `json:"userAgent,omitempty"`
	Groups       []string  `json:"groups,omitempty"`
}

// Delivery counts what a Publish did.
type Delivery struct {
	// Delivered is how many members had the message queued.
	Delivered int `json:"delivered"`
	// Skipped is how many members' queues were full; they do not get it.
	Skipped int `json:"skipped"`
	// Forwarded reports that the message was also handed to the cluster
	// for members on other nodes (whose deliveries are not counted here).
	// Always false on a single node.
	Forwarded bool `json:"forwarded,omitempty"`
}

// Page selects part of a listing: up to Limit items after the item whose id
// is the token After (exclusive). Listings are in ascending id order, so a
// token stays valid while members come and go.
type Page struct {
	After string
	Limit int
}

// Node describes one node of the hub: a single node hub has one.
type Node struct {
	// ID is the node byte as two lowercase hex digits ("0a").
	ID string `json:"id"`
	// Name is the node's configured name (empty on a single node).
	Name string `json:"name,omitempty"`
	// State is "up", "draining" or "gone".
	State string `json:"state"`
	// Connections and Groups are the node's open connections and
	// non-empty groups, as of its last report.
	Connections int `json:"connections"`
	Groups      int `json:"groups"`
	// LastSeenMillis is how long ago the node last reported (0 for the
	// node answering).
	LastSeenMillis int64 `json:"lastSeenMillis"`
	// HTTP is the address the node serves on, when known.
	HTTP string `json:"http,omitempty"`
}

// Registry is the node-local side of a hub: the connections this process
// holds. The gateway registers each accepted connection and unregisters
// it when its socket is gone; the sweeper and shutdown iterate it.
type Registry interface {
	// Register makes c reachable by its id. It fails if the id is taken.
	Register(c Conn) error
	// Unregister removes the connection and all its group memberships.
	// Unknown ids are ignored.
	Unregister(id string)
	// Len is the number of connections open on this node.
	Len() int
	// Each calls f for every connection open on this node until f returns
	// false. f must not call back into the hub.
	Each(f func(Conn) bool)
}

// Router addresses connections by id and through groups, wherever they
// live: on a single node the Memory hub, in a cluster the node that owns
// the id (byte 10 of it, NodeOf). No Conn crosses this interface.
//
// Errors: ErrGone (410), ErrQueueFull (429), ErrLimitExceeded (429),
// ErrUnavailable (500: another node could not be asked or did not answer;
// the operation was not done).
type Router interface {
	// Send queues data for one connection: ErrGone, ErrQueueFull or nil.
	Send(ctx context.Context, id string, m *Message) error
	// Info describes an open connection, or ErrGone.
	Info(ctx context.Context, id string) (Info, error)
	// Disconnect starts closing a connection for reason r, or ErrGone.
	Disconnect(ctx context.Context, id string, r CloseReason) error
	// Join adds a connection to a group (ErrGone if it is not open).
	// Joining twice is a no-op. An implementation bounds the groups a
	// connection is in and the groups it holds: past either, ErrLimitExceeded.
	Join(ctx context.Context, group, id string) error
	// Leave removes a connection from a group; not being a member is fine.
	Leave(ctx context.Context, group, id string) error
	// Publish queues m for every member of group, on each node in the
	// order the members joined. It never waits for a member's socket. An
	// empty or unknown group delivers to nobody.
	Publish(ctx context.Context, group string, m *Message) (Delivery, error)
	// Members lists a group's member ids, ascending, and the token of the
	// next page ("" when this is the last). A page costs O(log n + page
	// size), not a sort of the group.
	Members(ctx context.Context, group string, p Page) (ids []string, next string, err error)
	// Connections lists open connections, ascending by id, with their
	// groups, and the token of the next page.
	Connections(ctx context.Context, p Page) (infos []Info, next string, err error)
	// Count is the number of members of group.
	Count(ctx context.Context, group string) (int, error)
	// Nodes describes the nodes, ascending by id.
	Nodes(ctx context.Context) ([]Node, error)
	// Close releases what the router holds (NATS connections). Calls
	// after Close fail with ErrUnavailable or act locally only.
	Close() error
}

// Hub is both sides: what the gateway is given.
type Hub interface {
	Registry
	Router
}

// Local is a Hub that can hand a caller on this node one of its own
// connections, for the caller to write to itself (the gateway's single
// send: a PostToConnection builds no Message). LookupLocal returns the
// connection when a Send of ctx's operation to id would be a plain Send
// to it here; ErrGone when id is this node's and not open; (nil, nil)
// when the Send must go through the hub (another node's id, or an
// operation a cluster hub delivers once per dedupe key).
type Local interface {
	LookupLocal(ctx context.Context, id string) (Conn, error)
}

// LocalOnce is a Local hub that delivers an operation with a dedupe key
// (WithDedupeKey) once: a cluster hub. SendLocalOnce is the keyed
// counterpart of LookupLocal for a send: when id is this node's it calls
// send with id's connection and data, unless an operation with key ran
// here before (or is running: it waits for that one), and returns true
// with send's answer or that operation's (ErrGone, without calling send,
// when id is this node's and not open); false, nil when the send must go
// through the hub's Send with key in its context (another node's id).
// send must not keep data. key is the operation's dedupe key in parts: the
// hub hashes them as the one key key.String() (WithDedupeKey's, so a retry
// through another node's Send is the same key) without building it.
type LocalOnce interface {
	SendLocalOnce(key CallKey, id string, data []byte, send func(Conn, []byte) error) (bool, error)
}

// CallKey is a dedupe key given as the parts it is the concatenation of,
// so a caller holding the parts (an access key id, an invocation id)
// builds no string for a local keyed send (LocalOnce). The zero CallKey is
// no key.
type CallKey [4]string

// String returns the key: k's parts concatenated.
func (k *CallKey) String() string { return k[0] + k[1] + k[2] + k[3] }

// Empty reports whether k is no key (its string is "").
func (k *CallKey) Empty() bool { return k[0] == "" && k[1] == "" && k[2] == "" && k[3] == "" }

var errIDTaken = errors.New("connection id already registered")

type dedupeKeyType struct{}

// WithDedupeKey marks ctx's operation with key: a cluster hub delivers a
// POST or DELETE with the same key once, however often it is retried and
// through whichever node (the gateway uses the AWS SDK's invocation id).
func WithDedupeKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, dedupeKeyType{}, key)
}

// DedupeKey returns the key WithDedupeKey set, or "".
func DedupeKey(ctx context.Context) string {
	k, _ := ctx.Value(dedupeKeyType{}).(string)
	return k
}
