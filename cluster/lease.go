package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/streams"
)

// leaseValue is what a lease key holds: who leads, for operators reading
// the bucket (nats kv get); the protocol reads only revisions.
type leaseValue struct {
	Node  string `json:"node"`
	Name  string `json:"name"`
	Inc   string `json:"inc"`
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
		rev, sent, err := h.campaign(ctx, kv, key)
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
		err = h.lead(ctx, kv, key, rev, sent, run)
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
	b, _ := json.Marshal(leaseValue{Node: hub.NodeHex(h.Self()), Name: h.cfg.Node.Name, Inc: h.incarnation(), Since: time.Now().UnixMilli()})
	return b
}

// campaign returns once this node holds key: its revision and when the
// winning Create was sent. It returns an error only when ctx ends or the
// bucket is gone.
func (h *Hub) campaign(ctx context.Context, kv jetstream.KeyValue, key string) (uint64, time.Time, error) {
	lease := h.cfg.streamLease()
	var updates <-chan jetstream.KeyValueEntry
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
		sent := time.Now()
		cctx, cancel := context.WithTimeout(ctx, lease/5)
		rev, err := kv.Create(cctx, key, h.leaseValue())
		cancel()
		switch {
		case err == nil:
			return rev, sent, nil
		case ctx.Err() != nil:
			return 0, time.Time{}, ctx.Err()
		case errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			return 0, time.Time{}, err
		case !errors.Is(err, jetstream.ErrKeyExists):
			h.log.Debug("stream lease campaign failed; retrying", "lease", key, "error", err)
		}
		vacant, closed := h.waitVacant(ctx, updates, lease/2)
		if !vacant {
			return 0, time.Time{}, ctx.Err()
		}
		if closed {
			updates = nil // watch again
		}
		// Spread the followers' Creates a little; only one wins anyway.
		if streams.Sleep(ctx, rand.N(250*time.Millisecond)) != nil {
			return 0, time.Time{}, ctx.Err()
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

// lead runs run while this node holds key at rev. It returns errLeaseLost
// when the term ended with run's context (run has returned), or, after
// run returned and the key was deleted, run's error (nil when ctx ended).
func (h *Hub) lead(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, sent time.Time, run func(context.Context) error) error {
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
	val := h.leaseValue()
	// stopping is ctx's Done until ctx ends; then run is winding down
	// (its call under way has a grace) and the lease is still renewed,
	// with a context that outlives ctx, until run returns: a follower
	// takes over only once this node's run has ended.
	stopping := ctx.Done()
	rnctx := context.WithoutCancel(ctx)
	for {
		select {
		case err := <-done:
			h.release(kv, key, rev)
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-stopping:
			stop(context.Cause(ctx))
			stopping = nil
		case <-fence.C:
			return end("could not renew before it could expire", "lastRenewalSent", fenceAt.Add(margin-lease))
		case <-renew.C:
			s := time.Now()
			uctx, cancel := context.WithTimeout(rnctx, max(min(lease/5, time.Until(fenceAt)), time.Millisecond))
			nrev, err := kv.Update(uctx, key, val, rev)
			cancel()
			switch {
			case err == nil:
				rev, fenceAt = nrev, s.Add(lease-margin)
				fence.Reset(time.Until(fenceAt))
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists),
				errors.Is(err, jetstream.ErrKeyNotFound):
				return end("another node holds it now", "error", err)
			default:
				h.log.Warn("stream lease renewal failed", "lease", key, "error", err)
			}
		}
	}
}

// release deletes key if it is still at rev: a follower takes over at once.
func (h *Hub) release(kv jetstream.KeyValue, key string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.requestTimeout())
	defer cancel()
	if err := kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
		h.log.Warn("stream lease not released; it expires after streamLeaseSeconds", "lease", key, "error", err)
		return
	}
	h.log.Info("stream lease released", "lease", key)
}
