// Package uuid formats random (version 4) UUIDs.
package uuid

import "encoding/hex"

// V4 returns the 128 random bits b as a version 4, variant 1 UUID in its
// 36-character form (lowercase hex, a dash after the 8th, 12th, 16th and
// 20th digit), as Lambda's request ids and the AWS SDKs' invocation ids
// are. The caller picks the randomness: crypto/rand for an id nobody may
// guess, math/rand/v2 where only its speed matters.
func V4(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
