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
	// firsts[i] is prefix(leaves[i].keys[0]): the search for a key's leaf
	// reads this one array, not a leaf and a string per step.
	firsts []uint64
	n      int
}

type leaf[V any] struct {
	// pre[i] is prefix(keys[i]): a search compares these numbers, in the
	// leaf's own array, and reads a key's bytes (elsewhere in the heap,
	// seldom in the cache) only where two prefixes are equal.
	pre  []uint64
	keys []string // ascending
	vals []V      // vals[i] belongs to keys[i]
}

// leafMax is the most entries in a leaf; a fuller one splits in two. 128
// keeps an insert's copy within 4 KiB and a listing's leaf search short.
const leafMax = 128

// prefix is key's first 8 bytes as a big-endian number, zeros after a
// shorter key: prefix(a) < prefix(b) means a < b; equal prefixes leave
// the order to the whole strings. A connection id's first 8 characters
// are random (48 bits): two ids seldom share them.
func prefix(key string) uint64 {
	if len(key) >= 8 {
		return uint64(key[0])<<56 | uint64(key[1])<<48 | uint64(key[2])<<40 | uint64(key[3])<<32 |
			uint64(key[4])<<24 | uint64(key[5])<<16 | uint64(key[6])<<8 | uint64(key[7])
	}
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(key) {
			p |= uint64(key[i])
		}
	}
	return p
}

// Len is the number of entries.
func (x *index[V]) Len() int { return x.n }

// leafFor returns the position of the leaf that holds key (of prefix p)
// or would: the last leaf whose first key is at most key (0 if none is).
func (x *index[V]) leafFor(key string, p uint64) int {
	lo, hi := 0, len(x.firsts) // the first leaf whose first key is above key is in [lo, hi]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if f := x.firsts[m]; f > p || f == p && x.leaves[m].keys[0] > key {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return max(lo-1, 0)
}

// find returns where key (of prefix p) is or would be in l, and whether
// it is.
func (l *leaf[V]) find(key string, p uint64) (int, bool) {
	lo, hi := 0, len(l.pre)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if q := l.pre[m]; q < p || q == p && l.keys[m] < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(l.pre) && l.pre[lo] == p && l.keys[lo] == key
}

// Get returns key's value.
func (x *index[V]) Get(key string) (V, bool) {
	if x.n == 0 {
		var zero V
		return zero, false
	}
	p := prefix(key)
	l := x.leaves[x.leafFor(key, p)]
	if j, ok := l.find(key, p); ok {
		return l.vals[j], true
	}
	var zero V
	return zero, false
}

// Put sets key's value; it reports whether key was new.
func (x *index[V]) Put(key string, v V) bool {
	p := prefix(key)
	if len(x.leaves) == 0 {
		x.leaves = []*leaf[V]{{pre: []uint64{p}, keys: []string{key}, vals: []V{v}}}
		x.firsts = []uint64{p}
		x.n = 1
		return true
	}
	i := x.leafFor(key, p)
	l := x.leaves[i]
	j, ok := l.find(key, p)
	if ok {
		l.vals[j] = v
		return false
	}
	l.pre = slices.Insert(l.pre, j, p)
	l.keys = slices.Insert(l.keys, j, key)
	l.vals = slices.Insert(l.vals, j, v)
	x.n++
	if j == 0 {
		x.firsts[i] = p
	}
	if len(l.keys) > leafMax {
		mid := len(l.keys) / 2
		left, right := l.part(0, mid), l.part(mid, len(l.keys))
		x.leaves[i] = left
		x.leaves = slices.Insert(x.leaves, i+1, right)
		x.firsts = slices.Insert(x.firsts, i+1, right.pre[0])
	}
	return true
}

// part is a new leaf of l's entries [a, b), with room for a full leaf.
func (l *leaf[V]) part(a, b int) *leaf[V] {
	return &leaf[V]{
		pre:  append(make([]uint64, 0, leafMax+1), l.pre[a:b]...),
		keys: append(make([]string, 0, leafMax+1), l.keys[a:b]...),
		vals: append(make([]V, 0, leafMax+1), l.vals[a:b]...),
	}
}

// Delete removes key; it reports whether key was there. A leaf left less
// than a quarter full merges into a neighbour when the two fit in one, so
// leaves stay more than a quarter full on average whatever was deleted.
func (x *index[V]) Delete(key string) bool {
	if x.n == 0 {
		return false
	}
	p := prefix(key)
	i := x.leafFor(key, p)
	l := x.leaves[i]
	j, ok := l.find(key, p)
	if !ok {
		return false
	}
	l.pre = slices.Delete(l.pre, j, j+1)
	l.keys = slices.Delete(l.keys, j, j+1) // clears the freed slot for the GC
	l.vals = slices.Delete(l.vals, j, j+1)
	x.n--
	if j == 0 && len(l.pre) > 0 {
		x.firsts[i] = l.pre[0]
	}
	switch {
	case x.n == 0:
		x.leaves, x.firsts = nil, nil
	case len(l.keys) >= leafMax/4:
	case i+1 < len(x.leaves) && len(l.keys)+len(x.leaves[i+1].keys) <= leafMax:
		x.merge(i)
	case i > 0 && len(l.keys)+len(x.leaves[i-1].keys) <= leafMax:
		x.merge(i - 1)
	case len(l.keys) == 0:
		x.leaves = slices.Delete(x.leaves, i, i+1)
		x.firsts = slices.Delete(x.firsts, i, i+1)
	}
	return true
}

// merge appends leaf i+1 to leaf i and drops leaf i+1.
func (x *index[V]) merge(i int) {
	a, b := x.leaves[i], x.leaves[i+1]
	a.pre = append(a.pre, b.pre...)
	a.keys = append(a.keys, b.keys...)
	a.vals = append(a.vals, b.vals...)
	x.leaves = slices.Delete(x.leaves, i+1, i+2)
	x.firsts = slices.Delete(x.firsts, i+1, i+2)
	x.firsts[i] = a.pre[0] // a may have been empty
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
			if !f(l.keys[j], l.vals[j]) {
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
