package gateway

import "github.com/wsgate/wsgate/hub"

// newID makes a connection, request or message id owned by node (the id
// scheme is the hub's: hub.NewID, hub.NodeOf).
func newID(node byte) string { return hub.NewID(node) }
