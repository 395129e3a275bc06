package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/streams"
)

// leaseValue is what a lease key holds: who leads, for operators reading
// the bucket (nats kv get). The protocol goes by revisions, and by the
// value's bytes only to tell its own writes from others' when an answer
// was lost (Term makes each campaign's value unique, also between two
// campaigns of one node for one key). Node and Inc are the leader's byte
// and incarnation as of the write: a renewal writes them anew when they
// changed during the term (a fence's new incarnation, a move to another
// byte), so the key names the node as it is now from the next renewal on
// (termValues keeps each value the term may have written).
type leaseValue struct {
	Node  string `json:"node"`
	Name  string `json:"name"`
	Inc   string `json:"inc"`
	Term  string `json:"term"`  // random, one per campaign attempt
	Since int64  `json:"since"` // unix ms of the campaign that won
}

// errLeaseLost ends a term: the key moved under this node, or it could not
// renew it in time and stopped first.
var errLeaseLost = errors.New("lease lost")

// selfFenceMargin is how long before its lease could expire a leader that
// cannot renew stops: 3 s, or 30 % of a lease shorter than 10 s. A
// follower's Create succeeds only after the server expired the key, at
// least a lease after the last renewal that succeeded was sent; the leader
// has stopped run by then with this margin to spare.
func (c *Config) selfFenceMargin() time.Duration {
	return min(3*time.Second, c.streamLease()*3/10)
}

// Lease runs run on at most one node of the cluster at a time: the node
// holding key in the KV bucket WSGATE_<name>_LEASES (TTL
// streamLeaseSeconds). Every node calling Lease with the same key
// campaigns (a KV Create, which only one wins); the winner runs run with a
// context that ends when it loses the lease, and renews the key by
// compare-and-set every streamLeaseSeconds/5. When a renewal finds the
// key changed the term ends at once; when renewals fail otherwise (NATS
// unreachable) run's context is cancelled at the last successful
// renewal's send time + streamLeaseSeconds − the self-fence margin (3 s),
// before the key can expire; a term that ends so, or because the key
// changed, cancels run's context with a cause wrapping
// streams.ErrLeaseLost, which denies a call to the target under way its
// delivery grace (streams.HandleWithGrace), also one a graceful stop
// began before (run's context carries the lease's, streams.WithLease).
// After a term, Lease waits for run to return and campaigns again.
// Followers watch the key and campaign again when it is deleted or
// expires (the TTL marker), and every streamLeaseSeconds/2 in case a
// marker was missed.
//
// When ctx ends, the leader cancels run and waits for it to return (a
// call to the target under way gets its grace meanwhile), renewing the
// key as before, then deletes the key with its last revision (a graceful
// handover: a follower wins within a moment, and only once the old run
// has made its position durable) and Lease returns nil. When run returns
// on its own while leading, the key is deleted the same way and Lease
// returns run's error. key must be a valid KV key ([-/_=.a-zA-Z0-9]+).
func (h *Hub) Lease(ctx context.Context, key string, run func(context.Context) error) error {
	log := h.log.With("lease", key)
	for {
		kv, err := h.leaseKV(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		rev, sent, val, err := h.campaign(ctx, kv, key)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				h.dropLeaseKV(kv) // created again at the next campaign
				continue
			}
			return err
		}
		log.Info("stream lease won: running here")
		err = h.lead(ctx, kv, key, rev, sent, val, run)
		switch {
		case errors.Is(err, errLeaseLost):
			continue
		case ctx.Err() != nil:
			return nil
		default:
			return err
		}
	}
}

