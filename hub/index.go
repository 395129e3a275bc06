package hub

import "slices"

// index is an ordered map from id to V: a sorted list of sorted leaves (a
// B+tree of height two). Listing a page of it costs O(log n + page) however
// the map changed since the previous page, and a page token (the last id
// returned) stays valid across inserts and deletes, since a page starts at
// the first id greater than the token.
//
// The shape suits the hub: a one-member group is one leaf of one entry
// (a few dozen bytes, where a B-tree node or a map reserves room for more),
// a million connections are about 8,000 leaves, and an insert moves at most
// one leaf's entries plus, on a split, the leaf pointers. A zero index is
// empty and ready. It is not safe for concurrent use: its owner locks it.
type index[V any] struct {
	leaves []*leaf[V] // ordered; none is empty; leaves[i].keys[0] ascending
	n      int
}

type leaf[V any] struct {
	keys []key // ascending
	vals []V   // vals[i] belongs to keys[i]
}

// key is an index key with its prefix beside it: a search compares the
// prefixes, in the leaf's own array, and reads a key's bytes (a string
// elsewhere in the heap, seldom in the cache) only where two prefixes
// are equal.
type key struct {
	pre uint64 // prefix(s)
	s   string
}

// leafMax is the most entries in a leaf; a fuller one splits in two. 128
// keeps an insert's copy within 4 KiB and a listing's leaf search short.
const leafMax = 128

// prefix is s's first 8 bytes as a big-endian number, zeros after a
// shorter s: prefix(a) < prefix(b) means a < b; equal prefixes leave the
// order to the whole strings. A connection id's first 8 characters are
// random (48 bits): two ids seldom share them.
func prefix(s string) uint64 {
	if len(s) >= 8 {
		return uint64(s[0])<<56 | uint64(s[1])<<48 | uint64(s[2])<<40 | uint64(s[3])<<32 |
			uint64(s[4])<<24 | uint64(s[5])<<16 | uint64(s[6])<<8 | uint64(s[7])
	}
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(s) {
			p |= uint64(s[i])
		}
	}
	return p
}

// less reports whether k orders before s (of prefix p).
func (k *key) less(s string, p uint64) bool { return k.pre < p || k.pre == p && k.s < s }

// Len is the number of entries.
func (x *index[V]) Len() int { return x.n }

// leafFor returns the position of the leaf that holds s (of prefix p) or
// would: the last leaf whose first key is at most s (0 if none is).
func (x *index[V]) leafFor(s string, p uint64) int {
	lo, hi := 0, len(x.leaves) // the first leaf whose first key is above s is in [lo, hi]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if f := &x.leaves[m].keys[0]; f.pre > p || f.pre == p && f.s > s {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return max(lo-1, 0)
}

// find returns where s (of prefix p) is or would be in l, and whether it
// is.
func (l *leaf[V]) find(s string, p uint64) (int, bool) {
	lo, hi := 0, len(l.keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.keys[m].less(s, p) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(l.keys) && l.keys[lo].pre == p && l.keys[lo].s == s
}

// Get returns s's value.
func (x *index[V]) Get(s string) (V, bool) {
	if x.n == 0 {
		var zero V
		return zero, false
	}
	p := prefix(s)
	l := x.leaves[x.leafFor(s, p)]
	if j, ok := l.find(s, p); ok {
		return l.vals[j], true
	}
	var zero V
	return zero, false
}

// Put sets s's value; it reports whether s was new.
func (x *index[V]) Put(s string, v V) bool {
	p := prefix(s)
	if len(x.leaves) == 0 {
		x.leaves = []*leaf[V]{{keys: []key{{p, s}}, vals: []V{v}}}
		x.n = 1
		return true
	}
	i := x.leafFor(s, p)
	l := x.leaves[i]
	j, ok := l.find(s, p)
	if ok {
		l.vals[j] = v
		return false
	}
	l.keys = slices.Insert(l.keys, j, key{p, s})
	l.vals = slices.Insert(l.vals, j, v)
	x.n++
	if len(l.keys) > leafMax {
		mid := len(l.keys) / 2
		right := &leaf[V]{keys: make([]key, 0, leafMax+1), vals: make([]V, 0, leafMax+1)}
		right.keys = append(right.keys, l.keys[mid:]...)
		right.vals = append(right.vals, l.vals[mid:]...)
		left := &leaf[V]{keys: make([]key, 0, leafMax+1), vals: make([]V, 0, leafMax+1)}
		left.keys = append(left.keys, l.keys[:mid]...)
		left.vals = append(left.vals, l.vals[:mid]...)
		x.leaves[i] = left
		x.leaves = slices.Insert(x.leaves, i+1, right)
	}
	return true
}

// Delete removes s; it reports whether s was there. A leaf left less
// than a quarter full merges into a neighbour when the two fit in one, so
// leaves stay more than a quarter full on average whatever was deleted.
func (x *index[V]) Delete(s string) bool {
	if x.n == 0 {
		return false
	}
	p := prefix(s)
	i := x.leafFor(s, p)
	l := x.leaves[i]
	j, ok := l.find(s, p)
	if !ok {
		return false
	}
	l.keys = slices.Delete(l.keys, j, j+1) // clears the freed slot for the GC
	l.vals = slices.Delete(l.vals, j, j+1)
	x.n--
	switch {
	case x.n == 0:
		x.leaves = nil
	case len(l.keys) >= leafMax/4:
	case i+1 < len(x.leaves) && len(l.keys)+len(x.leaves[i+1].keys) <= leafMax:
		x.merge(i)
	case i > 0 && len(l.keys)+len(x.leaves[i-1].keys) <= leafMax:
		x.merge(i - 1)
	case len(l.keys) == 0:
		x.leaves = slices.Delete(x.leaves, i, i+1)
	}
	return true
}

// merge appends leaf i+1 to leaf i and drops leaf i+1.
func (x *index[V]) merge(i int) {
	a, b := x.leaves[i], x.leaves[i+1]
	a.keys = append(a.keys, b.keys...)
	a.vals = append(a.vals, b.vals...)
	x.leaves = slices.Delete(x.leaves, i+1, i+2)
}

// Ascend calls f for each entry whose key is greater than after, in key
// order, until f returns false.
func (x *index[V]) Ascend(after string, f func(key string, v V) bool) {
	if x.n == 0 {
		return
	}
	p := prefix(after)
	i := x.leafFor(after, p)
	j, found := x.leaves[i].find(after, p)
	if found {
		j++
	}
	for ; i < len(x.leaves); i, j = i+1, 0 {
		l := x.leaves[i]
		for ; j < len(l.keys); j++ {
			if !f(l.keys[j].s, l.vals[j]) {
				return
			}
		}
	}
}

// page calls f for up to p.Limit entries after p.After and returns the
// token of the next page: the last key given to f when more follow, ""
// otherwise. A Limit of 0 or less means no limit.
func (x *index[V]) page(p Page, f func(key string, v V)) (next string) {
	n, last := 0, ""
	x.Ascend(p.After, func(k string, v V) bool {
		if p.Limit > 0 && n == p.Limit {
			next = last
			return false
		}
		f(k, v)
		n, last = n+1, k
		return true
	})
	return next
}

// update replaces every value v with f(v), in key order.
func (x *index[V]) update(f func(V) V) {
	for _, l := range x.leaves {
		for j, v := range l.vals {
			l.vals[j] = f(v)
		}
	}
}
