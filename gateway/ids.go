package gateway

import "github.com/wsgate/wsgate/hub"

// newID makes a connection, request or message id owned by node (the id
// scheme is the hub's: hub.NewID, hub.NodeOf).
func newID(node byte) string { return hub.NewID(node) }

// newIDPair makes two ids owned by node (hub.NewIDPair).
func newIDPair(node byte) (string, string) { return hub.NewIDPair(node) }