// leaseKV opens the leases bucket once (only nodes with streams need it).
func (h *Hub) leaseKV(ctx context.Context) (jetstream.KeyValue, error) {
	h.leaseMu.Lock()
	defer h.leaseMu.Unlock()
	if h.leases != nil {
		return h.leases, nil
	}
	kv, _, err := h.openKV(ctx, jetstream.KeyValueConfig{
		Bucket:         "WSGATE_" + h.cfg.Name + "_LEASES",
		History:        1,
		TTL:            h.cfg.streamLease(),
		Storage:        jetstream.FileStorage,
		Replicas:       max(1, h.replicas),
		LimitMarkerTTL: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("the stream lease bucket did not answer: %w", err)
	}
	h.leases = kv
	return kv, nil
}

func (h *Hub) dropLeaseKV(kv jetstream.KeyValue) {
	h.leaseMu.Lock()
	defer h.leaseMu.Unlock()
	if h.leases == kv {
		h.leases = nil
	}
}

func (h *Hub) leaseValue() []byte {
	b, _ := json.Marshal(leaseValue{Node: hub.NodeHex(h.Self()), Name: h.cfg.Node.Name, Inc: h.incarnation(), Term: newIncarnation(), Since: time.Now().UnixMilli()})
	return b
}

// renewedLeaseValue is the value a renewal of the term whose last value is
// val writes: val, or when this node's byte or incarnation changed since
// (a fence, a move), the same term with the current ones; val while the
// node is not up (a move under way, or a configured node.id off its byte:
// leaveByte), so the key names a byte only once the node is up on it.
func (h *Hub) renewedLeaseValue(val []byte) []byte {
	var v leaseValue
	if !h.announced.Load() || json.Unmarshal(val, &v) != nil {
		return val
	}
	node, inc := hub.NodeHex(h.Self()), h.incarnation()
	if v.Node == node && v.Inc == inc {
		return val
	}
	v.Node, v.Inc = node, inc
	b, _ := json.Marshal(v)
	return b
}

// termValues are the values a term may have left in its key: last, the
// one of its last write known applied, and sent, those of the renewals
// since whose outcome is unknown (one per change of the node's byte or
// incarnation, at most maxTermValues: a value forgotten makes a renewal
// applied look like another node's, which ends the term, a handover, not
// two runners).
type termValues struct {
	last []byte
	sent [][]byte
}

const maxTermValues = 8

// has reports whether v is one of the term's values.
func (t *termValues) has(v []byte) bool {
	return bytes.Equal(v, t.last) || slices.ContainsFunc(t.sent, func(s []byte) bool { return bytes.Equal(v, s) })
}

// unsure notes a renewal with value v whose outcome is unknown.
func (t *termValues) unsure(v []byte) {
	if !t.has(v) {
		if len(t.sent) == maxTermValues {
			t.sent = t.sent[1:]
		}
		t.sent = append(t.sent, v)
	}
}

// applied records v as the term's value known applied.
func (t *termValues) applied(v []byte) { t.last, t.sent = v, nil }

// campaign returns once this node holds key: its revision, when the
// winning Create was sent, and the value it wrote (which the term renews).
// It returns an error only when ctx ends or the bucket is gone.
//
// A Create whose answer was lost (timed out here) may have been applied:
// the next attempt then finds the key existing. The key is read from the
// stream's leader, and if it holds that attempt's value (its Term is this
// campaign's alone) the attempt won, at the revision read, sent when it
// was sent; before, the campaign waited for its own key to expire (a
// stream lease with nobody running the stream).
func (h *Hub) campaign(ctx context.Context, kv jetstream.KeyValue, key string) (uint64, time.Time, []byte, error) {
	lease := h.cfg.streamLease()
	var updates <-chan jetstream.KeyValueEntry
	// unsure are the attempts since the last definite answer whose
	// answers were lost: any one of them may have been applied.
	type attempt struct {
		val  []byte
		sent time.Time
	}
	var unsure []attempt
	for {
		if updates == nil {
			// Watch first, then Create: a delete after a failed Create
			// is then seen.
			if w, err := kv.Watch(ctx, key); err == nil {
				defer func() { _ = w.Stop() }()
				updates = w.Updates()
			} else if ctx.Err() == nil {
				h.log.Debug("stream lease watch failed; retrying on a timer", "lease", key, "error", err)
			}
		}
		sent, val := time.Now(), h.leaseValue()
		cctx, cancel := context.WithTimeout(ctx, lease/5)
		rev, err := kv.Create(cctx, key, val)
		cancel()
		switch {
		case err == nil:
			return rev, sent, val, nil
		case ctx.Err() != nil:
			return 0, time.Time{}, nil, ctx.Err()
		case errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			return 0, time.Time{}, nil, err
		case errors.Is(err, jetstream.ErrKeyExists):
			if len(unsure) == 0 {
				break
			}
			rctx, cancel := context.WithTimeout(ctx, lease/5)
			cur, gerr := h.leaderRead(rctx, kv.Bucket(), key)
			cancel()
			if gerr != nil && !errors.Is(gerr, jetstream.ErrKeyNotFound) {
				break // ask again after the next attempt
			}
			for _, a := range unsure {
				if gerr == nil && bytes.Equal(cur.Value(), a.val) {
					h.log.Info("stream lease: a campaign whose answer was lost had won", "lease", key, "revision", cur.Revision())
					return cur.Revision(), a.sent, a.val, nil
				}
			}
			unsure = nil // another node's value, or none: they lost
		default:
			// Not answered, or not sent: it may have been applied all the
			// same. An attempt older than a lease would have expired.
			unsure = slices.DeleteFunc(unsure, func(a attempt) bool { return time.Since(a.sent) >= lease })
			unsure = append(unsure, attempt{val, sent})
			h.log.Debug("stream lease campaign failed; retrying", "lease", key, "error", err)
			if timedOut(err) {
				// Ask again now, not after waiting for a vacancy: if it
				// was applied, this node holds the key and must renew it
				// within the lease.
				if streams.Sleep(ctx, rand.N(250*time.Millisecond)) != nil {
					return 0, time.Time{}, nil, ctx.Err()
				}
				continue
			}
		}
		vacant, closed := h.waitVacant(ctx, updates, lease/2)
		if !vacant {
			return 0, time.Time{}, nil, ctx.Err()
		}
		if closed {
			updates = nil // watch again
		}
		// Spread the followers' Creates a little; only one wins anyway.
		if streams.Sleep(ctx, rand.N(250*time.Millisecond)) != nil {
			return 0, time.Time{}, nil, ctx.Err()
		}
	}
}

// waitVacant waits until the watcher reports the key deleted or expired,
// or for every; vacant is false when ctx ended, closed true when the
// watcher stopped.
func (h *Hub) waitVacant(ctx context.Context, updates <-chan jetstream.KeyValueEntry, every time.Duration) (vacant, closed bool) {
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-t.C:
			return true, false
		case e, ok := <-updates:
			if !ok {
				return true, true
			}
			if e != nil && e.Operation() != jetstream.KeyValuePut {
				return true, false
			}
		}
	}
}

