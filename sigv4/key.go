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
	pad [sha256.BlockSize]byte
	sum [sha256.Size]byte
}

func newHasher() hasher { return hasher{h: sha256.New()} }

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
	x.pad = [sha256.BlockSize]byte{}
	copy(x.pad[:], key[:])
	for i := range x.pad {
		x.pad[i] ^= 0x36
	}
	x.h.Reset()
	x.h.Write(x.pad[:])
	x.h.Write(msg)
	x.h.Sum(x.sum[:0])
	for i := range x.pad {
		x.pad[i] ^= 0x36 ^ 0x5c
	}
	x.h.Reset()
	x.h.Write(x.pad[:])
	x.h.Write(x.sum[:])
	x.h.Sum(x.sum[:0])
	return x.sum
}
