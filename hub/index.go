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
	keys []string // ascending
	vals []V      // vals[i] belongs to keys[i]
}

// leafMax is the most entries in a leaf; a fuller one splits in two. 128
// keeps an insert's copy within 4 KiB and a listing's leaf search short.
const leafMax = 128

// Len is the number of entries.
func (x *index[V]) Len() int { return x.n }

// leafFor returns the position of the leaf that holds key or would: the
// last leaf whose first key is at most key (0 if none is).
func (x *index[V]) leafFor(key string) int {
	lo, hi := 0, len(x.leaves) // the first leaf whose first key is above key is in [lo, hi]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.leaves[m].keys[0] > key {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return max(lo-1, 0)
}

// Get returns key's value.
func (x *index[V]) Get(key string) (V, bool) {
	if x.n == 0 {
		var zero V
		return zero, false
	}
	l := x.leaves[x.leafFor(key)]
	if j, ok := slices.BinarySearch(l.keys, key); ok {
		return l.vals[j], true
	}
	var zero V
	return zero, false
}

// Put sets key's value; it reports whether key was new.
func (x *index[V]) Put(key string, v V) bool {
	if len(x.leaves) == 0 {
		x.leaves = []*leaf[V]{{keys: []string{key}, vals: []V{v}}}
		x.n = 1
		return true
	}
	i := x.leafFor(key)
	l := x.leaves[i]
	j, ok := slices.BinarySearch(l.keys, key)
	if ok {
		l.vals[j] = v
		return false
	}
	l.keys = slices.Insert(l.keys, j, key)
	l.vals = slices.Insert(l.vals, j, v)
	x.n++
	if len(l.keys) > leafMax {
		mid := len(l.keys) / 2
		right := &leaf[V]{keys: make([]string, 0, leafMax+1), vals: make([]V, 0, leafMax+1)}
		right.keys = append(right.keys, l.keys[mid:]...)
		right.vals = append(right.vals, l.vals[mid:]...)
		left := &leaf[V]{keys: make([]string, 0, leafMax+1), vals: make([]V, 0, leafMax+1)}
		left.keys = append(left.keys, l.keys[:mid]...)
		left.vals = append(left.vals, l.vals[:mid]...)
		x.leaves[i] = left
		x.leaves = slices.Insert(x.leaves, i+1, right)
	}
	return true
}

// Delete removes key; it reports whether key was there. A leaf left less
// than a quarter full merges into a neighbour when the two fit in one, so
// leaves stay more than a quarter full on average whatever was deleted.
func (x *index[V]) Delete(key string) bool {
	if x.n == 0 {
		return false
	}
	i := x.leafFor(key)
	l := x.leaves[i]
	j, ok := slices.BinarySearch(l.keys, key)
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
	i := x.leafFor(after)
	j, found := slices.BinarySearch(x.leaves[i].keys, after)
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