// lead runs run while this node holds key at rev, written with val (sent
// at sent). It returns errLeaseLost when the term ended with run's context
// (run has returned), or, after run returned and the key was deleted,
// run's error (nil when ctx ended).
//
// A renewal whose answer was lost (it timed out here) may have been
// applied all the same: the next one is then refused for its revision.
// That refusal alone ended the term, a needless handover and a pause of
// the stream. Now the refused renewal reads the key from the stream's
// leader: if it holds val, or a value a renewal of this term wrote since
// (with this node's byte or incarnation changed: termValues), this
// term's and no one else's, at a revision after the one this node held,
// a renewal of this term was applied, and its revision is adopted. The self-fence deadline then counts from the send time of
// the first renewal whose outcome was unknown: the one applied was sent
// no earlier, and the key expires a lease after it was stored, so that is
// the latest deadline known safe. Another value, or none, ends the term as
// before; a read that fails, or a key still at this node's revision (on a
// replicated stream a write still in flight gets the same refusal), is a
// renewal that failed: the deadline stays, and the next one asks again.
func (h *Hub) lead(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, sent time.Time, val []byte, run func(context.Context) error) error {
	lease := h.cfg.streamLease()
	margin := h.cfg.selfFenceMargin()
	// run's context ends with ctx (a graceful stop: a call to the target
	// under way gets its grace, and the lease is renewed until run
	// returns) or with the lease, whose loss is the cause
	// streams.ErrLeaseLost: no grace then, another node may be starting.
	// A loss during a graceful stop cannot change the cause any more:
	// lost, which run's context carries (streams.WithLease), ends then
	// and cuts the grace.
	lost, lose := context.WithCancelCause(context.Background())
	defer lose(nil)
	rctx, stop := context.WithCancelCause(streams.WithLease(ctx, lost))
	defer stop(nil)
	done := make(chan error, 1)
	go func() { done <- run(rctx) }()
	end := func(why string, attrs ...any) error {
		h.log.Warn("stream lease: "+why+"; stopping here", append([]any{"lease", key}, attrs...)...)
		cause := fmt.Errorf("%s: %w", why, streams.ErrLeaseLost)
		lose(cause)
		stop(cause)
		<-done
		return errLeaseLost
	}
	renew := time.NewTicker(lease / 5)
	defer renew.Stop()
	fenceAt := sent.Add(lease - margin)
	fence := time.NewTimer(time.Until(fenceAt))
	defer fence.Stop()
	// soon renews at once when the key was won by a Create whose answer
	// was lost (campaign): its deadline may come before the first tick.
	var soon <-chan time.Time
	if time.Until(fenceAt) < lease/5 {
		soon = time.After(0)
	}
	// unsure is the send time of the first renewal since the last one
	// known applied whose outcome is unknown (zero: none).
	var unsure time.Time
	// stopping is ctx's Done until ctx ends; then run is winding down
	// (its call under way has a grace) and the lease is still renewed,
	// with a context that outlives ctx, until run returns: a follower
	// takes over only once this node's run has ended.
	stopping := ctx.Done()
	rnctx := context.WithoutCancel(ctx)
	vals := &termValues{last: val}
	for {
		select {
		case err := <-done:
			h.release(kv, key, rev, vals)
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-stopping:
			stop(context.Cause(ctx))
			stopping = nil
		case <-fence.C:
			return end("could not renew before it could expire", "lastRenewalSent", fenceAt.Add(margin-lease))
		case <-soon:
			soon = nil
			renew.Reset(lease / 5)
			if err := h.renewLease(rnctx, kv, key, vals, &rev, &unsure, &fenceAt, fence); err != nil {
				return end("another node holds it now", "error", err)
			}
		case <-renew.C:
			if err := h.renewLease(rnctx, kv, key, vals, &rev, &unsure, &fenceAt, fence); err != nil {
				return end("another node holds it now", "error", err)
			}
		}
	}
}

