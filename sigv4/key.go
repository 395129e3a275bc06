package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
)

// keyID identifies one derived signing key. The key depends on all four
// parts, so a key rotation (new secret) or a new day gets a new entry.
type keyID struct{ secret, date, region, service string }

// maxCachedKeys bounds the cache; at most a few keys per access key are live
// at a time (today's and, around midnight UTC, yesterday's).
const maxCachedKeys = 1024

// keyCache memoises derived signing keys, as aws-sdk-go-v2 does, so a
// verification costs two HMACs instead of six. It is shared by every Signer
// and Verifier in the process; entries hold derived keys only for secrets
// that were used, and the whole cache is dropped when it fills.
var keyCache = struct {
	sync.RWMutex
	m map[keyID][sha256.Size]byte
}{m: make(map[keyID][sha256.Size]byte)}

// signingKey returns kSigning for (secret, date, region, service):
//
//	kDate    = HMAC("AWS4"+secret, date)
//	kRegion  = HMAC(kDate, region)
//	kService = HMAC(kRegion, service)
//	kSigning = HMAC(kService, "aws4_request")
func signingKey(secret, date, region, service string) [sha256.Size]byte {
	// Most traffic uses one key: check the last one used before hashing
	// four strings for the map.
	if l := lastKey.Load(); l != nil && l.id.secret == secret && l.id.date == date && l.id.region == region && l.id.service == service {
		return l.key
	}
	id := keyID{secret, date, region, service}
	keyCache.RLock()
	k, ok := keyCache.m[id]
	keyCache.RUnlock()
	if ok {
		lastKey.Store(&cachedKey{id: keyID{strings.Clone(secret), strings.Clone(date), strings.Clone(region), strings.Clone(service)}, key: k})
		return k
	}
	k = deriveKey(secret, date, region, service)
	// Clone: the strings may point into a request's headers, which the
	// cache must not keep alive.
	id = keyID{strings.Clone(secret), strings.Clone(date), strings.Clone(region), strings.Clone(service)}
	keyCache.Lock()
	if len(keyCache.m) >= maxCachedKeys {
		clear(keyCache.m)
	}
	keyCache.m[id] = k
	keyCache.Unlock()
	lastKey.Store(&cachedKey{id: id, key: k})
	return k
}

// cachedKey is one derived key with what it was derived from.
type cachedKey struct {
	id  keyID
	key [sha256.Size]byte
}

// lastKey is the most recently used signing key.
var lastKey atomic.Pointer[cachedKey]

func deriveKey(secret, date, region, service string) [sha256.Size]byte {
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), date)
	k = mac(k, region)
	k = mac(k, service)
	k = mac(k, scopeTerminator)
	return [sha256.Size]byte(k)
}

// hasher computes SHA-256 and HMAC-SHA256 with one reusable hash.Hash, so the
// hot path allocates nothing. It is not safe for concurrent use; the pooled
// scratch state owns one.
type hasher struct {
	h   hash.Hash
	st  hashState // h's state, to save and restore
	pad [sha256.BlockSize]byte
	sum [sha256.Size]byte
	// The HMAC states of macKey after its padded key block (inner,
	// outer): the next HMAC with the same key (most requests use one
	// signing key a day) restores them instead of hashing two blocks.
	macKey       [sha256.Size]byte
	inner, outer []byte
}

// hashState is what crypto/sha256's hash offers to save and restore it.
type hashState interface {
	AppendBinary([]byte) ([]byte, error)
	UnmarshalBinary([]byte) error
}

func newHasher() hasher {
	h := sha256.New()
	st, _ := h.(hashState)
	return hasher{h: h, st: st}
}

// sha256 returns the SHA-256 of b.
func (x *hasher) sha256(b []byte) [sha256.Size]byte {
	x.h.Reset()
	x.h.Write(b)
	x.h.Sum(x.sum[:0])
	return x.sum
}

// hmac returns HMAC-SHA256(key, msg) for a 32-byte key (RFC 2104; the key is
// shorter than the block, so it is zero-padded, never hashed).
func (x *hasher) hmac(key *[sha256.Size]byte, msg []byte) [sha256.Size]byte {
	if x.st == nil || x.inner == nil || *key != x.macKey {
		x.keyStates(key)
	}
	if x.st != nil && x.st.UnmarshalBinary(x.inner) == nil {
		x.h.Write(msg)
		x.h.Sum(x.sum[:0])
		if x.st.UnmarshalBinary(x.outer) == nil {
			x.h.Write(x.sum[:])
			x.h.Sum(x.sum[:0])
			return x.sum
		}
	}
	return x.hmacOnce(key, msg)
}

// keyStates computes and keeps key's inner and outer states.
func (x *hasher) keyStates(key *[sha256.Size]byte) {
	if x.st == nil {
		return
	}
	var err1, err2 error
	x.padKey(key, 0x36)
	x.inner, err1 = x.st.AppendBinary(x.inner[:0])
	x.padKey(key, 0x5c)
	x.outer, err2 = x.st.AppendBinary(x.outer[:0])
	if err1 != nil || err2 != nil {
		x.inner, x.outer = nil, nil
		return
	}
	x.macKey = *key
}

// padKey resets h and hashes key's padded block, XORed with b.
func (x *hasher) padKey(key *[sha256.Size]byte, b byte) {
	x.pad = [sha256.BlockSize]byte{}
	copy(x.pad[:], key[:])
	for i := range x.pad {
		x.pad[i] ^= b
	}
	x.h.Reset()
	x.h.Write(x.pad[:])
}

// hmacOnce is hmac without the saved states.
func (x *hasher) hmacOnce(key *[sha256.Size]byte, msg []byte) [sha256.Size]byte {
	x.padKey(key, 0x36)
	x.h.Write(msg)
	x.h.Sum(x.sum[:0])
	x.padKey(key, 0x5c)
	x.h.Write(x.sum[:])
	x.h.Sum(x.sum[:0])
	return x.sum
}
