package gateway

import "github.com/wsgate/wsgate/hub"

// newID makes a connection, request or message id owned by node (the id
// scheme is the hub's: hub.NewID, hub.NodeOf).
func newID(node byte) string { return hub.NewID(node) }

// newIDPair makes two ids owned by node (hub.NewIDPair).
func newIDPair(node byte) (string, string) { return hub.NewIDPair(node) }

// nodeSource is a hub whose node byte may change while it runs: a cluster
// node that was fenced and found its byte taken by another node moves to
// another one (docs/cluster.md). Its ids are minted with its byte at the
// time; Self must be cheap (one atomic load: it runs for every id).
type nodeSource interface{ Self() byte }

// nodeByte is the byte this node's ids are minted with now.
func (g *Gateway) nodeByte() byte {
	if g.nodeOf != nil {
		return g.nodeOf.Self()
	}
	return g.node
}
