package gateway

import (
	"crypto/rand"
	"encoding/base64"
)

// IDs (connection, request and message ids) have AWS's form: 11 bytes in
// URL-safe base64, so 15 characters from A-Z a-z 0-9 - _ and one '='.
// Bytes 0-9 are random; byte 10 is the node that owns the connection, so a
// multi-node hub can route by id alone. NodeOf reads it back.
const idBytes = 11

func newID(node byte) string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:idBytes-1]) // crypto/rand.Read never fails (Go 1.24+)
	b[idBytes-1] = node
	return base64.URLEncoding.EncodeToString(b[:])
}

// NodeOf returns the node byte of an id made by the gateway, and false when
// id is not of that form.
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
