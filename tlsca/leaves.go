package tlsca

import (
	"crypto/tls"
	"sync"
	"time"
)

// DefaultLeafLifetime is how long an issued leaf certificate is valid.
// Caddy's local leaves live 12 hours; a day keeps a sleeping laptop's
// connections valid across a night while staying short-lived.
const DefaultLeafLifetime = 24 * time.Hour

// Leaves serves leaf certificates for a fixed set of names from a CA,
// issuing a new one when a third of the current one's lifetime is left.
type Leaves struct {
	ca       *CA
	names    []string
	lifetime time.Duration

	mu  sync.Mutex
	cur *tls.Certificate
}

// Leaves issues the first certificate for names now, so a bad name fails
// at start-up rather than at the first handshake.
func (ca *CA) Leaves(names []string, lifetime time.Duration) (*Leaves, error) {
	l := &Leaves{ca: ca, names: Names(names), lifetime: lifetime}
	cert, err := ca.Issue(l.names, lifetime)
	if err != nil {
		return nil, err
	}
	l.cur = cert
	return l, nil
}

// Names are the names every leaf is issued for, normalised.
func (l *Leaves) Names() []string { return l.names }

// GetCertificate is for tls.Config.GetCertificate: the current leaf,
// renewed first when it is past two thirds of its life. A failed renewal
// keeps serving the current leaf while it is valid.
func (l *Leaves) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.cur.Leaf.NotAfter.Sub(now) < l.lifetime/3 {
		cert, err := l.ca.Issue(l.names, l.lifetime)
		if err != nil {
			if now.After(l.cur.Leaf.NotAfter) {
				return nil, err
			}
			return l.cur, nil
		}
		l.cur = cert
	}
	return l.cur, nil
}