// renewLease renews key, held at *rev with vals.last, for lead (which
// documents the rules), within ctx; it writes the term's value with this
// node's current byte and incarnation (renewedLeaseValue), moves vals,
// *rev, *unsure and *fenceAt (and fence with it), and returns an error
// only when another node holds the key or it is gone.
func (h *Hub) renewLease(ctx context.Context, kv jetstream.KeyValue, key string, vals *termValues, rev *uint64, unsure, fenceAt *time.Time, fence *time.Timer) error {
	lease, margin := h.cfg.streamLease(), h.cfg.selfFenceMargin()
	budget := func() time.Duration { return max(min(lease/5, time.Until(*fenceAt)), time.Millisecond) }
	next := h.renewedLeaseValue(vals.last)
	s := time.Now()
	uctx, cancel := context.WithTimeout(ctx, budget())
	nrev, err := kv.Update(uctx, key, next, *rev)
	cancel()
	switch {
	case err == nil:
		vals.applied(next)
		*rev, *fenceAt, *unsure = nrev, s.Add(lease-margin), time.Time{}
		fence.Reset(time.Until(*fenceAt))
		return nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists),
		errors.Is(err, jetstream.ErrKeyNotFound):
	default:
		if unsure.IsZero() {
			*unsure = s
		}
		vals.unsure(next)
		h.log.Warn("stream lease renewal failed", "lease", key, "error", err)
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, budget())
	cur, gerr := h.leaderRead(rctx, kv.Bucket(), key)
	cancel()
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound):
		return fmt.Errorf("%w; the key is gone", err)
	case gerr != nil:
		h.log.Warn("stream lease renewal refused and the key could not be read", "lease", key, "error", err, "readError", gerr)
		return nil
	case !vals.has(cur.Value()):
		return fmt.Errorf("%w; the key holds %s", err, cur.Value())
	case cur.Revision() <= *rev:
		// This term's value at this node's revision: the refusal was
		// for a write still in flight (or the read is behind).
		h.log.Warn("stream lease renewal refused while the key is still this node's", "lease", key, "error", err, "revision", cur.Revision())
		return nil
	}
	h.log.Info("stream lease: a renewal whose answer was lost had been applied; carrying on", "lease", key, "revision", cur.Revision(), "was", *rev)
	*rev = cur.Revision()
	vals.applied(slices.Clone(cur.Value()))
	if at := unsure.Add(lease - margin); !unsure.IsZero() && at.After(*fenceAt) {
		*fenceAt = at
		fence.Reset(time.Until(at))
	}
	*unsure = time.Time{}
	return nil
}

// release deletes key if it is still at rev, or still holds one of the
// term's values (a renewal whose answer was lost moved it on): a follower
// takes over at once.
func (h *Hub) release(kv jetstream.KeyValue, key string, rev uint64, vals *termValues) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.requestTimeout())
	defer cancel()
	err := kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if isWrongSequence(err) {
		if cur, gerr := h.leaderRead(ctx, kv.Bucket(), key); gerr == nil && vals.has(cur.Value()) {
			err = kv.Delete(ctx, key, jetstream.LastRevision(cur.Revision()))
		}
	}
	if err != nil {
		h.log.Warn("stream lease not released; it expires after streamLeaseSeconds", "lease", key, "error", err)
		return
	}
	h.log.Info("stream lease released", "lease", key)
}

// timedOut reports whether a request's err is its answer not coming in
// time: the request may have been applied.
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}
