package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded runs the NATS server of a node with nats.embedded and
// returns it once it accepts clients (the node connects to its ClientURL
// over TCP loopback: in-process connections were cut as slow consumers
// under bursts where TCP was not).
func startEmbedded(c *Config, storeDir string, log *slog.Logger, timeout time.Duration) (*server.Server, error) {
	e := c.NATS.Embedded
	host, port, err := hostPort(e.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster.nats.embedded.listen: %w", err)
	}
	opts := &server.Options{
		ServerName:   c.Node.Name,
		Host:         host,
		Port:         port,
		JetStream:    *e.JetStream,
		StoreDir:     storeDir,
		NoSigs:       true,
		PingInterval: 5 * time.Second, // a blackholed peer is dropped in ~10–15 s, not minutes
		MaxPingsOut:  2,
		MaxPayload:   1 << 20, // a POST body (128 KiB) plus headers always fits
	}
	if e.ClusterListen != "" {
		ch, cp, err := hostPort(e.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("cluster.nats.embedded.clusterListen: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: ch, Port: cp, Advertise: e.Advertise}
		if a := e.ClusterAuth; a != nil {
			opts.Cluster.Username, opts.Cluster.Password = a.User, a.Password
		}
		if opts.Cluster.TLSConfig, err = c.routeTLS(); err != nil {
			return nil, err
		}
		for _, r := range e.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("cluster.nats.embedded.routes: %q: %w", r, err)
			}
			if a := e.ClusterAuth; a != nil && u.User == nil {
				u.User = url.UserPassword(a.User, a.Password)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	// A listener that cannot bind (its port taken) is reported through
	// the logger's Fatalf, and the server goes on without it: start fails
	// at once with that error, not after the startup timeout.
	fatal := make(chan string, 1)
	ns.SetLoggerV2(natsLogger{log.With("component", "nats"), fatal}, false, false, false)
	go ns.Start()
	ready := make(chan bool, 1)
	go func() { ready <- ns.ReadyForConnections(timeout) }()
	select {
	case ok := <-ready:
		if !ok {
			ns.Shutdown()
			return nil, fmt.Errorf("embedded NATS did not accept clients within %v", timeout)
		}
	case msg := <-fatal:
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded NATS: %s", msg)
	}
	if f := embeddedUp.Load(); f != nil {
		(*f)(c, ns)
	}
	return ns, nil
}

// embeddedUp, set by tests only (SetEmbeddedHook), is called with each
// embedded server once it accepts clients: a test learns the ports its
// servers took (port 0) to route to them.
var embeddedUp atomic.Pointer[func(c *Config, ns *server.Server)]

// startAbort, set by tests only (SetStartAbort), gives Start a channel
// for its node (nil: none); closing it ends Start's wait for NATS and the
// registry at once. A test starting a cluster's nodes together ends the
// others' starts when one failed because its port was taken: they would
// wait startupTimeoutSeconds for a registry that node was to be part of.
var startAbort atomic.Pointer[func(c *Config) <-chan struct{}]

func hostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	if n == 0 {
		n = server.RANDOM_PORT // nats-server reads 0 as its default port
	}
	return h, n, nil
}

// natsLogger sends the NATS server's log through slog, and its fatal
// errors to fatal too when there is room.
type natsLogger struct {
	l     *slog.Logger
	fatal chan<- string
}

func (n natsLogger) Noticef(f string, a ...any) { n.l.Debug(fmt.Sprintf(f, a...)) }
func (n natsLogger) Warnf(f string, a ...any)   { n.l.Warn(fmt.Sprintf(f, a...)) }
func (n natsLogger) Fatalf(f string, a ...any) {
	msg := fmt.Sprintf(f, a...)
	n.l.Error(msg)
	select {
	case n.fatal <- msg:
	default:
	}
}
func (n natsLogger) Errorf(f string, a ...any) { n.l.Error(fmt.Sprintf(f, a...)) }
func (n natsLogger) Debugf(f string, a ...any) { n.l.Debug(fmt.Sprintf(f, a...)) }
func (n natsLogger) Tracef(f string, a ...any) { n.l.Debug(fmt.Sprintf(f, a...)) }
