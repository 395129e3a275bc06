package hub

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// IDs (connection, request and message ids) have AWS's form: 11 bytes in
// URL-safe base64, so 15 characters from A-Z a-z 0-9 - _ and one '='.
// Bytes 0-9 are random; byte 10 is the node that owns the connection, so a
// hub spread over nodes routes by id alone. NodeOf reads it back.
const idBytes = 11

// Node bytes: 0–254 name nodes; 255 is reserved for ids minted outside a
// node (tests), which no node owns.
const (
	MaxNode      = 254
	NoNode  byte = 255
)

// NewID returns a new random id owned by node.
func NewID(node byte) string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:idBytes-1]) // crypto/rand.Read never fails (Go 1.24+)
	b[idBytes-1] = node
	return base64.URLEncoding.EncodeToString(b[:])
}

// NewIDPair returns two ids owned by node from one read of the random
// source (a connection's id and its $connect's request id, a message's
// request and message ids).
func NewIDPair(node byte) (string, string) {
	var b [2 * idBytes]byte
	_, _ = rand.Read(b[:])
	b[idBytes-1], b[2*idBytes-1] = node, node
	return base64.URLEncoding.EncodeToString(b[:idBytes]), base64.URLEncoding.EncodeToString(b[idBytes:])
}

// NodeOf returns the node byte of an id made by NewID, and false when id
// is not of that form.
func NodeOf(id string) (byte, bool) {
	if len(id) != 16 || id[15] != '=' {
		return 0, false
	}
	var b [idBytes]byte
	n, err := base64.URLEncoding.Decode(b[:], []byte(id))
	if err != nil || n != idBytes {
		return 0, false
	}
	return b[idBytes-1], true
}

// NodeHex writes a node byte as in subjects, keys and @cluster: "0a".
func NodeHex(b byte) string { return fmt.Sprintf("%02x", b) }
